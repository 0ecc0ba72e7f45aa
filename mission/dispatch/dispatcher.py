"""The Dispatcher: chooses, launches and flies a vehicle to each incident, relieves it, backfills patrols.

Each step commits its state before it commands a vehicle (no session is held across a vehicle await).
Flights are named tasks (``incident:{id}:vehicle:{vid}``) owned here and cancelled on shutdown. Times on
incidents are wall-clock; ``speed_factor`` converts them to simulated seconds when running on a fast sim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

from shapely.geometry import LineString, Point
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame, distance_m
from flightplans.items import Geofence
from mission.airspace.service import Restriction, restrictions_during
from mission.audit import service as audit
from mission.audit.clock import as_utc, utcnow
from mission.control import service as control
from mission.db import session_scope
from mission.dispatch.energy import CALM, Wind, cruise
from mission.dispatch.fleet_view import DockLedger, FleetReader, PerformanceDefaults, vehicle_states
from mission.dispatch.ranking import (
    Activity,
    CandidateEstimate,
    DispatchDecision,
    DispatchRequest,
    VehicleState,
    nearest_docked,
    rank,
)
from mission.dispatch.relief import plan_relief, time_until_leave_s
from mission.dispatch.routing import Airspace, NoFlyZone
from mission.errors import InvalidTransition, LinkError, SkywardenError, VehicleUnavailable
from mission.incidents import service as incidents
from mission.incidents.models import Incident, IncidentCreate, IncidentSource, IncidentState
from mission.link.types import TelemetrySnapshot, VehicleLink
from mission.missions import service as missions_service
from mission.missions.codec import geofence_from_json
from mission.missions.gate import nofly_from
from mission.missions.models import Mission, MissionCreate, PlanSpec
from mission.patrols.models import CoverageGap, PatrolRun, RunStatus
from mission.patrols.scheduler import finish_run
from mission.planning import build_geofence
from mission.telemetry.events import Event, EventSink
from mission.telemetry.intake import IncidentIn

log = logging.getLogger(__name__)

ACTOR = "system:dispatch"


class DispatchFleet(FleetReader, Protocol):
    """What the dispatcher needs of the fleet manager."""

    def link(self, vehicle_id: int) -> VehicleLink: ...


class MissionControl(Protocol):
    """What the dispatcher needs of the mission supervisor (preempting, backfilling, resuming patrols)."""

    def note_manual_command(self, *, vehicle_id: int, command: str, actor: str) -> None: ...
    def create(self, *, data: MissionCreate, actor: str) -> Any: ...
    def validate(self, *, mission_id: int, actor: str) -> Any: ...
    async def launch(self, *, mission_id: int, actor: str) -> Any: ...
    async def resume(self, *, mission_id: int, actor: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Tuning of dispatch. ``*_wall_s`` are wall seconds; the rest are simulated (= real on real drones)."""

    auto_launch: bool = True
    mqtt_auto_dispatch: bool = True  # incidents from other systems over MQTT are dispatched at once
    orbit_radius_m: float = 40.0
    orbit_speed_m_s: float = 4.0
    arrive_within_m: float = 20.0
    climb_fraction: float = 0.4  # head for the scene once this share of the orbit altitude is reached
    nofly_margin_m: float = 30.0
    fence_margin_m: float = 200.0  # the flight's inclusion fence around route, scene and home
    relief_margin_s: float = 90.0
    preempt_max_priority: int = 3  # incidents this urgent (1 = most) may pull a drone off its patrol
    min_overwatch_s: float = 300.0  # a vehicle that can stay this long may start a longer overwatch
    close_after_overhead: bool = True
    poll_wall_s: float = 0.05
    control_check_wall_s: float = 0.5
    leg_timeout_wall_s: float = 600.0
    overwatch_period_wall_s: float = 1.0
    speed_factor: float = 1.0  # simulated seconds per wall second
    max_attempts: int = 2
    # Restrictions starting up to this long after a flight's expected end count too (simulated seconds).
    airspace_margin_s: float = 600.0
    performance: PerformanceDefaults = field(default_factory=PerformanceDefaults)
    policy: str = "first_arrival"  # or "nearest_dock", the baseline the benchmark compares with


def decision_json(decision: DispatchDecision) -> dict[str, Any]:
    """The decision as stored on the incident and returned by the API (infinite ETAs as null)."""

    def cand(c: CandidateEstimate) -> dict[str, Any]:
        d = asdict(c)
        d["activity"] = c.activity.value
        d["route_latlon"] = [list(p) for p in c.route_latlon]
        d["required_wh"] = c.required_wh
        d["margin_wh"] = c.margin_wh
        for k, v in list(d.items()):
            if isinstance(v, float):
                d[k] = round(v, 2) if math.isfinite(v) else None
        return d

    return {
        "chosen_vehicle_id": decision.chosen.vehicle_id if decision.chosen else None,
        "explanation": decision.explanation,
        "candidates": [cand(c) for c in decision.candidates],
    }


