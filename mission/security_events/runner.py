"""The event runner: flies a large event's plan through the one executor, keeps it manned, measures it.

Phases: the pre-doors sweep (each sweep task a flight of one assigned drone; coverage measured from the
flown tracks), then ring patrols (each ring's drones wait at their evenly spaced start points and begin
their laps together, then fly lap after lap) and overwatch posts (fly there and hold). Battery rotation: a
drone low on charge is relieved by a spare; the relief is in place (at the post, or at the point of the
ring the relieved drone is about to pass) before the relieved one is sent home. A hole (a pilot took the
drone, dispatch took it to an incident, a flight failed) is filled by a spare. Stand-down (by a dispatcher
or at the event's end) brings every drone home, then the exemptions expire.

Every movement is a persisted ``Flight`` (purpose ``event``) judged by the gate; the runner only decides.
A restart (or a new leader, with several instances) takes a running event up from its open flights. With
several instances the runner runs on the leader; the flights of vehicles other instances own are flown by
their owners and heard here from their records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry import MultiPoint, Point, Polygon, shape
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.geodesy import LocalFrame, distance_m
from mission.audit import service as audit
from mission.audit.clock import as_utc, utcnow
from mission.db import session_scope
from mission.errors import InvalidTransition, SkywardenError
from mission.flights.executor import FlightExecutor
from mission.flights.models import Flight, FlightPurpose, FlightState, Leg, LegKind
from mission.flights.runners import FlightRunner
from mission.planning import build_geofence
from mission.safety import exemptions
from mission.safety.gate import Action, Asker
from mission.security_events import service
from mission.security_events.models import SecurityEvent, SecurityEventRead
from mission.telemetry.events import Event, EventSink
from mission.video.commands import CameraCommand

log = logging.getLogger(__name__)
SERVICE = Asker("system:events")
LatLon = tuple[float, float]
_EVENT_OR_HOME = (FlightPurpose.EVENT.value, FlightPurpose.RETURN.value)


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """How the runner flies an event (altitudes in metres above home, charges in percent)."""

    alt_m: float = 50.0
    tick_s: float = 0.5  # wall seconds between supervision passes
    rotate_at_pct: float = 45.0  # a drone below this is relieved
    spare_min_pct: float = 60.0  # a spare must have at least this to take a slot
    visit_within_m: float = 35.0  # a checkpoint or a post counts as visited/manned this close
    laps_per_flight: int = 1
    speed_factor: float = 1.0
    publish_every_s: float = 2.0
    standdown_wait_s: float = 300.0  # wall seconds to wait for every drone to land before expiring

    @classmethod
    def from_settings(cls, settings: Any) -> RunnerConfig:
        return cls(
            alt_m=settings.event_alt_m,
            rotate_at_pct=settings.event_rotate_at_pct,
            spare_min_pct=settings.event_spare_min_pct,
            speed_factor=settings.sim_speed,
        )


@dataclass
class Slot:
    """One thing to keep flown: a sweep strip, a drone's place on a ring, or an overwatch post."""

    key: str
    kind: str  # sweep, ring, post
    waypoints: list[LatLon]
    ring: int | None = None
    vehicle_id: int | None = None
    flight_id: int | None = None
    stage: str = "idle"  # idle, to_station, at_station, lapping, done
    start_index: int = 0  # ring: the waypoint its laps start from
    relief_vehicle: int | None = None
    relief_flight: int | None = None
    relief_at: int | None = None  # ring: the waypoint index the relief waits at
    relief_ready: bool = False  # the relief is in place
    orbit: tuple[float, float, float] | None = None  # ring: (lat, lon, radius) when it is a plain circle
    speed_m_s: float = 10.0


@dataclass
class Measures:
    """Live figures of one event, bounded in size whatever the event's length."""

    frame: LocalFrame
    sweep_grid: np.ndarray  # (n, 2) local points of the venue
    sweep_hit: np.ndarray  # bool per grid point
    swath_m: float
    ring_points: dict[int, np.ndarray] = field(default_factory=dict)  # ring -> (k, 2) checkpoints
    ring_last: dict[int, np.ndarray] = field(default_factory=dict)  # sim s of the last visit per checkpoint
    ring_gap_max: dict[int, float] = field(default_factory=dict)
    ring_target_s: float = 0.0
    post_manned_s: float = 0.0
    post_total_s: float = 0.0
    sweep_done_at: float | None = None  # wall unix time
    last_measured_s: float | None = None  # sim s
    stood_down_s: float | None = None  # sim s: the rings stopped being flown then
    last_pos: dict[int, tuple[float, float]] = field(default_factory=dict)  # where each drone was last tick
    sweep_done_before_doors: bool = False
    reliefs: int = 0
    fills: int = 0
    incursions: int = 0
    inside: set[int] = field(default_factory=set)  # non-exempt vehicles inside the zone now
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def note(self, entry: str, /, **details: Any) -> None:
        self.timeline.append({**details, "at": utcnow().isoformat(), "what": entry})
        del self.timeline[:-200]  # the latest 200 entries: bounded

    def ring_gaps(self, now_s: float) -> dict[int, float]:
        """Per ring the worst revisit gap flown so far (the open one counts, up to the stand-down)."""
        if self.stood_down_s is not None:
            now_s = min(now_s, self.stood_down_s)
        out = {}
        for ring, last in self.ring_last.items():
            open_gap = float(np.max(now_s - last)) if len(last) else 0.0
            out[ring] = max(self.ring_gap_max.get(ring, 0.0), open_gap)
        return out


