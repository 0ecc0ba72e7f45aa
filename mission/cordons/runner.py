"""The cordon runner: starts a cordon (plan, stations, assignment), flies each drone to its station through
the one executor (a persisted ``cordon`` flight that holds there facing the road, the gimbal on it),
relieves drones on battery, refills a station left empty, and reports the time to the first and the last
station manned, and manned/total per ring. A serious incident's cordon also takes drones off their patrols
(the patrol is preempted and backfilled, the dispatch way). With several instances it runs on the leader of
"operations"; station flights of vehicles other instances own are flown (and fenced) by their owners and heard
here from their records (mission.flights.runners)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shapely.geometry import LineString, Point, Polygon
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.cordon import road_lines
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from mission.airspace.models import ZoneKind
from mission.audit import service as audit
from mission.audit.clock import utcnow
from mission.cordons.models import Cordon, CordonCreate, CordonRead
from mission.cordons.planner import CordonPlan, plan_cordon
from mission.db import session_scope
from mission.dispatch.ranking import Activity, CandidateEstimate, DispatchRequest, estimate
from mission.errors import InvalidTransition, NotFound, SkywardenError
from mission.flights.executor import FlightExecutor, path_of
from mission.flights.models import Flight, FlightPurpose, FlightState, Leg, LegKind
from mission.flights.runners import FlightRunner
from mission.incidents.models import Incident
from mission.planning import build_geofence
from mission.safety.gate import Action, Asker
from mission.telemetry.events import Event, EventSink
from mission.video.commands import CameraCommand

log = logging.getLogger(__name__)
SERVICE = Asker("system:cordons")
AIM_AHEAD_M = 60.0  # the gimbal looks at the road this far out from the station, at ground level
FIT = (Activity.DOCKED, Activity.IDLE_AIRBORNE, Activity.RETURNING)


@dataclass(frozen=True, slots=True)
class CordonConfig:
    hold_s: float = 900.0  # how long a station is planned to be held (energy to hold and return)
    # Stations are relieved on battery: a drone able to hold at least this long (the time a relief needs
    # to come) is fit, and it is relieved while it still has that long plus the way home and its reserve.
    min_hold_s: float = 300.0
    rotate_at_pct: float = 45.0
    spare_min_pct: float = 60.0
    speed_factor: float = 1.0
    tick_s: float = 0.5
    retry_s: float = 5.0  # wall seconds between two tries to refill the same empty station
    roads_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> CordonConfig:
        return cls(
            hold_s=settings.cordon_hold_s,
            rotate_at_pct=settings.event_rotate_at_pct,
            spare_min_pct=settings.event_spare_min_pct,
            speed_factor=settings.sim_speed,
            roads_file=settings.road_layer_file,
        )


@dataclass
class LiveCordon:
    cordon_id: int
    started: float  # monotonic
    relief: dict[str, int] = field(default_factory=dict)  # station key -> relief vehicle
    retry_at: dict[str, float] = field(default_factory=dict)  # station key -> next refill try (monotonic)
    refills: int = 0
    due_pct: dict[tuple[str, int], float] = field(default_factory=dict)  # (station, vehicle) -> relieve below
    flights: set[int] = field(default_factory=set)  # its flights not yet heard ended (here or elsewhere)
    incident_id: int | None = None
    take_patrols: bool = False  # a serious incident's cordon: patrol drones are candidates too
    task: asyncio.Task[None] | None = None


def _key(s: dict[str, Any]) -> str:
    return f"{s['ring']}:{s['index']}"


def report(row: Cordon) -> dict[str, Any]:
    """Time to the first and the last station manned (flight s from the start), manned/total per ring."""
    per_ring: dict[str, dict[str, int]] = {}
    times = []
    for s in row.stations:
        ring = per_ring.setdefault(str(s["ring"]), {"manned": 0, "total": 0})
        ring["total"] += 1
        if s.get("state") == "manned":
            ring["manned"] += 1
        if s.get("manned_at_s") is not None:
            times.append(float(s["manned_at_s"]))
    total = len(row.stations)
    manned = sum(r["manned"] for r in per_ring.values())
    assigned = sum(
        1 for s in row.stations if s.get("vehicle_id") is not None or s.get("manned_at_s") is not None
    )
    return {
        "first_station_s": min(times) if times else None,
        "last_station_s": max(times) if times and len(times) >= assigned else None,
        "manned": manned,
        "total": total,
        "per_ring": per_ring,
        "unmanned": [
            {"ring": s["ring"], "index": s["index"], "reason": s.get("reason", "")}
            for s in row.stations
            if s.get("state") != "manned"
        ],
    }


class CordonRunner(FlightRunner):
    """Starts cordons, flies and relieves their stations, and ends them. With several instances it runs on
    the leader; the station flights of vehicles other instances own are flown by their owners (who upload
    the station's fence first) and heard here from their records."""

    name = "cordons"
    asker = SERVICE

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: Any,
        hub: EventSink,
        executor: FlightExecutor,
        candidates: Any,
        config: CordonConfig | None = None,
        video: Callable[[], Any] | None = None,
        backfill: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config or CordonConfig()
        super().__init__(
            engine=engine, executor=executor, purpose=FlightPurpose.CORDON, tick_s=self.config.tick_s
        )
        self._video = video  # the video service (camera and gimbal commands), when there is one
        self._fleet = fleet
        self._hub = hub
        self._candidates = candidates
        # The dispatcher's preempt and backfill: a patrol drone taken for a station leaves a coverage gap.
        self._backfill = backfill
        self._live: dict[int, LiveCordon] = {}
        self._roads: dict[str, Any] | None = None
        if self.config.roads_file is not None:
            self._roads = json.loads(Path(self.config.roads_file).read_text(encoding="utf-8"))

    async def __aenter__(self) -> CordonRunner:
        with Session(self._engine) as session:
            active = [row.id for row in session.exec(select(Cordon).where(col(Cordon.state) == "active"))]
            open_flights = list(
                session.exec(
                    select(Flight).where(
                        col(Flight.purpose) == FlightPurpose.CORDON.value,
                        col(Flight.state).in_([FlightState.PENDING.value, FlightState.ACTIVE.value]),
                    )
                )
            )
        for cordon_id in active:
            assert cordon_id is not None
            live = self._watch(cordon_id)
            # A restart or a new leader: the cordon's open station flights (maybe flown by other instances).
            live.flights = {
                f.id
                for f in open_flights
                if f.id is not None and (f.reason or "").startswith(f"cordon {cordon_id} ")
            }
        self._start_hearing()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_tasks(*(c.task for c in self._live.values()))
        self._live.clear()  # entered again when this instance leads again (several instances)

    def _watch(self, cordon_id: int) -> LiveCordon:
        with Session(self._engine) as session:
            row = session.get(Cordon, cordon_id)
            incident_id = row.incident_id if row is not None else None
        live = LiveCordon(
            cordon_id=cordon_id,
            started=time.monotonic(),
            incident_id=incident_id,
            take_patrols=self.takes_patrols(incident_id),
        )
        live.task = asyncio.create_task(self._supervise(live), name=f"cordon:{cordon_id}")
        self._live[cordon_id] = live
        return live

    def _sim_s(self, live: LiveCordon) -> float:
        return (time.monotonic() - live.started) * self.config.speed_factor

    # -- planning ------------------------------------------------------------

    def roads(self, frame: LocalFrame) -> list[LineString]:
        assert self._roads is not None
        return road_lines(self._roads, to_local=frame.point_to_local)

    def takes_patrols(self, incident_id: int | None) -> bool:
        """A serious incident's cordon (as urgent as dispatch may pull a drone off its patrol for, the
        dispatch config's ``preempt_max_priority``) takes patrol drones too; their gaps are backfilled."""
        if incident_id is None:
            return False
        with Session(self._engine) as session:
            incident = session.get(Incident, incident_id)
        limit = getattr(getattr(self._candidates, "config", None), "preempt_max_priority", 0)
        return incident is not None and incident.priority <= limit

    @staticmethod
    def _fit(take_patrols: bool) -> tuple[Activity, ...]:
        return (*FIT, Activity.PATROL) if take_patrols else FIT

    def plan(self, data: CordonCreate, *, policy: str = "minmax", states: Any = None) -> CordonPlan:
        fit = self._fit(self.takes_patrols(data.incident_id))
        restrictions = self._candidates.restrictions(span_s=self.config.hold_s)
        nofly = [
            r.geometry for r in restrictions if r.kind is ZoneKind.no_fly and isinstance(r.geometry, Polygon)
        ]
        pool = [
            s
            for s in (states if states is not None else self._candidates.states())
            if s.link_up and s.activity in fit and s.battery_pct >= self.config.spare_min_pct
        ]
        return plan_cordon(
            lat=data.lat,
            lon=data.lon,
            radii_m=data.radii_m,
            flee_speed_m_s=data.flee_speed_m_s,
            elapsed_s=data.elapsed_s,
            stations_per_ring=data.stations_per_ring,
            roads_latlon=self.roads if self._roads is not None else None,
            nofly_lonlat=nofly,
            states=pool,
            airspace=self._candidates.airspace(
                around=(data.lat, data.lon), alt_m=data.alt_m, span_s=self.config.hold_s
            ),
            hold_s=self.config.hold_s,
            alt_m=data.alt_m,
            clearance_m=self._executor.gate.clearance_m,
            policy=policy,
            min_hold_s=self.config.min_hold_s,
        )

    # -- what the API asks ------------------------------------------------------------------

    def _stations(self, plan: CordonPlan, alt_m: float) -> list[dict[str, Any]]:
        stations: list[dict[str, Any]] = [
            {
                "ring": p.station.ring,
                "index": p.station.index,
                "lat": round(p.lat, 7),
                "lon": round(p.lon, 7),
                "look_deg": round(p.station.look_deg, 1),
                "source": p.station.source,
                "vehicle_id": p.vehicle_id,
                "eta_s": None if p.eta_s is None else round(p.eta_s, 1),
                "state": "assigned" if p.vehicle_id is not None else "unmanned",
                "reason": p.reason,
                "manned_at_s": None,
                "alt_m": alt_m,
            }
            for p in plan.stations
        ]
        stations += [
            {
                "ring": d.ring,
                "index": -1 - k,
                "lat": None,
                "lon": None,
                "look_deg": None,
                "source": "dropped",
                "vehicle_id": None,
                "eta_s": None,
                "state": "unmanned",
                "reason": d.reason,
                "manned_at_s": None,
                "alt_m": alt_m,
            }
            for k, d in enumerate(plan.dropped)
        ]
        return stations

    async def _plan(self, data: CordonCreate) -> CordonPlan:
        try:
            return await asyncio.to_thread(self.plan, data)
        except PlanningError as err:
            raise InvalidTransition(
                f"the cordon cannot be planned: {err}",
                code="cordons.cannot_be_planned",
                params={"reason": str(err)},
            ) from err

    async def _fly_all(self, live: LiveCordon, plan: CordonPlan, stations: list[dict[str, Any]]) -> None:
        routes = {(p.station.ring, p.station.index): p.route_latlon for p in plan.stations}
        for s in stations:
            if s["vehicle_id"] is not None:
                await self._send(live, s, s["vehicle_id"], routes.get((s["ring"], s["index"]), ()))

    async def start(self, data: CordonCreate, *, actor: str) -> CordonRead:
        plan = await self._plan(data)
        stations = self._stations(plan, data.alt_m)
        with session_scope(self._engine) as session:
            row = Cordon(
                lat=data.lat,
                lon=data.lon,
                incident_id=data.incident_id,
                flee_speed_m_s=data.flee_speed_m_s,
                elapsed_s=data.elapsed_s,
                radii_m=[round(r, 1) for r in plan.radii_m],
                fixed_radii=data.radii_m is not None,
                stations=stations,
                created_by=actor[:100],
            )
            session.add(row)
            session.flush()
            audit.record(
                session=session,
                actor=actor,
                action="cordon.start",
                target=f"cordon:{row.id}",
                details={
                    "radii_m": row.radii_m,
                    "stations": len(stations),
                    "planned_last_s": plan.last_eta_s,
                },
            )
            cordon_id = row.id
            assert cordon_id is not None
        live = self._watch(cordon_id)
        await self._fly_all(live, plan, stations)
        return self.read(cordon_id)

    async def widen(self, cordon_id: int, *, actor: str) -> CordonRead:
        """The rings grow with the time since the incident (flee speed x elapsed): plan them again around the
        scene, re-assign (the cordon's own drones are candidates where they are) and fly the new stations;
        drones left without a station go home. A cordon with fixed radii keeps them."""
        live = self._live.get(cordon_id)
        with Session(self._engine) as session:
            row = session.get(Cordon, cordon_id)
            if row is None:
                raise NotFound(
                    f"cordon {cordon_id} does not exist",
                    code="cordons.cordon_does_not_exist",
                    params={"cordon_id": cordon_id},
                )
            if row.state != "active" or live is None:
                raise InvalidTransition(
                    f"cordon {cordon_id} is not active here",
                    code="cordons.cordon_not_active_here",
                    params={"cordon_id": cordon_id},
                )
            if row.fixed_radii:
                raise InvalidTransition(
                    f"cordon {cordon_id} has fixed radii {row.radii_m}; start a new one",
                    code="cordons.cordon_has_fixed_radii",
                    params={"cordon_id": cordon_id, "radii_m": row.radii_m},
                )
            before = {s["vehicle_id"] for s in row.stations if s.get("vehicle_id") is not None}
            alt = float(row.stations[0]["alt_m"]) if row.stations else 40.0
            elapsed = row.elapsed_s + self._sim_s(live)
            data = CordonCreate(
                lat=row.lat,
                lon=row.lon,
                incident_id=row.incident_id,
                flee_speed_m_s=row.flee_speed_m_s,
                elapsed_s=min(elapsed, 7200),
                alt_m=alt,
            )
        plan = await self._plan(data)
        stations = self._stations(plan, alt)
        with session_scope(self._engine) as session:
            row = session.get(Cordon, cordon_id)
            assert row is not None
            old = row.radii_m
            row.radii_m = [round(r, 1) for r in plan.radii_m]
            row.elapsed_s, row.stations = data.elapsed_s, stations
            session.add(row)
            audit.record(
                session=session,
                actor=actor,
                action="cordon.widen",
                target=f"cordon:{cordon_id}",
                details={"radii_m": row.radii_m, "was": old, "stations": len(stations)},
            )
        live.relief.clear()
        live.due_pct.clear()
        live.started = time.monotonic()
        await self._fly_all(live, plan, stations)
        after = {s["vehicle_id"] for s in stations if s.get("vehicle_id") is not None}
        for vid in before - after:
            with contextlib.suppress(SkywardenError):
                if self._own(vid):
                    await self._executor.send_home(
                        vid, asker=SERVICE, reason=f"cordon {cordon_id}: not needed"
                    )
        return self.read(cordon_id)

    async def end(self, cordon_id: int, *, actor: str) -> CordonRead:
        with session_scope(self._engine) as session:
            row = session.get(Cordon, cordon_id)
            if row is None:
                raise NotFound(
                    f"cordon {cordon_id} does not exist",
                    code="cordons.cordon_does_not_exist",
                    params={"cordon_id": cordon_id},
                )
            if row.state != "active":
                raise InvalidTransition(
                    f"cordon {cordon_id} has ended",
                    code="cordons.cordon_has_ended",
                    params={"cordon_id": cordon_id},
                )
            row.state, row.ended_at = "ended", utcnow()
            session.add(row)
            audit.record(session=session, actor=actor, action="cordon.end", target=f"cordon:{cordon_id}")
            vehicles = {s["vehicle_id"] for s in row.stations if s.get("vehicle_id") is not None}
        live = self._live.pop(cordon_id, None)
        if live is not None and live.task is not None:
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
            vehicles |= set(live.relief.values())
        for vid in vehicles:
            with contextlib.suppress(SkywardenError):
                if self._own(vid):
                    await self._executor.send_home(vid, asker=SERVICE, reason=f"cordon {cordon_id} ended")
        return self.read(cordon_id)

    def read(self, cordon_id: int) -> CordonRead:
        with Session(self._engine) as session:
            row = session.get(Cordon, cordon_id)
            if row is None:
                raise NotFound(
                    f"cordon {cordon_id} does not exist",
                    code="cordons.cordon_does_not_exist",
                    params={"cordon_id": cordon_id},
                )
            out = CordonRead.model_validate(row)
            out.report = report(row)
            return out

    # -- flying ------------------------------------------------------------

    def _own(self, vid: int) -> bool:
        with Session(self._engine) as session:
            f = session.exec(
                select(Flight).where(
                    col(Flight.vehicle_id) == vid, col(Flight.state).in_(["pending", "active"])
                )
            ).first()
        return f is not None and f.purpose == FlightPurpose.CORDON.value

    async def _send(
        self, live: LiveCordon, station: dict[str, Any], vid: int, route: Any, *, relief: bool = False
    ) -> Flight | None:
        alt = float(station["alt_m"])
        snap = self._fleet.latest(vid)
        legs: list[Leg] = []
        if snap is None or not snap.in_air:
            legs.append(Leg(kind=LegKind.TAKEOFF, alt_m=alt))
        legs += [
            Leg(kind=LegKind.GOTO, lat=lat, lon=lon, alt_m=alt, tag="route") for lat, lon in list(route)[1:-1]
        ]
        legs += [
            Leg(
                kind=LegKind.GOTO,
                lat=station["lat"],
                lon=station["lon"],
                alt_m=alt,
                tag="station",
                yaw_deg=station["look_deg"],
            ),
            Leg(kind=LegKind.HOLD),
        ]
        verdict = await self._judge(vid, legs, dwell_s=self.config.hold_s)
        key = _key(station)
        if not verdict.ok:
            self._update(
                live.cordon_id, key, state="unmanned", reason=verdict.message()[:300], vehicle_id=None
            )
            return None
        try:
            if snap is not None and snap.in_air and live.take_patrols:
                await self._preempt(live, vid)
            if legs[0].kind is LegKind.TAKEOFF and self._executor.owns(vid):
                # Another instance's vehicle: its owner uploads this fence first (``_owner_fence``).
                fence = self._station_fence(vid, legs, verdict.nofly)
                if fence is not None:
                    await self._upload_fence(vid, fence)
            flight = await self._executor.start(
                vehicle_id=vid,
                purpose=FlightPurpose.CORDON,
                legs=legs,
                asker=SERVICE,
                action=Action.DISPATCH,
                reason=f"cordon {live.cordon_id} station {key}" + (" relief" if relief else ""),
                incident_id=None,
                verdict=verdict,
            )
        except SkywardenError as err:
            self._update(live.cordon_id, key, state="unmanned", reason=str(err)[:300], vehicle_id=None)
            return None
        if relief:
            live.relief[key] = vid
        if flight.id is not None:
            live.flights.add(flight.id)
        return self._heard_from_start(flight)

    async def _preempt(self, live: LiveCordon, vid: int) -> None:
        """A patrol drone taken for a station: its patrol is paused and its coverage gap backfilled by a
        docked drone, the dispatch way (nothing when the drone flies no patrol mission)."""
        backfill = self._backfill() if self._backfill is not None else None
        if backfill is not None and live.incident_id is not None:
            await backfill.preempt(vid, live.incident_id)

    def _station_fence(self, vid: int, legs: list[Leg], nofly: Any) -> Any | None:
        """The fence of a station flight from the ground: its route to the station and home, with this
        vehicle's restrictions (None when the legs go nowhere)."""
        path = path_of(legs)
        station = next((leg for leg in legs if leg.tag == "station"), None)
        if path is None or station is None or station.lat is None or station.lon is None:
            return None
        line = [(p.lon, p.lat) for p in path.points]
        return build_geofence(
            path_wgs=LineString(line) if len(line) > 1 else Point(line[0]),
            home=self._executor.view(vid).home,
            frame=LocalFrame(station.lat, station.lon),
            zones=nofly,
            margin_m=self._executor.gate.fence_margin_m,
        )

    async def _owner_fence(self, flight: Flight) -> Any | None:
        """Several instances: the fence the owner of a station flight's vehicle uploads before flying it
        from the ground (the same one ``_send`` uploads to this instance's own vehicles)."""
        legs = flight.typed_legs()
        if not legs or legs[0].kind is not LegKind.TAKEOFF:
            return None
        verdict = await self._judge(flight.vehicle_id, legs, dwell_s=self.config.hold_s)
        return self._station_fence(flight.vehicle_id, legs, verdict.nofly)

    def _wanted_flights(self) -> set[int]:
        return {fid for live in self._live.values() for fid in live.flights}

    def _update(self, cordon_id: int, key: str, **values: Any) -> dict[str, Any] | None:
        with session_scope(self._engine) as session:
            row = session.get(Cordon, cordon_id)
            if row is None:
                return None
            stations = [dict(s) for s in row.stations]
            found = None
            for s in stations:
                if _key(s) == key:
                    s.update(values)
                    found = s
            row.stations = stations
            session.add(row)
        return found

    async def _supervise(self, live: LiveCordon) -> None:
        """Relieve drones low on charge; publish the report now and then."""
        last_pub = 0.0
        while True:
            try:
                await self._rotate(live)
                await self._refill(live)
                if time.monotonic() - last_pub > 2.0:
                    last_pub = time.monotonic()
                    self._hub.emit(
                        Event(
                            kind="cordon.report",
                            data={"cordon_id": live.cordon_id, **self.read(live.cordon_id).report},
                        )
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cordon %s: supervision pass failed", live.cordon_id)
            await asyncio.sleep(self.config.tick_s)

    async def _rotate(self, live: LiveCordon) -> None:
        row = self.read(live.cordon_id)
        for s in row.stations:
            vid, key = s.get("vehicle_id"), _key(s)
            if vid is None or s.get("state") != "manned" or key in live.relief:
                continue
            snap = self._fleet.latest(vid)
            if snap is None or snap.battery_pct is None:
                continue
            due = live.due_pct.get((key, vid))
            if due is None:  # the station and the drone's home do not move: judged once
                due = live.due_pct[key, vid] = self._due_pct(self._candidates.states(), vid, s)
            if snap.battery_pct >= max(self.config.rotate_at_pct, due):
                continue
            states = self._candidates.states()
            best = self._best_for(
                s, states=states, busy=self._busy(live, row.stations), fit=self._fit(live.take_patrols)
            )
            if best is not None:
                await self._send(live, s, best.vehicle_id, best.route_latlon, relief=True)

    async def _refill(self, live: LiveCordon) -> None:
        """A station left empty (its drone taken by a pilot or an incident, its flight failed, or no drone
        was free when it was planned) gets the quickest fit drone free now; retried every ``retry_s``."""
        row = self.read(live.cordon_id)
        now = time.monotonic()
        for s in row.stations:
            key = _key(s)
            if s.get("lat") is None or s.get("vehicle_id") is not None or key in live.relief:
                continue
            if live.retry_at.get(key, 0.0) > now:
                continue
            live.retry_at[key] = now + self.config.retry_s
            best = self._best_for(
                s,
                states=self._candidates.states(),
                busy=self._busy(live, row.stations),
                fit=self._fit(live.take_patrols),
            )
            if best is None:
                continue
            self._update(live.cordon_id, key, vehicle_id=best.vehicle_id, state="assigned", reason="")
            flight = await self._send(live, s, best.vehicle_id, best.route_latlon)
            if flight is not None:
                live.refills += 1
                with session_scope(self._engine) as session:
                    audit.record(
                        session=session,
                        actor=SERVICE.name,
                        action="cordon.refilled",
                        target=f"cordon:{live.cordon_id}",
                        details={
                            "station": key,
                            "vehicle_id": best.vehicle_id,
                            "eta_s": round(best.eta_s, 1),
                        },
                    )
            row = self.read(live.cordon_id)

    @staticmethod
    def _busy(live: LiveCordon, stations: list[dict[str, Any]]) -> set[int]:
        return {t["vehicle_id"] for t in stations if t.get("vehicle_id") is not None} | set(
            live.relief.values()
        )

    def _best_for(
        self, s: dict[str, Any], *, states: Any, busy: set[int], fit: tuple[Activity, ...] = FIT
    ) -> CandidateEstimate | None:
        """The fit drone (free, charged, not held) that reaches station ``s`` first with energy to hold."""
        best = None
        for st in states:
            if st.vehicle_id in busy or not st.link_up or st.activity not in fit:
                continue
            if st.battery_pct < self.config.spare_min_pct:
                continue
            space = self._candidates.airspace(
                around=(s["lat"], s["lon"]), alt_m=s["alt_m"], span_s=self.config.hold_s
            )
            e = estimate(
                st,
                DispatchRequest(
                    lat=s["lat"],
                    lon=s["lon"],
                    overhead_s=self.config.hold_s,
                    alt_m=s["alt_m"],
                    min_overhead_s=self.config.min_hold_s,
                ),
                airspace=space,
            )
            if e.feasible and (best is None or e.eta_s < best.eta_s):
                best = e
        return best

    async def _aim(self, cordon_id: int, vid: int, station: dict[str, Any]) -> None:
        """Point the gimbal at the road the station watches (the drone already faces it): a region of
        interest ``AIM_AHEAD_M`` out along ``look_deg`` at ground level. A drone without a gimbal is left
        as it is (its nose faces the road)."""
        video = self._video() if self._video is not None else None
        if video is None or station.get("look_deg") is None:
            return
        look = math.radians(float(station["look_deg"]))
        lat, lon = LocalFrame(station["lat"], station["lon"]).point_to_wgs84(
            AIM_AHEAD_M * math.sin(look), AIM_AHEAD_M * math.cos(look)
        )
        command = CameraCommand(
            kind="point_at",
            lat=lat,
            lon=lon,
            alt_amsl_m=self._fleet.profile(vid).home_alt_m,
            reason=f"cordon {cordon_id} station {_key(station)}: the road",
        )
        try:
            await video.command(vid, command, actor=SERVICE.name)
        except SkywardenError as err:
            log.info("cordon %s: vehicle %s gimbal not aimed: %s", cordon_id, vid, err)

    def _due_pct(self, states: Any, vid: int, station: dict[str, Any]) -> float:
        """The charge below which the drone at ``station`` is relieved: enough left for a relief to come
        (``min_hold_s``), the way home and the reserve (a far drone is due sooner than ``rotate_at_pct``)."""
        st = next((x for x in states if x.vehicle_id == vid), None)
        if st is None:
            return 0.0
        space = self._candidates.airspace(
            around=(station["lat"], station["lon"]), alt_m=station["alt_m"], span_s=self.config.hold_s
        )
        e = estimate(
            replace(st, activity=Activity.IDLE_AIRBORNE, battery_pct=100.0),
            DispatchRequest(
                lat=station["lat"],
                lon=station["lon"],
                overhead_s=self.config.min_hold_s,
                alt_m=station["alt_m"],
            ),
            airspace=space,
        )
        return 100.0 * e.required_wh / st.perf.battery_wh if e.feasible else 0.0

    # -- what the executor tells ------------------------------------------------------------

    def _station_of(self, flight: Flight) -> tuple[LiveCordon, str] | None:
        reason = flight.reason or ""
        if not reason.startswith("cordon "):
            return None
        parts = reason.split()
        try:
            cordon_id, key = int(parts[1]), parts[3]
        except (IndexError, ValueError):
            return None
        live = self._live.get(cordon_id)
        return None if live is None else (live, key)

    async def flight_leg_done(self, flight: Flight, leg: Leg) -> None:
        found = self._station_of(flight)
        if found is None or leg.tag != "station":
            return
        live, key = found
        relieved = None
        if live.relief.get(key) == flight.vehicle_id:
            del live.relief[key]
            row = self.read(live.cordon_id)
            relieved = next((s.get("vehicle_id") for s in row.stations if _key(s) == key), None)
        station = self._update(live.cordon_id, key, vehicle_id=flight.vehicle_id, state="manned", reason="")
        if station is not None:
            self._spawn(
                self._aim(live.cordon_id, flight.vehicle_id, station), name=f"cordon:{live.cordon_id}:aim"
            )
        if station is not None and station.get("manned_at_s") is None:
            self._update(live.cordon_id, key, manned_at_s=round(self._sim_s(live), 1))
        if relieved is not None and relieved != flight.vehicle_id:
            with session_scope(self._engine) as session:
                audit.record(
                    session=session,
                    actor=SERVICE.name,
                    action="cordon.relieved",
                    target=f"cordon:{live.cordon_id}",
                    details={"station": key, "relief": flight.vehicle_id, "relieved": relieved},
                )
            with contextlib.suppress(SkywardenError):
                await self._executor.send_home(
                    relieved, asker=SERVICE, reason=f"cordon {live.cordon_id}: relieved"
                )

    async def flight_ended(self, flight: Flight) -> None:
        found = self._station_of(flight)
        if found is not None:
            found[0].flights.discard(flight.id or 0)
        if found is None or flight.state == FlightState.COMPLETED.value:
            return
        live, key = found
        if flight.outcome.startswith(f"superseded by a return flight (cordon {live.cordon_id}") or (
            flight.outcome.startswith(f"superseded by a cordon flight (cordon {live.cordon_id} ")
        ):
            return  # relieved, moved to a new station, or the cordon ended
        if live.relief.get(key) == flight.vehicle_id:
            del live.relief[key]
            return
        row = self.read(live.cordon_id)
        here = next((s for s in row.stations if _key(s) == key), None)
        if here is not None and here.get("vehicle_id") == flight.vehicle_id:
            self._update(
                live.cordon_id,
                key,
                state="unmanned",
                vehicle_id=None,
                reason=f"its drone's flight {flight.state}: {flight.outcome[:120]}",
            )