class Dispatcher:
    """Incident dispatch for the runtime; also the IncidentSink of the MQTT intake."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: DispatchFleet,
        hub: EventSink,
        supervisor: MissionControl | None = None,
        config: DispatchConfig | None = None,
        wind: Wind = CALM,
    ) -> None:
        self._engine = engine
        self._fleet = fleet
        self._hub = hub
        self._supervisor = supervisor
        self.config = config or DispatchConfig()
        self.wind = wind
        self.ledger = DockLedger()
        self._flights: dict[int, asyncio.Task[None]] = {}  # vehicle id -> its flight task
        self._relief: dict[int, int] = {}  # incident id -> relief vehicle id in flight
        self._homing: dict[int, asyncio.Task[Any]] = {}  # vehicle id -> its flight home
        self._left: set[tuple[int, int]] = set()  # (incident, vehicle) sent home for its reserve
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.takeoff_ack_s: list[float] = []  # request -> take-off acknowledged, wall seconds

    async def __aenter__(self) -> Dispatcher:
        self._loop_task = asyncio.create_task(self._overwatch_loop(), name="dispatch:overwatch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [t for t in [self._loop_task, *self._flights.values(), *self._tasks] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flights.clear()
        self._tasks.clear()

    def _spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- what dispatch sees -------------------------------------------------------------------------------

    def restrictions(self, *, span_s: float = 0.0) -> list[Restriction]:
        """Zones active at any time of a ``span_s`` (simulated s) flight from now, plus the margin."""
        wall_s = (max(0.0, span_s) + self.config.airspace_margin_s) / max(self.config.speed_factor, 1e-9)
        now = utcnow()
        with Session(self._engine) as session:
            return restrictions_during(session=session, start=now, end=now + timedelta(seconds=wall_s))

    def airspace(self, *, around: tuple[float, float], span_s: float = 0.0) -> Airspace:
        """The zones active during a ``span_s`` flight from now, in a frame centred near ``around``."""
        restrictions = self.restrictions(span_s=span_s)
        zones = [NoFlyZone(r.name, r.geometry) for r in restrictions if r.geometry.geom_type == "Polygon"]
        return Airspace(LocalFrame(*around), zones, margin_m=self.config.nofly_margin_m)

    def decide(
        self, request: DispatchRequest, *, states: Sequence[VehicleState] | None = None
    ) -> DispatchDecision:
        """Rank ``states`` (default: the fleet) for ``request`` against the airspace of the whole flight.

        The flight's length is not known before ranking: rank over the overwatch time, then again over
        out + overwatch + back of the chosen vehicle until that span no longer grows.
        """
        pool = list(states) if states is not None else self.states()
        span_s = request.overhead_s
        decision = DispatchDecision(chosen=None, candidates=(), explanation="no ranking")
        for _ in range(3):
            space = self.airspace(around=(request.lat, request.lon), span_s=span_s)
            decision = self._rank(pool, request, space)
            if decision.chosen is None:
                return decision
            need_s = request.overhead_s + 2.0 * decision.chosen.eta_s
            if need_s <= span_s:
                return decision
            span_s = need_s
        return decision

    def _rank(
        self, states: list[VehicleState], request: DispatchRequest, space: Airspace
    ) -> DispatchDecision:
        if self.config.policy != "nearest_dock":
            return rank(states, request, airspace=space, wind=self.wind)
        base = nearest_docked(states, request, airspace=space, wind=self.wind)
        return DispatchDecision(
            chosen=base,
            candidates=(base,) if base else (),
            explanation=f"baseline policy: nearest docked vehicle {base.name}"
            if base
            else "baseline: none fit",
        )

    def states(self) -> list[VehicleState]:
        """Every vehicle as a candidate; vehicles this dispatcher is flying count as busy."""
        out = vehicle_states(
            engine=self._engine, fleet=self._fleet, defaults=self.config.performance, ledger=self.ledger
        )
        engaged = set(self._flights) | set(self._relief.values())
        return [_with_activity(s, Activity.INCIDENT) if s.vehicle_id in engaged else s for s in out]

    def _request(self, incident: Incident) -> DispatchRequest:
        return DispatchRequest(
            lat=incident.lat,
            lon=incident.lon,
            overhead_s=incident.overhead_s,
            alt_m=incident.alt_m,
            required_capabilities=frozenset(incident.required_capabilities),
            min_overhead_s=self.config.min_overwatch_s,
            allow_preempt=incident.priority <= self.config.preempt_max_priority,
        )

    def preview(self, incident_id: int) -> DispatchDecision:
        """The ranked candidates for an incident now, changing nothing."""
        with Session(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
        return self.decide(self._request(incident))

    # -- intake ---------------------------------------------------------------------------------------------

    async def submit(self, incident: IncidentIn) -> int:
        """IncidentSink: take an MQTT incident, store it and dispatch it."""
        data = IncidentCreate(
            lat=incident.location.lat,
            lon=incident.location.lon,
            priority=incident.priority,
            kind=incident.kind,
            notes=incident.notes,
            source=incident.source,
            ref=incident.ref,
            auto_dispatch=self.config.mqtt_auto_dispatch,
        )
        return await self.create(data=data, actor=f"mqtt:{incident.source}"[:64], channel=IncidentSource.MQTT)

    async def create(self, *, data: IncidentCreate, actor: str, channel: IncidentSource) -> int:
        """Store a new incident (audited, announced) and, when asked, dispatch it at once."""
        t0 = time.monotonic()
        with session_scope(self._engine) as session:
            row = incidents.create(session=session, data=data, actor=actor, channel=channel)
            assert row.id is not None
            incident_id = row.id
            audit.record(
                session=session,
                actor=actor,
                action="incident.create",
                target=f"incident:{incident_id}",
                details={
                    "kind": data.kind,
                    "priority": data.priority,
                    "lat": data.lat,
                    "lon": data.lon,
                    "channel": channel.value,
                },
            )
        self._hub.emit(
            Event(
                kind="incident.created",
                data={
                    "incident_id": incident_id,
                    "kind": data.kind,
                    "priority": data.priority,
                    "lat": data.lat,
                    "lon": data.lon,
                },
            )
        )
        if data.auto_dispatch:
            await self.dispatch(incident_id, actor=actor, requested_at=t0)
        return incident_id

    # -- dispatch -------------------------------------------------------------------------------------------

    async def dispatch(
        self,
        incident_id: int,
        *,
        actor: str,
        launch: bool | None = None,
        requested_at: float | None = None,
        exclude: frozenset[int] = frozenset(),
    ) -> DispatchDecision:
        """Choose the first-arriving fit vehicle, assign it (committed), and launch it unless told not to."""
        t0 = requested_at if requested_at is not None else time.monotonic()
        with Session(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if IncidentState(incident.state) is not IncidentState.NEW:
                raise InvalidTransition(
                    f"incident {incident_id} is {incident.state}; only a new incident can be dispatched"
                )
            request = self._request(incident)
        states = [s for s in self.states() if s.vehicle_id not in exclude]
        decision = self.decide(request, states=states)
        stored = decision_json(decision)
        chosen = decision.chosen
        if chosen is None:
            with session_scope(self._engine) as session:
                incidents.record_decision(
                    session=session, incident_id=incident_id, decision=stored, actor=actor
                )
            self._hub.emit(
                Event(
                    kind="incident.unserved",
                    data={"incident_id": incident_id, "explanation": decision.explanation},
                )
            )
            return decision
        with session_scope(self._engine) as session:
            incidents.assign(
                session=session,
                incident_id=incident_id,
                vehicle_id=chosen.vehicle_id,
                decision=stored,
                actor=actor,
            )
            audit.record(
                session=session,
                actor=actor,
                action="incident.assign",
                target=f"incident:{incident_id}",
                details={
                    "vehicle_id": chosen.vehicle_id,
                    "eta_s": round(chosen.eta_s, 1),
                    "explanation": decision.explanation,
                },
            )
        self._hub.emit(
            Event(
                kind="incident.assigned",
                vehicle_id=chosen.vehicle_id,
                data={
                    "incident_id": incident_id,
                    "eta_s": round(chosen.eta_s, 1),
                    "explanation": decision.explanation,
                },
            )
        )
        if launch if launch is not None else self.config.auto_launch:
            self._start_flight(incident_id, chosen, request, t0=t0, attempt=len(exclude) + 1, exclude=exclude)
        return decision

    async def launch(self, incident_id: int, *, actor: str) -> None:
        """Fly an assigned (not yet launched) incident's vehicle now: the operator's launch click."""
        with Session(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if IncidentState(incident.state) is not IncidentState.ASSIGNED or incident.vehicle_id is None:
                raise InvalidTransition(f"incident {incident_id} is {incident.state}; launch needs assigned")
            request = self._request(incident)
            vehicle_id = incident.vehicle_id
        if vehicle_id in self._flights:
            return
        state = next((s for s in self.states() if s.vehicle_id == vehicle_id), None)
        if state is None:
            raise VehicleUnavailable(f"vehicle {vehicle_id} is no longer registered")
        est = self.decide(request, states=[state])
        if est.chosen is None:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} cannot serve incident {incident_id}: {est.explanation}"
            )
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=actor,
                action="incident.launch",
                target=f"incident:{incident_id}",
                details={"vehicle_id": vehicle_id},
            )
        self._start_flight(
            incident_id, est.chosen, request, t0=time.monotonic(), attempt=1, exclude=frozenset()
        )

    def _start_flight(
        self,
        incident_id: int,
        chosen: CandidateEstimate,
        request: DispatchRequest,
        *,
        t0: float,
        attempt: int,
        exclude: frozenset[int],
        relief_for: int | None = None,
    ) -> None:
        vid = chosen.vehicle_id
        task = asyncio.create_task(
            self._fly(
                incident_id, chosen, request, t0=t0, attempt=attempt, exclude=exclude, relief_for=relief_for
            ),
            name=f"incident:{incident_id}:vehicle:{vid}",
        )
        self._flights[vid] = task

        def _done(t: asyncio.Task[None], vid: int = vid) -> None:
            if self._flights.get(vid) is t:
                del self._flights[vid]

        task.add_done_callback(_done)

    async def _fly(
        self,
        incident_id: int,
        chosen: CandidateEstimate,
        request: DispatchRequest,
        *,
        t0: float,
        attempt: int,
        exclude: frozenset[int],
        relief_for: int | None,
    ) -> None:
        """One flight to a scene. On every failing exit an airborne, unheld vehicle is sent home."""
        vid = chosen.vehicle_id
        relief = relief_for is not None
        try:
            await self._fly_to_scene(incident_id, chosen, request, t0=t0, relief=relief)
            if relief:
                await self._relieved(incident_id, old_vehicle=relief_for, new_vehicle=vid)
                return
            with session_scope(self._engine) as session:
                incidents.transition(
                    session=session,
                    incident_id=incident_id,
                    to=IncidentState.ON_SCENE,
                    actor=ACTOR,
                    details={"vehicle_id": vid},
                )
            self._hub.emit(Event(kind="incident.on_scene", vehicle_id=vid, data={"incident_id": incident_id}))
        except _PilotTookOver as took:
            with session_scope(self._engine) as session:
                incidents.note(
                    session=session,
                    incident_id=incident_id,
                    kind="pilot_takeover",
                    actor=took.holder,
                    details={"vehicle_id": vid},
                )
        except Exception as err:  # anything at all: the vehicle must not be left flying unsupervised
            if isinstance(err, SkywardenError | PlanningError):
                log.warning("incident %s: vehicle %s failed: %s", incident_id, vid, err)
            else:
                log.exception("incident %s: flight of vehicle %s failed unexpectedly", incident_id, vid)
            try:
                self._home_if_airborne(vid, incident_id=incident_id, reason=f"flight failed: {err}")
                await self._flight_failed(
                    incident_id, vid, err, attempt=attempt, exclude=exclude, relief=relief
                )
            except Exception:
                log.exception(
                    "incident %s: recovering from the failed flight of vehicle %s", incident_id, vid
                )

    async def _fly_to_scene(
        self,
        incident_id: int,
        chosen: CandidateEstimate,
        request: DispatchRequest,
        *,
        t0: float,
        relief: bool,
    ) -> None:
        vid = chosen.vehicle_id
        link = self._fleet.link(vid)
        if chosen.preempts_patrol_run is not None or chosen.activity is Activity.PATROL:
            await self._preempt(vid, incident_id)
        span_s = request.overhead_s + 2.0 * chosen.eta_s
        fence = self._fence(vid, chosen, request, span_s=span_s)
        # The fence of its last mission would stop it short: replace it, and before arming, so that a
        # fence the vehicle refuses keeps it on the ground.
        self._audit("geofence", vid, incident_id=incident_id, shapes=len(fence.shapes))
        await link.upload_geofence(fence)
        if chosen.activity is Activity.DOCKED:
            self._check_control(vid)
            self._audit("arm", vid, incident_id=incident_id)
            await link.arm()
            self._audit("takeoff", vid, incident_id=incident_id, alt_m=request.alt_m)
            await link.takeoff(request.alt_m)
            self.takeoff_ack_s.append(time.monotonic() - t0)
        if not relief:
            with session_scope(self._engine) as session:
                incidents.mark_airborne(session=session, incident_id=incident_id, actor=ACTOR)
                incidents.transition(
                    session=session,
                    incident_id=incident_id,
                    to=IncidentState.EN_ROUTE,
                    actor=ACTOR,
                    details={"vehicle_id": vid},
                )
            self._hub.emit(Event(kind="incident.en_route", vehicle_id=vid, data={"incident_id": incident_id}))
        if chosen.activity is Activity.DOCKED:
            await self._wait(
                vid,
                lambda s: (s.alt_rel_m or 0.0) >= request.alt_m * self.config.climb_fraction,
                what="climb",
            )
        for lat, lon in chosen.route_latlon[1:]:
            self._check_control(vid)
            self._audit("goto", vid, incident_id=incident_id, lat=lat, lon=lon, alt_m=request.alt_m)
            await link.goto(lat, lon, request.alt_m)
            await self._wait(vid, _near(lat, lon, self.config.arrive_within_m), what="transit")
        self._check_control(vid)
        await self._overwatch(link, request, vid=vid, incident_id=incident_id)

    def _audit(self, action: str, vid: int, **details: Any) -> None:
        """Write a vehicle action to the hash-chained audit log (before it is sent)."""
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=ACTOR,
                action=f"dispatch.{action}",
                target=f"vehicle:{vid}",
                details=details,
            )

    def _holder(self, vid: int) -> str | None:
        with Session(self._engine) as session:
            return control.holder_of(session=session, vehicle_id=vid)

    def _home_if_airborne(self, vid: int, *, incident_id: int | None, reason: str) -> None:
        """Send the vehicle home (routed) when it is in the air; _send_home leaves a pilot's vehicle alone."""
        if _maybe_airborne(self._fleet.latest(vid)):
            self._spawn_home(vid, incident_id=incident_id, reason=reason)

    def _spawn_home(self, vid: int, *, incident_id: int | None, reason: str) -> None:
        running = self._homing.get(vid)
        if running is not None and not running.done():
            return
        task = self._spawn(
            self._send_home(vid, incident_id=incident_id, reason=reason), name=f"vehicle:{vid}:home"
        )
        self._homing[vid] = task

    def _fence(
        self, vid: int, chosen: CandidateEstimate, request: DispatchRequest, *, span_s: float
    ) -> Geofence:
        """The operating area of this flight (route, scene and home, grown) with the no-fly zones in it."""
        profile = next((p for p in self._fleet.profiles() if p.id == vid), None)
        home = (profile.home_lat, profile.home_lon) if profile is not None else None
        points = [(lon, lat) for lat, lon in chosen.route_latlon] or [(request.lon, request.lat)]
        path = LineString(points) if len(points) > 1 else Point(points[0])
        zones = nofly_from(self.restrictions(span_s=span_s))
        return build_geofence(
            path_wgs=path,
            home=home,
            frame=LocalFrame(request.lat, request.lon),
            zones=zones,
            margin_m=self.config.fence_margin_m,
        )

    async def _overwatch(
        self, link: VehicleLink, request: DispatchRequest, *, vid: int, incident_id: int
    ) -> None:
        """Orbit the scene at a safe altitude, or hover over it where an orbit would touch a no-fly zone."""
        space = self.airspace(around=(request.lat, request.lon), span_s=request.overhead_s)
        ring = Point(0.0, 0.0).buffer(self.config.orbit_radius_m + space.margin_m)
        clear = not any(ring.intersects(z) for _, z in space.zones_xy)
        if clear:
            self._audit(
                "orbit",
                vid,
                incident_id=incident_id,
                lat=request.lat,
                lon=request.lon,
                alt_m=request.alt_m,
                radius_m=self.config.orbit_radius_m,
            )
            await link.orbit(
                request.lat,
                request.lon,
                request.alt_m,
                radius_m=self.config.orbit_radius_m,
                speed_m_s=self.config.orbit_speed_m_s,
            )
        else:
            self._audit("hold", vid, incident_id=incident_id, reason="an orbit would touch a no-fly zone")
            await link.hold()

    async def _flight_failed(
        self,
        incident_id: int,
        vid: int,
        err: Exception,
        *,
        attempt: int,
        exclude: frozenset[int],
        relief: bool,
    ) -> None:
        if relief:
            self._relief.pop(incident_id, None)
            with session_scope(self._engine) as session:
                incidents.note(
                    session=session,
                    incident_id=incident_id,
                    kind="relief_failed",
                    actor=ACTOR,
                    details={"vehicle_id": vid, "error": str(err)},
                )
            return
        with session_scope(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if IncidentState(incident.state) in (IncidentState.ASSIGNED, IncidentState.EN_ROUTE):
                incidents.transition(
                    session=session,
                    incident_id=incident_id,
                    to=IncidentState.NEW,
                    actor=ACTOR,
                    details={"vehicle_id": vid, "error": str(err)},
                )
            else:
                return
        self._hub.emit(
            Event(
                kind="incident.unassigned",
                vehicle_id=vid,
                data={"incident_id": incident_id, "error": str(err)},
            )
        )
        if attempt < self.config.max_attempts:
            with contextlib.suppress(SkywardenError):
                await self.dispatch(incident_id, actor=ACTOR, exclude=exclude | {vid})

    async def _wait(
        self, vid: int, ok: Callable[[TelemetrySnapshot], bool], *, what: str
    ) -> TelemetrySnapshot:
        deadline = time.monotonic() + self.config.leg_timeout_wall_s
        next_control_check = time.monotonic() + self.config.control_check_wall_s
        while True:
            snap = self._fleet.latest(vid)
            if snap is not None and snap.link_up and ok(snap):
                return snap
            now = time.monotonic()
            if now > deadline:
                raise LinkError(f"vehicle {vid}: {what} did not finish in time", vehicle_id=vid, action=what)
            if now >= next_control_check:
                self._check_control(vid)  # a pilot may take over mid-leg
                next_control_check = now + self.config.control_check_wall_s
            await asyncio.sleep(self.config.poll_wall_s)

    def _check_control(self, vid: int) -> None:
        with Session(self._engine) as session:
            holder = control.holder_of(session=session, vehicle_id=vid)
        if holder is not None:
            raise _PilotTookOver(holder)

    # -- preempt and backfill ------------------------------------------------------------------------------

    async def _preempt(self, vid: int, incident_id: int) -> None:
        """Pull a vehicle off its patrol: pause the mission, log the gap, backfill it or resume later."""
        with session_scope(self._engine) as session:
            mission = missions_service.current_for_vehicle(session=session, vehicle_id=vid)
            if mission is None or mission.id is None:
                return
            run = session.exec(select(PatrolRun).where(col(PatrolRun.mission_id) == mission.id)).first()
            remaining = _remaining_waypoints(mission.items or [], mission.progress_current)
            gap = CoverageGap(
                patrol_run_id=run.id if run else None,
                incident_id=incident_id,
                vehicle_id=vid,
                remaining={
                    "mission_id": mission.id,
                    "from_item": mission.progress_current,
                    "waypoints": remaining,
                },
                resolution="resume later",
            )
            session.add(gap)
            session.flush()
            run_id = run.id if run else None
            mission_id = mission.id
            gap_id = gap.id
            alt_m = float(mission.plan.get("params", {}).get("alt_m", 60.0)) if mission.plan else 60.0
        self._audit(
            "preempt", vid, incident_id=incident_id, mission_id=mission_id, waypoints_left=len(remaining)
        )
        if self._supervisor is not None:
            self._supervisor.note_manual_command(vehicle_id=vid, command="goto", actor=ACTOR)
        if run_id is not None:
            finish_run(
                engine=self._engine,
                run_id=run_id,
                status=RunStatus.PREEMPTED,
                reason=f"vehicle pulled to incident {incident_id}; {len(remaining)} waypoints left",
                at=utcnow(),
            )
        self._hub.emit(
            Event(
                kind="patrol.preempted",
                vehicle_id=vid,
                mission_id=mission_id,
                data={"incident_id": incident_id, "waypoints_left": len(remaining)},
            )
        )
        log.info("vehicle %s pulled off mission %s for incident %s", vid, mission_id, incident_id)
        assert gap_id is not None
        self._spawn(
            self._backfill(gap_id, remaining, alt_m=alt_m, exclude=vid), name=f"coverage_gap:{gap_id}"
        )

    async def _backfill(
        self, gap_id: int, remaining: list[list[float]], *, alt_m: float, exclude: int
    ) -> None:
        """Fly the rest of a preempted patrol on a free docked vehicle; else it resumes later."""
        geometry = remaining_route_geojson(remaining)
        if geometry is None or self._supervisor is None:
            return
        candidates = [
            s
            for s in self.states()
            if s.vehicle_id != exclude and s.activity is Activity.DOCKED and s.link_up
        ]
        if not candidates:
            return
        first = remaining[0]
        space = self.airspace(around=(first[0], first[1]))
        request = DispatchRequest(first[0], first[1], overhead_s=0.0, alt_m=max(10.0, min(120.0, alt_m)))
        decision = rank(candidates, request, airspace=space, wind=self.wind)
        if decision.chosen is None:
            return
        vid = decision.chosen.vehicle_id
        data = MissionCreate(
            name=f"backfill of coverage gap {gap_id}",
            vehicle_id=vid,
            plan=PlanSpec(kind="route", geometry=geometry, params={"alt_m": alt_m}),
        )
        try:
            mission = self._supervisor.create(data=data, actor=ACTOR)
            self._supervisor.validate(mission_id=mission.id, actor=ACTOR)
            await self._supervisor.launch(mission_id=mission.id, actor=ACTOR)
        except SkywardenError as err:
            log.info("coverage gap %s: backfill on vehicle %s failed: %s", gap_id, vid, err)
            return
        with session_scope(self._engine) as session:
            row = session.get(CoverageGap, gap_id)
            if row is not None:
                row.resolution = f"backfilled by vehicle {vid} (mission {mission.id})"
                row.ended_at = utcnow()
                session.add(row)
        self._hub.emit(
            Event(
                kind="patrol.backfilled",
                vehicle_id=vid,
                mission_id=mission.id,
                data={"coverage_gap_id": gap_id},
            )
        )

    async def resume_preempted(self, vid: int, *, actor: str = ACTOR) -> bool:
        """When a preempted vehicle is free again, resume its paused patrol and close the coverage gap."""
        with session_scope(self._engine) as session:
            gap = session.exec(
                select(CoverageGap)
                .where(col(CoverageGap.vehicle_id) == vid)
                .where(col(CoverageGap.ended_at).is_(None))
                .order_by(col(CoverageGap.id).desc())
            ).first()
            if gap is None:
                return False
            mission_id = int(gap.remaining.get("mission_id", 0))
            waypoints = list(gap.remaining.get("waypoints", []))
        if self._supervisor is None or not mission_id:
            return False
        with Session(self._engine) as session:
            mission = session.get(Mission, mission_id)
            fence_json = mission.geofence if mission is not None else None
        holder = self._holder(vid)
        shortfall = (
            f"pilot {holder} holds the vehicle"
            if holder is not None
            else self._resume_shortfall(vid, waypoints)
        )
        if shortfall:
            resolution = f"not resumed: {shortfall}"
        else:
            try:
                if fence_json:
                    # Dispatch replaced the patrol's fence with the incident's: put the patrol's back first.
                    self._audit("geofence", vid, mission_id=mission_id, purpose="resume patrol")
                    await self._fleet.link(vid).upload_geofence(geofence_from_json(fence_json))
                await self._supervisor.resume(mission_id=mission_id, actor=actor)
            except SkywardenError as err:
                resolution = f"not resumed: {err}"
            else:
                resolution = f"resumed by vehicle {vid}"
        with session_scope(self._engine) as session:
            row = session.get(CoverageGap, gap.id)
            if row is not None:
                row.ended_at = utcnow()
                row.resolution = resolution[:200]
                session.add(row)
        return resolution.startswith("resumed")

    def _resume_shortfall(self, vid: int, waypoints: list[list[float]]) -> str:
        """Why the vehicle cannot fly the rest of its patrol and home with its reserve; "" when it can."""
        state = next((s for s in self.states() if s.vehicle_id == vid), None)
        if state is None or not state.link_up:
            return "vehicle not connected"
        points = [
            (state.lat, state.lon),
            *[(w[0], w[1]) for w in waypoints],
            (state.home_lat, state.home_lon),
        ]
        space = self.airspace(
            around=(state.lat, state.lon),
            span_s=state.perf.battery_wh * 3600.0 / max(state.perf.cruise_power_w, 1.0),
        )
        xy = [space.frame.point_to_local(lat, lon) for lat, lon in points]
        need_wh = cruise(tuple(xy), state.perf, wind=self.wind).energy_wh + state.perf.reserve_wh
        have_wh = state.battery_pct / 100.0 * state.perf.battery_wh
        if have_wh < need_wh:
            return f"battery {have_wh:.0f} Wh < {need_wh:.0f} Wh to finish the patrol and return"
        return ""

    # -- closing, relief ------------------------------------------------------------------------------------

    async def close(self, incident_id: int, *, actor: str, reason: str = "resolved") -> Incident:
        """Close an incident; its vehicle (and any relief) flies home."""
        with session_scope(self._engine) as session:
            incident = incidents.transition(
                session=session,
                incident_id=incident_id,
                to=IncidentState.CLOSED,
                actor=actor,
                details={"reason": reason},
            )
            incident.close_reason = reason[:500]
            session.add(incident)
            audit.record(
                session=session,
                actor=actor,
                action="incident.close",
                target=f"incident:{incident_id}",
                details={"reason": reason},
            )
            vid = incident.vehicle_id
        for v in [vid, self._relief.pop(incident_id, None)]:
            if v is None:
                continue
            task = self._flights.pop(v, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            self._spawn_home(v, incident_id=incident_id, reason=f"incident closed: {reason}")
        self._hub.emit(
            Event(kind="incident.closed", vehicle_id=vid, data={"incident_id": incident_id, "reason": reason})
        )
        return incident

    async def _send_home(self, vid: int, *, incident_id: int | None = None, reason: str = "") -> None:
        """Bring an airborne vehicle home (resuming its patrol if it was pulled off one); never a pilot's."""
        try:
            if not _maybe_airborne(self._fleet.latest(vid)):
                return
            holder = self._holder(vid)
            if holder is not None:
                self._note_skip(vid, incident_id=incident_id, holder=holder, what=f"return home ({reason})")
                return
            if await self.resume_preempted(vid):
                return
            await self._fly_home(vid, incident_id=incident_id, reason=reason)
        except _PilotTookOver as took:
            self._note_skip(vid, incident_id=incident_id, holder=took.holder, what="the rest of the way home")
        except Exception:
            log.exception("vehicle %s: the flight home failed; plain RTL as the last resort", vid)
            if self._holder(vid) is None:
                self._audit(
                    "return", vid, incident_id=incident_id, reason="last resort after a failed detour"
                )
                with contextlib.suppress(SkywardenError):
                    await self._fleet.link(vid).return_to_launch()

    def _note_skip(self, vid: int, *, incident_id: int | None, holder: str, what: str) -> None:
        log.info("vehicle %s is held by %s: dispatch skips %s", vid, holder, what)
        if incident_id is None:
            return
        with session_scope(self._engine) as session:
            incidents.note(
                session=session,
                incident_id=incident_id,
                kind="pilot_holds",
                actor=ACTOR,
                details={"vehicle_id": vid, "holder": holder, "skipped": what},
            )

    async def _fly_home(self, vid: int, *, incident_id: int | None, reason: str) -> None:
        """RTL; first along the routed detour when the straight way home crosses a zone (PX4 RTL does not)."""
        link = self._fleet.link(vid)
        snap = self._fleet.latest(vid)
        profile = next((p for p in self._fleet.profiles() if p.id == vid), None)
        via: list[tuple[float, float]] = []
        alt_m = 60.0
        if snap is not None and snap.lat is not None and snap.lon is not None and profile is not None:
            home = (profile.home_lat, profile.home_lon)
            if snap.home_ok and snap.home_lat is not None and snap.home_lon is not None:
                home = (snap.home_lat, snap.home_lon)
            alt_m = min(120.0, max(10.0, snap.alt_rel_m or 0.0))
            transit_s = distance_m(snap.lat, snap.lon, *home) / max(profile.cruise_speed_m_s, 1.0)
            space = self.airspace(around=home, span_s=3.0 * transit_s)
            try:
                route = space.route((snap.lat, snap.lon), home)
            except PlanningError as err:
                log.warning("vehicle %s: no routed way home (%s); straight RTL", vid, err)
            else:
                via = space.to_latlon(route)[1:-1]
        for lat, lon in via:
            self._check_control(vid)
            self._audit("goto", vid, incident_id=incident_id, lat=lat, lon=lon, alt_m=alt_m, purpose="home")
            await link.goto(lat, lon, alt_m)
            await self._wait(vid, _near(lat, lon, self.config.arrive_within_m), what="the way home")
        self._check_control(vid)
        self._audit("return", vid, incident_id=incident_id, reason=reason[:200], detour_points=len(via))
        await link.return_to_launch()

    async def _relieved(self, incident_id: int, *, old_vehicle: int | None, new_vehicle: int) -> None:
        self._relief.pop(incident_id, None)
        with session_scope(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if IncidentState(incident.state) is IncidentState.CLOSED:
                return
            incident.vehicle_id = new_vehicle
            session.add(incident)
            incidents.note(
                session=session,
                incident_id=incident_id,
                kind="relieved",
                actor=ACTOR,
                details={"from_vehicle_id": old_vehicle, "to_vehicle_id": new_vehicle},
            )
        self._hub.emit(
            Event(
                kind="incident.relieved",
                vehicle_id=new_vehicle,
                data={"incident_id": incident_id, "from_vehicle_id": old_vehicle},
            )
        )
        if old_vehicle is not None:
            self._spawn_home(old_vehicle, incident_id=incident_id, reason="relieved")

    def _on_scene(self) -> list[Incident]:
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Incident).where(col(Incident.state) == IncidentState.ON_SCENE.value)
                ).all()
            )

    async def overwatch_tick(self) -> None:
        """Close overwatches whose time is up; launch reliefs so no scene is left uncovered.

        A vehicle whose leave time has come goes home even when no relief can take over (the incident is
        then unassigned again, with a note). Incidents whose vehicle a pilot holds are left to the pilot.
        """
        now = utcnow()
        states = None
        tick_s = self.config.overwatch_period_wall_s * self.config.speed_factor
        for incident in self._on_scene():
            assert incident.id is not None
            if incident.vehicle_id is not None and self._holder(incident.vehicle_id) is not None:
                continue
            on_scene_at = as_utc(incident.on_scene_at) if incident.on_scene_at else now
            elapsed_s = (now - on_scene_at).total_seconds() * self.config.speed_factor
            remaining_s = incident.overhead_s - elapsed_s
            if remaining_s <= 0:
                if self.config.close_after_overhead:
                    with contextlib.suppress(InvalidTransition):
                        await self.close(incident.id, actor=ACTOR, reason="overwatch time complete")
                continue
            if incident.vehicle_id is None:
                continue
            states = states if states is not None else self.states()
            current = next((s for s in states if s.vehicle_id == incident.vehicle_id), None)
            if current is None or not current.link_up:
                continue
            space = self.airspace(around=(incident.lat, incident.lon), span_s=remaining_s)
            try:
                if incident.id in self._relief:
                    # A relief is on its way; the vehicle on scene still leaves when its reserve demands it.
                    leave_in_s = time_until_leave_s(
                        current,
                        scene_lat=incident.lat,
                        scene_lon=incident.lon,
                        airspace=space,
                        wind=self.wind,
                    )
                    if leave_in_s <= 0:
                        self._leave_for_reserve(
                            incident, leave_in_s, "relief not on scene yet", unassign=False
                        )
                    continue
                plan = plan_relief(
                    current,
                    states,
                    scene_lat=incident.lat,
                    scene_lon=incident.lon,
                    remaining_overhead_s=remaining_s,
                    alt_m=incident.alt_m,
                    airspace=space,
                    wind=self.wind,
                    margin_s=self.config.relief_margin_s,
                )
            except PlanningError as err:
                log.warning("incident %s: relief planning failed: %s", incident.id, err)
                continue
            request = DispatchRequest(
                incident.lat, incident.lon, overhead_s=remaining_s, alt_m=incident.alt_m
            )
            if plan.needs_relief and plan.relief is None and plan.leave_in_s <= tick_s:
                self._leave_for_reserve(incident, plan.leave_in_s, plan.explanation, unassign=True)
                states = None
                await self._redispatch(incident.id, exclude=frozenset({current.vehicle_id}))
                continue
            horizon_s = tick_s * 2
            if not plan.needs_relief or plan.relief is None or (plan.launch_in_s or 0.0) > horizon_s:
                continue
            self._relief[incident.id] = plan.relief.vehicle_id
            with session_scope(self._engine) as session:
                incidents.note(
                    session=session,
                    incident_id=incident.id,
                    kind="relief_dispatched",
                    actor=ACTOR,
                    details={
                        "vehicle_id": plan.relief.vehicle_id,
                        "explanation": plan.explanation,
                        "leave_in_s": round(plan.leave_in_s, 1),
                    },
                )
                audit.record(
                    session=session,
                    actor=ACTOR,
                    action="dispatch.relief_launch",
                    target=f"vehicle:{plan.relief.vehicle_id}",
                    details={
                        "incident_id": incident.id,
                        "relieves_vehicle_id": current.vehicle_id,
                        "explanation": plan.explanation,
                    },
                )
            self._hub.emit(
                Event(
                    kind="incident.relief",
                    vehicle_id=plan.relief.vehicle_id,
                    data={"incident_id": incident.id, "explanation": plan.explanation},
                )
            )
            states = None
            self._start_flight(
                incident.id,
                plan.relief,
                request,
                t0=time.monotonic(),
                attempt=1,
                exclude=frozenset(),
                relief_for=incident.vehicle_id,
            )

    def _leave_for_reserve(self, incident: Incident, leave_in_s: float, why: str, *, unassign: bool) -> None:
        """The vehicle on scene must go home now to land with its reserve: note it, announce it, send it."""
        assert incident.id is not None and incident.vehicle_id is not None
        vid = incident.vehicle_id
        if (incident.id, vid) in self._left:
            return
        self._left.add((incident.id, vid))
        details = {"vehicle_id": vid, "leave_in_s": round(leave_in_s, 1), "explanation": why[:300]}
        with session_scope(self._engine) as session:
            incidents.note(
                session=session,
                incident_id=incident.id,
                kind="left_for_reserve",
                actor=ACTOR,
                details=details,
            )
            if unassign:
                incidents.transition(
                    session=session,
                    incident_id=incident.id,
                    to=IncidentState.NEW,
                    actor=ACTOR,
                    details={**details, "error": "vehicle left for its battery reserve; no relief"},
                )
        self._hub.emit(
            Event(kind="incident.uncovered", vehicle_id=vid, data={"incident_id": incident.id, **details})
        )
        log.warning("incident %s: vehicle %s leaves for its reserve: %s", incident.id, vid, why)
        self._spawn_home(vid, incident_id=incident.id, reason="battery reserve")

    async def _redispatch(self, incident_id: int, *, exclude: frozenset[int]) -> None:
        with contextlib.suppress(SkywardenError, PlanningError):
            await self.dispatch(incident_id, actor=ACTOR, exclude=exclude)

    async def _overwatch_loop(self) -> None:
        while True:
            try:
                await self.overwatch_tick()
            except (SkywardenError, PlanningError) as err:
                log.warning("overwatch tick failed: %s", err)
            except Exception:
                log.exception("overwatch tick failed unexpectedly")
            await asyncio.sleep(self.config.overwatch_period_wall_s)