@dataclass
class EventRun:
    event_id: int
    name: str
    zone: Polygon | None
    doors_at: float  # wall unix time
    ends_at: float
    slots: list[Slot]
    measures: Measures
    assigned: list[int]
    centre: LatLon = (0.0, 0.0)  # the venue's centroid: what posts look at
    state: str = "sweep"
    lost: set[int] = field(default_factory=set)  # taken by a pilot or another task: not a spare
    fenced: set[int] = field(default_factory=set)  # vehicles given the event's geofence
    task: asyncio.Task[None] | None = None


def _latlons(points: Any) -> list[LatLon]:
    return [(float(p[0]), float(p[1])) for p in points]


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each of ``points`` to the segment a-b (the track flown since the last tick)."""
    ab = b - a
    length2 = float(ab @ ab)
    t = np.zeros(len(points)) if length2 == 0 else np.clip((points - a) @ ab / length2, 0.0, 1.0)
    nearest = a + t[:, None] * ab
    return np.hypot(*(points - nearest).T)


def sweep_grid(venue: Polygon, *, spacing_m: float) -> np.ndarray:
    """Points of ``venue`` (local metres) on a square grid ``spacing_m`` apart: what a sweep must see."""
    minx, miny, maxx, maxy = venue.bounds
    xs = np.arange(minx + spacing_m / 2, maxx, spacing_m)
    ys = np.arange(miny + spacing_m / 2, maxy, spacing_m)
    pts = [(x, y) for x in xs for y in ys if venue.contains(Point(x, y))]
    return np.array(pts, dtype=float).reshape(-1, 2)


class EventRunner(FlightRunner):
    """Starts, supervises and stands down large events; one ``event:{id}`` task per running event."""

    name = "events"
    asker = SERVICE

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: Any,
        hub: EventSink,
        executor: FlightExecutor,
        config: RunnerConfig | None = None,
        video: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config or RunnerConfig()
        # Several instances: event flights flown by the owners of their vehicles are heard from their
        # records, and the owner uploads the event's fence before flying one (``_owner_fence``).
        super().__init__(
            engine=engine, executor=executor, purpose=FlightPurpose.EVENT, tick_s=self.config.tick_s
        )
        self._video = video  # the video service (camera and gimbal commands), when there is one
        self._fleet = fleet
        self._hub = hub
        self._runs: dict[int, EventRun] = {}

    async def __aenter__(self) -> EventRunner:
        with Session(self._engine) as session:
            running = list(
                session.exec(select(SecurityEvent).where(col(SecurityEvent.state).in_(["running"])))
            )
            standing = list(
                session.exec(select(SecurityEvent).where(col(SecurityEvent.state) == "standing_down"))
            )
        for row in running:
            self._launch(row, recovering=True)
        for row in standing:
            self._spawn(self._finish_stand_down(row.id or 0, actor="system:recovery"), name="event:standdown")
        self._start_hearing()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_tasks(*(r.task for r in self._runs.values()))
        self._runs.clear()  # entered again when this instance leads again (several instances)

    def _now_s(self) -> float:
        """Simulated seconds (wall seconds times the speed factor): revisit gaps are in flight time."""
        return time.monotonic() * self.config.speed_factor

    # -- what the API asks ------------------------------------------------------------------------------

    async def start(self, event_id: int, *, actor: str) -> SecurityEventRead:
        with session_scope(self._engine) as session:
            row = service.get(session=session, event_id=event_id)
            if row.state != "planned":
                raise InvalidTransition(
                    f"security event {event_id} is {row.state}; only a planned one starts",
                    code="security_events.security_event_only_planned",
                    params={"event_id": event_id, "state": row.state},
                )
            if not row.assigned:
                raise InvalidTransition(
                    f"security event {event_id} has no assigned vehicles",
                    code="security_events.security_event_has_assigned",
                    params={"event_id": event_id},
                )
            if as_utc(row.ends_at) <= utcnow():
                raise InvalidTransition(
                    f"security event {event_id} ended at {row.ends_at.isoformat()}",
                    code="security_events.security_event_ended",
                    params={"event_id": event_id, "isoformat": row.ends_at.isoformat()},
                )
            row.state, row.started_at = "running", utcnow()
            session.add(row)
            audit.record(
                session=session,
                actor=actor,
                action="security_event.start",
                target=f"security_event:{event_id}",
                details={"vehicles": row.assigned},
            )
            session.flush()
            self._launch(row)
            return service.read(session=session, row=row)

    async def stand_down(self, event_id: int, *, actor: str) -> SecurityEventRead:
        with session_scope(self._engine) as session:
            row = service.get(session=session, event_id=event_id)
            if row.state not in ("running", "planned"):
                raise InvalidTransition(
                    f"security event {event_id} is {row.state}",
                    code="security_events.security_event",
                    params={"event_id": event_id, "state": row.state},
                )
            row.state = "standing_down"
            session.add(row)
            audit.record(
                session=session,
                actor=actor,
                action="security_event.stand_down",
                target=f"security_event:{event_id}",
                details={},
            )
        run = self._runs.get(event_id)
        if run is not None and run.task is not None and run.task is not asyncio.current_task():
            run.task.cancel()
            await asyncio.gather(run.task, return_exceptions=True)
        if run is not None:
            run.state = "standing_down"
            run.measures.stood_down_s = self._now_s()
            run.measures.note("stand-down", by=actor)
        await self._send_all_home(event_id)
        self._spawn(self._finish_stand_down(event_id, actor=actor), name=f"event:{event_id}:standdown")
        with Session(self._engine) as session:
            return service.read(session=session, row=service.get(session=session, event_id=event_id))

    def measures(self, event_id: int) -> dict[str, Any]:
        run = self._runs.get(event_id)
        if run is None:
            return {"event_id": event_id, "running": False, "state": "not running here"}
        return self._figures(run)

    # -- set-up ---------------------------------------------------------------------------------------------

    def _launch(self, row: SecurityEvent, *, recovering: bool = False) -> None:
        assert row.id is not None
        plan = row.plan
        venue = shape(row.venue)
        assert isinstance(venue, Polygon)
        frame = LocalFrame(venue.centroid.y, venue.centroid.x)
        local_venue = frame.to_local(venue)
        swath = float(plan.get("swath_m", 40.0))
        grid = sweep_grid(local_venue, spacing_m=max(5.0, swath / 4))
        m = Measures(
            frame=frame,
            sweep_grid=grid,
            sweep_hit=np.zeros(len(grid), dtype=bool),
            swath_m=swath,
            ring_target_s=row.revisit_s,
        )
        slots: list[Slot] = []
        for t in plan.get("sweep", []):
            slots.append(Slot(key=f"sweep:{t['drone']}", kind="sweep", waypoints=_latlons(t["waypoints"])))
        for t in plan.get("rings", []):
            pts = _latlons(t["waypoints"])
            if len(pts) > 1 and pts[0] == pts[-1]:
                pts = pts[:-1]
            slot = Slot(key=f"ring:{t['ring']}:{t['drone']}", kind="ring", waypoints=pts, ring=t["ring"])
            radius = float(t["radius_m"])
            centre = (venue.centroid.y, venue.centroid.x)
            if all(abs(distance_m(*centre, *p) - radius) < 3.0 for p in pts):
                # No detour: flown as an orbit at constant speed, so the phases hold lap after lap.
                slot.orbit = (centre[0], centre[1], radius)
                slot.speed_m_s = float(plan.get("speed_m_s", 10.0))
            slots.append(slot)
            if t["ring"] not in m.ring_points:
                m.ring_points[t["ring"]] = np.array([frame.point_to_local(*p) for p in pts])
        posts = plan.get("overwatch", [])
        spare_drones = len(row.assigned) - sum(1 for s in slots if s.kind == "ring")
        for p in posts[: max(0, spare_drones - 1)]:  # keep one spare for rotation
            slots.append(Slot(key=f"post:{p['index']}", kind="post", waypoints=[(p["lat"], p["lon"])]))
        zone = None
        if row.zone_id is not None:
            with Session(self._engine) as session:
                from mission.airspace import service as airspace

                z = airspace.get_zone(session=session, zone_id=row.zone_id)
                zone = airspace.shape_geometry(z.shape)
        run = EventRun(
            event_id=row.id,
            name=row.name,
            zone=zone,
            doors_at=as_utc(row.doors_open_at).timestamp(),
            ends_at=as_utc(row.ends_at).timestamp(),
            slots=slots,
            measures=m,
            assigned=list(row.assigned),
            centre=(venue.centroid.y, venue.centroid.x),
        )
        if recovering:
            self._recover(run)
        self._runs[row.id] = run
        run.task = self._spawn(self._run(run), name=f"event:{row.id}")

    def _recover(self, run: EventRun) -> None:
        """After a restart (or on a new leader), take the event up where its flights are: every open event
        flight goes back to its slot (the executor flies it on; nothing is launched again), a sweep strip
        flown before is not flown twice, and once rings or posts were flown the sweep is over."""
        prefix = f"event {run.event_id} "
        with Session(self._engine) as session:
            rows = [
                f
                for f in session.exec(
                    select(Flight)
                    .where(col(Flight.purpose) == FlightPurpose.EVENT.value)
                    .where(col(Flight.reason).startswith(prefix))
                    .order_by(col(Flight.id))
                )
            ]
        by_key = {s.key: s for s in run.slots}
        recovered, patrolled = [], False
        for f in rows:
            words = f.reason[len(prefix) :].split()
            if len(words) != 2:
                continue
            key, what = (words[1], "sweep") if words[0] == "sweep" else (words[0], words[1])
            slot = by_key.get(key)
            if slot is None:
                continue
            patrolled = patrolled or slot.kind != "sweep"
            if slot.kind == "sweep" and slot.stage == "idle":
                slot.stage = "done"  # flown (or tried) before the restart: never flown twice
            if f.state not in (FlightState.PENDING.value, FlightState.ACTIVE.value):
                continue
            legs = f.typed_legs()
            station = next((i for i, leg in enumerate(legs) if leg.tag == "station"), None)
            arrived = station is not None and f.leg_index > station
            run.fenced.add(f.vehicle_id)
            recovered.append(f.vehicle_id)
            if what == "relief":
                slot.relief_vehicle, slot.relief_flight = f.vehicle_id, f.id
                slot.relief_at = self._nearest_index(slot, legs[station]) if station is not None else 0
                slot.relief_ready = arrived
                continue
            slot.vehicle_id, slot.flight_id = f.vehicle_id, f.id
            if slot.kind == "sweep":
                # Its strip is flown once the flight holds at the end (the hold is its last leg).
                slot.stage = "done" if f.leg_index >= len(legs) - 1 else "to_station"
            elif what == "laps":
                slot.stage = "lapping"
                gotos = [leg for leg in legs if leg.kind is LegKind.GOTO]
                slot.start_index = self._nearest_index(slot, gotos[-1]) if gotos else slot.start_index
            else:
                slot.stage = "at_station" if arrived else "to_station"
                if station is not None and slot.kind == "ring":
                    slot.start_index = self._nearest_index(slot, legs[station])
        if patrolled:
            run.state = "patrol"
            for slot in run.slots:
                if slot.kind == "sweep":
                    slot.stage, slot.vehicle_id = "done", None  # sweepers are spares now
        m = run.measures
        now = self._now_s()
        for ring in {s.ring for s in run.slots if s.kind == "ring" and s.stage == "lapping"}:
            if ring is not None:
                # Revisit gaps are measured from here on: the gap across the restart is not known.
                m.ring_last[ring] = np.full(len(m.ring_points[ring]), now)
        m.note("recovered after a restart", flights=len(recovered), vehicles=sorted(set(recovered)))

    @staticmethod
    def _nearest_index(slot: Slot, leg: Leg) -> int:
        lat, lon = leg.lat, leg.lon
        if lat is None or lon is None or not slot.waypoints:
            return 0
        return min(range(len(slot.waypoints)), key=lambda i: distance_m(lat, lon, *slot.waypoints[i]))

    # -- flying -------------------------------------------------------------------------------------------

    async def _fly(self, run: EventRun, vid: int, legs: list[Leg], *, why: str) -> Flight | None:
        """Judge, fence and start one event flight; None (noted) when the gate refuses it."""
        verdict = await self._judge(vid, legs)
        if not verdict.ok:
            run.measures.note("refused", vehicle_id=vid, task=why, reason=verdict.message()[:300])
            with session_scope(self._engine) as session:
                audit.record(
                    session=session,
                    actor=SERVICE.name,
                    action="security_event.flight.refused",
                    target=f"vehicle:{vid}",
                    details=verdict.details(),
                )
            return None
        try:
            if vid not in run.fenced and self._executor.owns(vid):
                # One fence for the whole event (every sweep, ring, post and the way home), with this
                # vehicle's restrictions: its exempt event zone is not fenced off, no-fly zones are.
                fence = self._event_fence(vid, [p for s in run.slots for p in s.waypoints], verdict.nofly)
                await self._upload_fence(vid, fence)
                run.fenced.add(vid)
            flight = await self._executor.start(
                vehicle_id=vid,
                purpose=FlightPurpose.EVENT,
                legs=legs,
                asker=SERVICE,
                action=Action.DISPATCH,
                reason=f"event {run.event_id} {why}",
                verdict=verdict,
            )
            return self._heard_from_start(flight)
        except SkywardenError as err:
            run.measures.note("flight failed to start", vehicle_id=vid, task=why, reason=str(err)[:200])
            return None

    def _event_fence(self, vid: int, points: list[LatLon], nofly: Any) -> Any:
        """One fence for the whole event (every sweep, ring, post and the way home), with this vehicle's
        restrictions: its exempt event zone is not fenced off, no-fly zones are."""
        view = self._executor.view(vid)
        corners = [(lon, lat) for lat, lon in points]
        corners.append((view.home[1], view.home[0]))
        return build_geofence(
            path_wgs=MultiPoint(corners),
            home=view.home,
            frame=LocalFrame(*points[0]) if points else LocalFrame(*view.home[:2]),
            zones=nofly,
            margin_m=self._executor.gate.fence_margin_m,
        )

    async def _owner_fence(self, flight: Flight) -> Any | None:
        """The event's fence (the plan's points from the database, the no-fly zones the gate names for
        this vehicle), uploaded by the owner of ``flight``'s vehicle before flying it."""
        words = (flight.reason or "").split()
        if len(words) < 2 or words[0] != "event" or not words[1].isdigit():
            return None
        with Session(self._engine) as session:
            row = session.get(SecurityEvent, int(words[1]))
            if row is None:
                return None
            plan = row.plan
        points: list[LatLon] = [
            p
            for task in (*plan.get("sweep", []), *plan.get("rings", []))
            for p in _latlons(task["waypoints"])
        ]
        points += [(float(p["lat"]), float(p["lon"])) for p in plan.get("overwatch", [])]
        legs = flight.typed_legs()
        points += [(leg.lat, leg.lon) for leg in legs if leg.lat is not None and leg.lon is not None]
        verdict = await self._judge(flight.vehicle_id, legs)
        return self._event_fence(flight.vehicle_id, points, verdict.nofly)

    def _wanted_flights(self) -> set[int]:
        return {
            fid
            for run in self._runs.values()
            if run.state != "ended"
            for s in run.slots
            for fid in (s.flight_id, s.relief_flight)
            if fid is not None
        }

    def _takeoff(self, vid: int) -> list[Leg]:
        snap = self._fleet.latest(vid)
        if snap is not None and snap.in_air:
            return []
        return [Leg(kind=LegKind.TAKEOFF, alt_m=self.config.alt_m)]

    def _goto(self, p: LatLon, tag: str = "", *, yaw_deg: float | None = None) -> Leg:
        return Leg(kind=LegKind.GOTO, lat=p[0], lon=p[1], alt_m=self.config.alt_m, tag=tag, yaw_deg=yaw_deg)  # type: ignore[arg-type]

    def _station_leg(self, run: EventRun, slot: Slot, p: LatLon) -> Leg:
        """The goto to a slot's station; at a post the drone faces the venue (its sector), nose inward."""
        if slot.kind != "post":
            return self._goto(p, "station")
        x, y = LocalFrame(*p).point_to_local(*run.centre)
        return self._goto(p, "station", yaw_deg=round(math.degrees(math.atan2(x, y)) % 360.0, 1))

    def _aim(self, run: EventRun, vid: int, slot: Slot) -> None:
        """At a post the gimbal looks at the venue's centre at ground level (a drone without one is left
        facing it)."""
        video = self._video() if self._video is not None else None
        if video is None or slot.kind != "post":
            return
        command = CameraCommand(
            kind="point_at",
            lat=run.centre[0],
            lon=run.centre[1],
            alt_amsl_m=self._fleet.profile(vid).home_alt_m,
            reason=f"event {run.event_id} {slot.key}: the venue",
        )

        async def aim() -> None:
            try:
                await video.command(vid, command, actor=SERVICE.name)
            except SkywardenError as err:
                log.info("event %s: vehicle %s gimbal not aimed: %s", run.event_id, vid, err)

        self._spawn(aim(), name=f"event:{run.event_id}:aim")

    def _lap_legs(self, slot: Slot, start: int) -> list[Leg]:
        if slot.orbit is not None:
            lat, lon, radius = slot.orbit
            return [
                Leg(
                    kind=LegKind.ORBIT,
                    lat=lat,
                    lon=lon,
                    alt_m=self.config.alt_m,
                    radius_m=radius,
                    speed_m_s=slot.speed_m_s,
                    clockwise=True,
                )
            ]
        n = len(slot.waypoints)
        order = [slot.waypoints[(start + k) % n] for k in range(1, n + 1)]
        laps = [self._goto(p) for _ in range(self.config.laps_per_flight) for p in order]
        return [*laps, Leg(kind=LegKind.HOLD)]

    def _busy(self, run: EventRun) -> set[int]:
        out = set()
        for s in run.slots:
            if s.vehicle_id is not None and s.stage != "done":
                out.add(s.vehicle_id)
            if s.relief_vehicle is not None:
                out.add(s.relief_vehicle)
        return out

    def _spares(self, run: EventRun) -> list[int]:
        """Assigned vehicles free to take a slot: connected, charged, not held by a pilot, fullest first."""
        busy = self._busy(run)
        holders = self._executor.supervision()
        out = []
        for vid in run.assigned:
            if vid in busy or vid in run.lost:
                continue
            snap = self._fleet.latest(vid)
            if snap is None or not snap.link_up or snap.battery_pct is None:
                continue
            if snap.battery_pct < self.config.spare_min_pct:
                continue
            sup = holders.get(vid)
            if sup is not None and (sup.startswith("pilot:") or sup.startswith("mission:")):
                continue
            if not self._own_flight(vid):
                continue  # flying something else (from the database: on whichever instance owns it)
            out.append((snap.in_air, snap.battery_pct, vid))
        out.sort(key=lambda t: (not t[0], -t[1]))  # airborne first (quicker), then fullest
        return [vid for _, _, vid in out]

    def _open_purpose(self, vid: int) -> str | None:
        with Session(self._engine) as session:
            f = session.exec(
                select(Flight).where(
                    col(Flight.vehicle_id) == vid, col(Flight.state).in_(["pending", "active"])
                )
            ).first()
        return None if f is None else f.purpose

    def _own_flight(self, vid: int) -> bool:
        """No open flight, or an event flight or a way home (not another task's)."""
        purpose = self._open_purpose(vid)
        return purpose is None or purpose in _EVENT_OR_HOME

    async def _run(self, run: EventRun) -> None:
        try:
            if run.state != "sweep":
                pass  # recovered mid-patrol
            elif time.time() < run.doors_at:
                await self._sweep(run)
            else:
                run.measures.note("sweep skipped: doors already open")
            run.state = "patrol"
            run.measures.note("patrols start")
            await self._patrol(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event %s: runner failed; standing it down", run.event_id)
            self._spawn(self.stand_down(run.event_id, actor="system:events"), name="event:failsafe")

    async def _sweep(self, run: EventRun) -> None:
        sweeps = [s for s in run.slots if s.kind == "sweep"]
        for i, slot in enumerate(sweeps):
            if slot.stage != "idle":
                continue  # recovered: flying, or flown before a restart
            vid = run.assigned[i % len(run.assigned)]
            legs = [
                *self._takeoff(vid),
                # Sweep corners are reached closely (as a route's are): the lines are flown to their ends.
                *(self._goto(p, "route") for p in slot.waypoints),
                Leg(kind=LegKind.HOLD),
            ]
            flight = await self._fly(run, vid, legs, why=f"sweep {slot.key}")
            if flight is not None:
                slot.vehicle_id, slot.flight_id, slot.stage = vid, flight.id, "to_station"
        run.measures.note("sweep started", drones=[s.vehicle_id for s in sweeps])
        while any(s.stage in ("to_station", "at_station") for s in sweeps):
            self._measure(run)
            if time.time() >= run.ends_at:
                return
            await asyncio.sleep(self.config.tick_s)
        self._measure(run)
        m = run.measures
        m.sweep_done_at = time.time()
        m.sweep_done_before_doors = m.sweep_done_at <= run.doors_at and all(s.stage == "done" for s in sweeps)
        m.note("sweep done", before_doors=m.sweep_done_before_doors, coverage=self._coverage(run))
        for s in sweeps:
            s.vehicle_id = None  # free for the patrols

    async def _patrol(self, run: EventRun) -> None:
        last_pub = 0.0
        for slot in (s for s in run.slots if s.kind in ("ring", "post") and s.vehicle_id is None):
            await self._man(run, slot)
        busy = self._busy(run)
        for vid in run.assigned:  # sweepers without a slot go home to wait as spares
            snap = self._fleet.latest(vid)
            if vid not in busy and snap is not None and snap.in_air and self._own_flight(vid):
                with contextlib.suppress(SkywardenError):
                    await self._executor.send_home(vid, asker=SERVICE, reason=f"event {run.event_id}: spare")
        while time.time() < run.ends_at:
            await self._start_rings_together(run)
            await self._rotate(run)
            await self._fill_holes(run)
            self._measure(run)
            if time.monotonic() - last_pub >= self.config.publish_every_s:
                last_pub = time.monotonic()
                self._publish(run)
            await asyncio.sleep(self.config.tick_s)
        self._spawn(self.stand_down(run.event_id, actor="system:events"), name=f"event:{run.event_id}:end")

    async def _man(self, run: EventRun, slot: Slot, *, vid: int | None = None, at: int | None = None) -> bool:
        """Send a drone (a spare unless ``vid``) to the slot's station; a ring slot waits there to lap."""
        spares = [vid] if vid is not None else self._spares(run)
        for candidate in spares:
            index = slot.start_index if at is None else at
            if slot.kind == "ring":
                index = self._ring_start_index(run, slot) if at is None else at
            station = slot.waypoints[index]
            legs = [*self._takeoff(candidate), self._station_leg(run, slot, station), Leg(kind=LegKind.HOLD)]
            flight = await self._fly(run, candidate, legs, why=f"{slot.key} station")
            if flight is None:
                continue
            slot.vehicle_id, slot.flight_id, slot.stage, slot.start_index = (
                candidate,
                flight.id,
                "to_station",
                index,
            )
            run.measures.note("to station", slot=slot.key, vehicle_id=candidate)
            return True
        run.measures.note("unmanned", slot=slot.key, reason="no spare drone with charge")
        return False

    def _ring_start_index(self, run: EventRun, slot: Slot) -> int:
        """Ring slots are stored already rotated to their phase: each starts at its own first waypoint."""
        return 0

    async def _start_rings_together(self, run: EventRun) -> None:
        """When every drone of a ring is at its start point, all begin their laps at once (phases kept)."""
        rings: dict[int, list[Slot]] = {}
        for s in run.slots:
            if s.kind == "ring" and s.ring is not None:
                rings.setdefault(s.ring, []).append(s)
        for ring, slots in rings.items():
            waiting = [s for s in slots if s.stage == "at_station" and s.relief_at is None]
            if not waiting:
                continue
            lapping = [s for s in slots if s.stage == "lapping"]
            if lapping:  # a hole filled mid-run: it laps from where it is at once
                for s in waiting:
                    await self._lap(run, s)
                continue
            if len(waiting) == len(slots):
                for s in waiting:
                    await self._lap(run, s)
                m = run.measures
                m.ring_last[ring] = np.full(len(m.ring_points[ring]), self._now_s())
                m.note("ring laps start", ring=ring, drones=[s.vehicle_id for s in slots])

    async def _lap(self, run: EventRun, slot: Slot) -> None:
        assert slot.vehicle_id is not None
        flight = await self._fly(
            run, slot.vehicle_id, self._lap_legs(slot, slot.start_index), why=f"{slot.key} laps"
        )
        if flight is None:
            # Refused (its charge no longer covers a lap and the way home): the relief takes over now if it
            # is in place; otherwise the drone goes home and the slot is a hole for a spare to fill.
            if slot.relief_ready and slot.relief_vehicle is not None:
                await self._hand_over(run, slot)
                return
            tired = slot.vehicle_id
            slot.vehicle_id, slot.flight_id, slot.stage = None, None, "idle"
            run.measures.note("hole", slot=slot.key, vehicle_id=tired, why="lap refused")
            if tired is not None:
                with contextlib.suppress(SkywardenError):
                    await self._executor.send_home(
                        tired, asker=SERVICE, reason=f"event {run.event_id}: spent"
                    )
            return
        slot.flight_id, slot.stage = flight.id, "lapping"

    async def _rotate(self, run: EventRun) -> None:
        """Relieve drones low on charge; the relieved one leaves only once its relief is in place."""
        for slot in run.slots:
            if slot.kind not in ("ring", "post") or slot.vehicle_id is None:
                continue
            snap = self._fleet.latest(slot.vehicle_id)
            if snap is None or snap.battery_pct is None:
                continue
            if slot.relief_vehicle is None and snap.battery_pct < self.config.rotate_at_pct:
                if slot.stage not in ("lapping", "at_station"):
                    continue
                spares = self._spares(run)
                if not spares:
                    continue
                at = self._ahead_index(run, slot) if slot.kind == "ring" else 0
                station = slot.waypoints[at]
                legs = [
                    *self._takeoff(spares[0]),
                    self._station_leg(run, slot, station),
                    Leg(kind=LegKind.HOLD),
                ]
                flight = await self._fly(run, spares[0], legs, why=f"{slot.key} relief")
                if flight is None:
                    continue
                slot.relief_vehicle, slot.relief_flight, slot.relief_at = spares[0], flight.id, at
                run.measures.note("relief sent", slot=slot.key, relief=spares[0], relieved=slot.vehicle_id)
            elif (
                slot.relief_vehicle is not None
                and slot.relief_at is not None
                and slot.relief_ready
                and (slot.kind == "post" or self._passing(slot.vehicle_id, slot.waypoints[slot.relief_at]))
            ):
                await self._hand_over(run, slot)

    def _ahead_index(self, run: EventRun, slot: Slot) -> int:
        """The ring waypoint a quarter lap ahead of the drone: where its relief waits for it."""
        snap = self._fleet.latest(slot.vehicle_id or 0)
        n = len(slot.waypoints)
        if snap is None or snap.lat is None or snap.lon is None:
            return 0
        here = min(range(n), key=lambda i: distance_m(snap.lat, snap.lon, *slot.waypoints[i]))
        return (here + max(1, n // 4)) % n

    def _passing(self, vid: int | None, p: LatLon) -> bool:
        snap = self._fleet.latest(vid or 0)
        if snap is None or snap.lat is None or snap.lon is None:
            return False
        return distance_m(snap.lat, snap.lon, *p) <= self.config.visit_within_m

    async def _hand_over(self, run: EventRun, slot: Slot) -> None:
        relieved, relief = slot.vehicle_id, slot.relief_vehicle
        assert relieved is not None and relief is not None
        slot.vehicle_id, slot.flight_id = relief, slot.relief_flight
        slot.start_index = slot.relief_at or 0
        slot.relief_vehicle = slot.relief_flight = slot.relief_at = None
        slot.relief_ready = False
        run.measures.reliefs += 1
        run.measures.note("relieved", slot=slot.key, relief=relief, relieved=relieved)
        if slot.kind == "ring":
            await self._lap(run, slot)
        else:
            slot.stage = "at_station"
        with contextlib.suppress(SkywardenError):
            await self._executor.send_home(relieved, asker=SERVICE, reason=f"event {run.event_id}: relieved")

    async def _fill_holes(self, run: EventRun) -> None:
        for slot in run.slots:
            if slot.kind in ("ring", "post") and slot.stage == "idle" and slot.vehicle_id is None:
                at = self._hole_index(run, slot) if slot.kind == "ring" else 0
                if await self._man(run, slot, at=at):
                    run.measures.fills += 1

    def _hole_index(self, run: EventRun, slot: Slot) -> int:
        """Where a ring's hole is: the waypoint midway across the widest gap between its drones."""
        others = [s for s in run.slots if s.ring == slot.ring and s is not slot and s.vehicle_id is not None]
        n = len(slot.waypoints)
        idx = []
        for s in others:
            snap = self._fleet.latest(s.vehicle_id or 0)
            if snap is None or snap.lat is None or snap.lon is None:
                continue
            idx.append(min(range(n), key=lambda i: distance_m(snap.lat, snap.lon, *slot.waypoints[i])))
        if not idx:
            return slot.start_index
        idx.sort()
        gaps = [((idx[(k + 1) % len(idx)] - idx[k]) % n or n, idx[k]) for k in range(len(idx))]
        width, start = max(gaps)
        return (start + width // 2) % n

    # -- what the executor tells ------------------------------------------------------------------------

    def _slot_of(self, flight_id: int | None) -> tuple[EventRun, Slot, bool] | None:
        for run in self._runs.values():
            for s in run.slots:
                if s.flight_id == flight_id:
                    return run, s, False
                if s.relief_flight == flight_id:
                    return run, s, True
        return None

    async def flight_leg_done(self, flight: Flight, leg: Leg) -> None:
        found = self._slot_of(flight.id)
        if found is None:
            return
        run, slot, relief = found
        # Sweeps and laps end in a hold (never unsupervised in the air): their last goto is their end.
        last_goto = flight.leg_index == len(flight.legs) - 2 and leg.kind is LegKind.GOTO
        if relief and leg.tag == "station":
            slot.relief_ready = True
            run.measures.note("relief in place", slot=slot.key, vehicle_id=flight.vehicle_id)
            self._aim(run, flight.vehicle_id, slot)
        elif relief:
            return
        elif slot.kind == "sweep" and last_goto:
            slot.stage = "done"
        elif slot.kind == "ring" and slot.stage == "lapping" and last_goto and run.state == "patrol":
            await self._lap(run, slot)  # lap after lap, from the same point: the phase holds
        elif leg.tag == "station" and slot.kind in ("ring", "post") and slot.stage == "to_station":
            slot.stage = "at_station"
            run.measures.note("at station", slot=slot.key, vehicle_id=flight.vehicle_id)
            self._aim(run, flight.vehicle_id, slot)

    async def flight_ended(self, flight: Flight) -> None:
        found = self._slot_of(flight.id)
        if found is None:
            return
        run, slot, relief = found
        if run.state == "standing_down":
            return
        if flight.state == FlightState.COMPLETED.value:
            if slot.kind == "sweep":
                slot.stage = "done"
            elif slot.kind == "ring" and slot.stage == "lapping" and not relief:
                await self._lap(run, slot)  # lap after lap, from the same point: the phase holds
            return
        if flight.state == FlightState.SUPERSEDED.value and (
            flight.outcome.startswith(f"superseded by a {FlightPurpose.EVENT.value} flight")
            or f"event {run.event_id}" in flight.outcome
        ):
            return  # the runner's own next step (laps after the station, home after a relief)
        # Superseded (dispatch took it to an incident), handed over to a pilot, failed: a hole.
        if flight.state == FlightState.HANDED_OVER.value:
            run.lost.add(flight.vehicle_id)
        elif flight.state == FlightState.SUPERSEDED.value:
            run.lost.add(flight.vehicle_id)  # taken for another task (an incident)
        if relief:
            slot.relief_vehicle = slot.relief_flight = slot.relief_at = None
            slot.relief_ready = False
            return
        if slot.kind == "sweep":
            slot.stage = "done" if flight.state == FlightState.SUPERSEDED.value else "failed"
            return
        if slot.flight_id == flight.id:
            run.measures.note("hole", slot=slot.key, vehicle_id=flight.vehicle_id, why=flight.state)
            slot.vehicle_id, slot.flight_id, slot.stage = None, None, "idle"

    # -- stand-down -----------------------------------------------------------------------------------------

    async def _send_all_home(self, event_id: int) -> None:
        with Session(self._engine) as session:
            row = service.get(session=session, event_id=event_id)
            vehicles = list(row.assigned)
            event_flights = {
                f.vehicle_id
                for f in session.exec(
                    select(Flight).where(
                        col(Flight.state).in_(["pending", "active"]),
                        col(Flight.purpose) == FlightPurpose.EVENT.value,
                    )
                )
            }
        for vid in vehicles:
            snap = self._fleet.latest(vid)
            if vid not in event_flights and (snap is None or not snap.in_air):
                continue
            if vid not in event_flights and self._executor.supervisor_of(vid) is not None:
                continue  # flying something else now (an incident, a pilot)
            try:
                await self._executor.send_home(vid, asker=SERVICE, reason=f"event {event_id} stand-down")
            except SkywardenError as err:
                log.warning("event %s: vehicle %s could not be sent home: %s", event_id, vid, err)

    async def _finish_stand_down(self, event_id: int, *, actor: str) -> None:
        """Wait until the event's drones are home (or the wait is over), then expire the exemptions."""
        with Session(self._engine) as session:
            vehicles = list(service.get(session=session, event_id=event_id).assigned)
        deadline = time.monotonic() + self.config.standdown_wait_s
        while time.monotonic() < deadline:
            flying = []
            for vid in vehicles:
                snap = self._fleet.latest(vid)
                # An event drone still flying an event flight or its way home (from the database: with
                # several instances the owner of the vehicle flies it, maybe not this one).
                if snap is not None and snap.in_air and self._open_purpose(vid) in _EVENT_OR_HOME:
                    flying.append(vid)
            if not flying:
                break
            await asyncio.sleep(self.config.tick_s)
        with session_scope(self._engine) as session:
            row = service.get(session=session, event_id=event_id)
            n = service.expire_all(session=session, event_id=event_id, actor=actor)
            row.state, row.ended_at = "ended", utcnow()
            session.add(row)
        run = self._runs.get(event_id)
        if run is not None:
            run.state = "ended"
            run.measures.note("ended", exemptions_expired=n)
            self._publish(run)

    # -- measures -------------------------------------------------------------------------------------------

    def _measure(self, run: EventRun) -> None:
        m = run.measures
        now = self._now_s()
        previous = m.last_pos
        positions: dict[int, tuple[float, float]] = {}
        for vid in self._all_vehicles():
            snap = self._fleet.latest(vid)
            if snap is None or not snap.link_up or snap.lat is None or snap.lon is None or not snap.in_air:
                continue
            positions[vid] = m.frame.point_to_local(snap.lat, snap.lon)
            if run.zone is not None and run.state != "ended":
                self._watch_incursion(run, vid, snap.lat, snap.lon)
        sweeping = [
            s.vehicle_id
            for s in run.slots
            if s.kind == "sweep" and s.vehicle_id is not None and run.state == "sweep"
        ]
        for vid in sweeping:
            if vid in positions and len(m.sweep_grid):
                b = np.array(positions[vid])
                a = np.array(previous.get(vid, positions[vid]))
                m.sweep_hit |= _segment_distance(m.sweep_grid, a, b) <= m.swath_m / 2
        for ring, last in m.ring_last.items():
            if not positions:
                continue
            cps = m.ring_points[ring]
            # Visited: within reach of the track flown since the last pass (not only of where it is now).
            seen = np.zeros(len(cps), dtype=bool)
            for vid, here in positions.items():
                a, b = np.array(previous.get(vid, here)), np.array(here)
                seen |= _segment_distance(cps, a, b) <= self.config.visit_within_m
            if seen.any():
                gaps = now - last[seen]
                m.ring_gap_max[ring] = max(m.ring_gap_max.get(ring, 0.0), float(np.max(gaps)))
                last[seen] = now
        m.last_pos = positions
        posts = [s for s in run.slots if s.kind == "post"]
        dt = 0.0 if m.last_measured_s is None else now - m.last_measured_s
        m.last_measured_s = now
        if posts and (m.post_total_s > 0 or any(s.stage == "at_station" for s in posts)):
            for s in posts:
                m.post_total_s += dt
                p = m.frame.point_to_local(*s.waypoints[0])
                near = self.config.visit_within_m
                if any(math.hypot(x - p[0], y - p[1]) <= near for x, y in positions.values()):
                    m.post_manned_s += dt

    def _all_vehicles(self) -> list[int]:
        return [p.id for p in self._fleet.profiles()]

    def _watch_incursion(self, run: EventRun, vid: int, lat: float, lon: float) -> None:
        assert run.zone is not None
        inside = run.zone.contains(Point(lon, lat))
        if not inside:
            run.measures.inside.discard(vid)
            return
        if vid in run.measures.inside:
            return
        with Session(self._engine) as session:
            exempt = any(
                e.zone_id is not None
                for e in exemptions.active_exemptions(session=session, at=utcnow(), vehicle_id=vid)
            )
        if not exempt:
            run.measures.inside.add(vid)
            run.measures.incursions += 1
            run.measures.note("incursion", vehicle_id=vid)

    def _coverage(self, run: EventRun) -> float:
        m = run.measures
        return float(m.sweep_hit.mean()) if len(m.sweep_hit) else 0.0

    def _figures(self, run: EventRun) -> dict[str, Any]:
        m = run.measures
        gaps = m.ring_gaps(self._now_s())
        return {
            "event_id": run.event_id,
            "running": True,
            "name": run.name,
            "state": run.state,
            "sweep_coverage_flown": round(self._coverage(run), 4),
            "sweep_done_before_doors": m.sweep_done_before_doors,
            "ring_gaps_s": {str(k): round(v, 1) for k, v in gaps.items()},
            "ring_gap_s_max": round(max(gaps.values(), default=0.0), 1),
            "ring_target_s": m.ring_target_s,
            "posts_manned_share": round(m.post_manned_s / m.post_total_s, 4) if m.post_total_s else None,
            "reliefs": m.reliefs,
            "holes_filled": m.fills,
            "incursions": m.incursions,
            "slots": [
                {"slot": s.key, "vehicle_id": s.vehicle_id, "stage": s.stage, "relief": s.relief_vehicle}
                for s in run.slots
            ],
            "assigned": run.assigned,
            "timeline": m.timeline[-50:],
        }

    def _publish(self, run: EventRun) -> None:
        self._hub.emit(Event(kind=f"security/{run.event_id}", data=self._figures(run)))