class _PilotTookOver(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _maybe_airborne(snap: TelemetrySnapshot | None) -> bool:
    """In the air, or possibly: in_air/armed lag a take-off by a few hundred ms, altitude does not."""
    if snap is None:
        return False
    return snap.in_air or snap.armed or (snap.alt_rel_m or 0.0) > 1.0


def _with_activity(s: VehicleState, activity: Activity) -> VehicleState:
    return replace(s, activity=activity)


def _near(lat: float, lon: float, within_m: float) -> Callable[[TelemetrySnapshot], bool]:
    def ok(s: TelemetrySnapshot) -> bool:
        return s.lat is not None and s.lon is not None and distance_m(s.lat, s.lon, lat, lon) <= within_m

    return ok


def _remaining_waypoints(items: list[dict[str, Any]], from_item: int) -> list[list[float]]:
    """[lat, lon, alt] of the positioned items not yet flown."""
    out = []
    for item in items[max(0, from_item) :]:
        if "lat" in item and "lon" in item and item.get("kind") in ("waypoint", "loiter_time"):
            out.append([float(item["lat"]), float(item["lon"]), float(item.get("alt_m", 0.0))])
    return out


def remaining_route_geojson(waypoints: list[list[float]]) -> dict[str, Any] | None:
    """The remaining patrol as a GeoJSON LineString (lon, lat), for a backfill mission."""
    if len(waypoints) < 2:
        return None
    line = LineString([(lon, lat) for lat, lon, _ in waypoints])
    return {"type": "LineString", "coordinates": [list(c) for c in line.coords]}
