"""The FlightExecutor: flies every persisted flight leg by leg, watches it to the end, picks it up again.

Requesters (a pilot's command, dispatch, relief, a return home) call ``start`` with the legs to fly. The
executor asks the safety gate, writes the flight and its audit entry in one transaction (superseding the
vehicle's open flight), then a named task ``flight:{id}`` drives it: each leg's command goes through the
Commander (audited before it is sent), and the leg is done when telemetry says so. Requesters hear what
happens (airborne, a leg reached, the flight ended) through listeners, not through their own loops.

On start the executor picks up every open flight: a vehicle found in the air continues from its leg
(after the gate judged the rest again) or is brought home; one that never left the ground is not
launched again. A vehicle found in the air with nothing supervising it is brought home.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from flightplans.errors import PlanningError
from flightplans.geodesy import distance_m
from mission.audit import service as audit
from mission.control.models import VehicleControl
from mission.db import session_scope
from mission.errors import Conflict, SkywardenError, VehicleUnavailable
from mission.fleet.manager import VehicleProfile
from mission.flights import commander as cmd
from mission.flights import service as flights
from mission.flights.homing import home_legs
from mission.flights.models import OPEN_STATES, Flight, FlightPurpose, FlightState, Leg, LegKind
from mission.link.types import TelemetrySnapshot
from mission.safety.gate import (
    Action,
    Asker,
    FlightPath,
    GateConfig,
    GateRequest,
    PathPoint,
    VehicleView,
    Verdict,
    check_charge_at_arming,
    judge,
    restrictions_for_span,
)
from mission.safety.rules import Rule
from mission.telemetry.events import Event, EventSink

log = logging.getLogger(__name__)

RECOVERY = "system:recovery"
EXECUTOR = "system:executor"
ROUTE_CORNER_M = 5.0  # how close a corner of a routed path must be reached
SETTLE_S = 0.5  # after a link comes up, telemetry this old is trusted for recovery decisions


class Fleet(Protocol):
    def profile(self, vehicle_id: int) -> VehicleProfile: ...
    def profiles(self) -> list[VehicleProfile]: ...
    def latest(self, vehicle_id: int) -> TelemetrySnapshot | None: ...
    def add_listener(self, listener: Callable[[int, TelemetrySnapshot], None]) -> None: ...


class FlightListener(Protocol):
    """What a requester hears of its flights; every method must be idempotent (restarts repeat them)."""

    async def flight_airborne(self, flight: Flight) -> None: ...
    async def flight_takeoff_acked(self, flight: Flight) -> None: ...
    async def flight_leg_done(self, flight: Flight, leg: Leg) -> None: ...
    async def flight_ended(self, flight: Flight) -> None: ...


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """Timings (wall seconds) and tolerances of the executor."""

    tick_s: float = 0.1
    arrive_within_m: float = 20.0
    climb_fraction: float = 0.4  # a take-off leg is done at this share of its altitude
    leg_timeout_s: float = 600.0
    takeoff_timeout_s: float = 30.0  # armed and commanded, the vehicle must be seen in the air by then
    link_loss_timeout_s: float = 30.0
    reconnect_wait_s: float = 20.0
    speed_factor: float = 1.0  # simulated seconds per wall second (dwell times are simulated)

    @classmethod
    def from_settings(cls, settings: Any) -> ExecutorConfig:
        return cls(
            tick_s=settings.supervision_tick_s,
            arrive_within_m=settings.dispatch_arrive_within_m,
            climb_fraction=settings.dispatch_climb_fraction,
            leg_timeout_s=settings.dispatch_leg_timeout_s,
            link_loss_timeout_s=settings.link_loss_timeout_s,
            reconnect_wait_s=settings.reconnect_wait_s,
            speed_factor=settings.sim_speed,
        )


class _Ended(Exception):
    """The flight ended while it was being flown (superseded, handed over, aborted): stop quietly."""


class _HandedOver(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class FlightFailed(SkywardenError):
    """A leg could not be flown (no take-off, timeout, link lost)."""


def path_of(legs: Sequence[Leg], *, dwell_s: float = 0.0) -> FlightPath | None:
    """The path the gate judges for ``legs`` (None when they only hold, land or arm where the vehicle is)."""
    points: list[PathPoint] = []
    returns_home = False
    for leg in legs:
        if leg.kind is LegKind.TAKEOFF and leg.lat is not None and leg.lon is not None:
            points.append(PathPoint(leg.lat, leg.lon, leg.alt_m or 0.0))  # the climb where it stands
        elif leg.kind in (LegKind.GOTO, LegKind.ORBIT) and leg.lat is not None and leg.lon is not None:
            orbit = leg.kind is LegKind.ORBIT
            stay = leg.dwell_s if leg.dwell_s is not None else dwell_s
            points.append(
                PathPoint(
                    leg.lat,
                    leg.lon,
                    leg.alt_m or 0.0,
                    loiter_s=max(stay, 1.0) if orbit else 0.0,
                    loiter_radius_m=(leg.radius_m or 0.0) if orbit else 0.0,
                )
            )
        elif leg.kind is LegKind.RTL:
            returns_home = True
            break
        elif leg.kind is LegKind.LAND:
            break
    if not points and not returns_home:
        return None
    return FlightPath(points=tuple(points), returns_home=True)


def _near(snap: TelemetrySnapshot, leg: Leg, within_m: float) -> bool:
    if snap.lat is None or snap.lon is None or leg.lat is None or leg.lon is None:
        return False
    return distance_m(snap.lat, snap.lon, leg.lat, leg.lon) <= within_m


def _landed(snap: TelemetrySnapshot) -> bool:
    """On the ground and disarmed (PX4's barometer drifts on the ground: never judge by altitude)."""
    return not snap.in_air and not snap.armed


_OPEN_VALUES = frozenset(s.value for s in OPEN_STATES)


class FlightExecutor:
    """The one supervisor of flights: starts them through the gate, flies them, recovers them."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: Fleet,
        hub: EventSink,
        commander: cmd.Commander,
        gate: GateConfig,
        config: ExecutorConfig | None = None,
    ) -> None:
        self._engine = engine
        self._fleet = fleet
        self._hub = hub
        self.commander = commander
        self.gate = gate
        self.config = config or ExecutorConfig()
        self._listeners: dict[FlightPurpose, list[FlightListener]] = {p: [] for p in FlightPurpose}
        self._drivers: dict[int, asyncio.Task[None]] = {}  # flight id -> its driver
        self._by_vehicle: dict[int, int] = {}  # vehicle id -> flight id being driven
        self._tasks: set[asyncio.Task[Any]] = set()
        self._snap_events: dict[int, asyncio.Event] = {}
        self._last_link_up: dict[int, float] = {}
        self._holders: dict[int, str] = {}
        self._supervising: dict[int, str] = {}  # vehicle -> "flight:ID" once its driver commands it
        self._mission_probe: Callable[[int], str | None] = lambda _vid: None
        self._started_at = time.monotonic()
        self._adopted: set[int] = set()
        self._ended: set[int] = set()  # flights ended by this executor (drivers stop at their next check)
        self._first_sent: dict[int, asyncio.Future[None]] = {}  # flight -> its first command's outcome
        # Several instances (mission.cluster): only the vehicles this instance owns are flown and recovered
        # here; a vehicle taken over is recovered like after a restart, from its flight's persisted leg.
        self._owns: Callable[[int], bool] = lambda _vid: True
        self._watch_since: dict[int, float] = {}  # vehicle -> when this instance took it over
        self._started_here: set[int] = set()  # flights this executor recorded (it drives them itself)
        # what a requester does before a flight recorded on another instance is first flown here (dispatch:
        # upload the flight's geofence), by purpose
        self._before_first_leg: dict[str, Callable[[Flight], Awaitable[None]]] = {}
        self._clustered = False
        fleet.add_listener(self._on_snapshot)

    # -- lifetime -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> FlightExecutor:
        self._started_at = time.monotonic()
        await self._refresh_holders()
        with session_scope(self._engine) as session:
            pending = [
                f.id
                for f in flights.open_flights(session=session)
                if f.id is not None and self._owns(f.vehicle_id)
            ]
        for flight_id in pending:
            self._spawn_driver(flight_id, recovering=True)
        self._spawn(self._supervise(), name="flights:supervise")
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [*self._drivers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._drivers.clear()
        self._tasks.clear()

    def add_listener(self, listener: FlightListener, *, purposes: Iterable[FlightPurpose]) -> None:
        for purpose in purposes:
            self._listeners[purpose].append(listener)

    def set_ownership(self, owns: Callable[[int], bool]) -> None:
        """Fly and recover only the vehicles ``owns`` says are this instance's (set before start); flights
        recorded for a vehicle owned elsewhere are picked up and flown by its owner."""
        self._owns = owns
        self._clustered = True

    def owns(self, vehicle_id: int) -> bool:
        """Whether this instance flies the vehicle (always, with one instance)."""
        return self._owns(vehicle_id)

    def before_first_leg(
        self, hook: Callable[[Flight], Awaitable[None]], *, purposes: Iterable[FlightPurpose]
    ) -> None:
        """Several instances: ``hook(flight)`` runs on the owner before it first flies a flight of
        ``purposes`` that another instance recorded (what the requester would have sent itself)."""
        for purpose in purposes:
            self._before_first_leg[purpose.value] = hook

    async def adopt(self, vehicle_id: int) -> None:
        """This instance took the vehicle over: recover its open flight, watch it for orphaned flying."""
        self._watch_since[vehicle_id] = time.monotonic()
        self._adopted.discard(vehicle_id)
        with session_scope(self._engine) as session:
            flight = flights.open_for_vehicle(session=session, vehicle_id=vehicle_id)
        if flight is not None and flight.id is not None:
            self._spawn_driver(flight.id, recovering=True)

    async def release(self, vehicle_id: int) -> None:
        """This instance lost the vehicle: stop driving it (the flight stays open for its new owner)."""
        with session_scope(self._engine) as session:
            flight = flights.open_for_vehicle(session=session, vehicle_id=vehicle_id)
        if flight is not None and flight.id is not None:
            await self._stop_driver(flight.id)

    def set_mission_probe(self, probe: Callable[[int], str | None]) -> None:
        """How to ask the mission supervisor whether it is tracking a vehicle's mission."""
        self._mission_probe = probe

    def _spawn(self, coro: Awaitable[Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- what the rest of the service asks -----------------------------------------------------------------

    def view(self, vehicle_id: int) -> VehicleView:
        return VehicleView(profile=self._fleet.profile(vehicle_id), snapshot=self._fleet.latest(vehicle_id))

    def judge(self, request: GateRequest) -> Verdict:
        """The gate's verdict on ``request`` for the vehicle as it is now."""
        with Session(self._engine) as session:
            return judge(
                session=session, request=request, vehicle=self.view(request.vehicle_id), config=self.gate
            )

    def refuse(self, verdict: Verdict, *, audit_action: str) -> None:
        """Audit a refusal and raise it (nothing is sent)."""
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=verdict.request.asker.name,
                action=audit_action,
                target=f"vehicle:{verdict.request.vehicle_id}",
                details=verdict.details(),
            )
        verdict.raise_if_refused()

    async def start(
        self,
        *,
        vehicle_id: int,
        purpose: FlightPurpose,
        legs: Sequence[Leg],
        asker: Asker,
        action: Action,
        reason: str = "",
        incident_id: int | None = None,
        mission_id: int | None = None,
        relieves_vehicle_id: int | None = None,
        dwell_s: float = 0.0,
        clearance_m: float | None = None,
        verdict: Verdict | None = None,
        confirm: bool = False,
    ) -> Flight:
        """Judge the flight, record it (audited, superseding the vehicle's open flight), and fly it.

        The gate's refusal raises (403 authority, 409 vehicle, 422 airspace/altitude/battery) and is
        audited; nothing is sent then. With ``confirm`` it returns once the vehicle took the flight's
        first command, and raises that command's LinkError if it did not (a pilot waits for that).
        """
        if verdict is None:
            path = path_of(legs, dwell_s=dwell_s)
            if path is not None and clearance_m is not None:
                path = FlightPath(points=path.points, returns_home=path.returns_home, clearance_m=clearance_m)
            request = GateRequest(
                vehicle_id=vehicle_id,
                action=action,
                asker=asker,
                path=path,
                incident_id=incident_id,
                mission_id=mission_id,
                dwell_s=0.0,
            )
            verdict = await asyncio.to_thread(self.judge, request)
        if not verdict.ok:
            self.refuse(verdict, audit_action=f"flight.{purpose.value}.refused")
        with session_scope(self._engine) as session:
            flight, previous = flights.create(
                session=session,
                vehicle_id=vehicle_id,
                purpose=purpose,
                legs=legs,
                requested_by=asker.name,
                reason=reason,
                incident_id=incident_id,
                mission_id=mission_id,
                relieves_vehicle_id=relieves_vehicle_id,
            )
            assert flight.id is not None
            audit.record(
                session=session,
                actor=asker.name,
                action=f"flight.{purpose.value}",
                target=f"vehicle:{vehicle_id}",
                details={
                    "flight_id": flight.id,
                    "legs": flight.legs,
                    "reason": reason[:200],
                    "incident_id": incident_id,
                    "mission_id": mission_id,
                    "supersedes": previous.id if previous is not None else None,
                    "gate": verdict.details(),
                },
            )
        assert flight.id is not None
        self._started_here.add(flight.id)  # no await since the commit: the owner's pick-up never races it
        if previous is not None and previous.id is not None:
            self._ended.add(previous.id)
            await self._stop_driver(previous.id)
            self._emit_ended(previous.id)
        self._hub.emit(
            Event(
                kind="flight.started",
                vehicle_id=vehicle_id,
                data={"flight_id": flight.id, "purpose": purpose.value, "incident_id": incident_id},
            )
        )
        if not self._owns(vehicle_id):
            # Several instances: the flight is recorded; the vehicle's owner picks it up and flies it.
            if confirm:
                await self._until_taken(flight.id)
            return flight
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._first_sent[flight.id] = first
        self._spawn_driver(flight.id)
        if confirm:
            await asyncio.shield(first)
        return flight

    async def charge_known(self, vehicle_id: int, timeout_s: float = 10.0) -> TelemetrySnapshot | None:
        """The vehicle's latest snapshot once it reports a charge (a vehicle just linked, or a flight just
        taken over from another instance, may not have one yet); whatever there is after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            snap = self._fleet.latest(vehicle_id)
            if (snap is not None and snap.battery_pct is not None) or time.monotonic() > deadline:
                return snap
            await asyncio.sleep(0.1)

    async def _until_taken(self, flight_id: int, timeout_s: float = 30.0) -> None:
        """Until the owner flies the flight (ACTIVE); Conflict if it ended first, or nobody took it."""
        deadline = time.monotonic() + timeout_s
        while True:
            flight = await asyncio.to_thread(self._load, flight_id)
            if flight.state == FlightState.ACTIVE.value:
                return
            if flight.state != FlightState.PENDING.value:
                raise Conflict(
                    f"flight {flight_id} ended before it commanded the vehicle: {flight.outcome}",
                    code="flights.flight_ended_before_commanded",
                    params={"flight_id": flight_id, "outcome": flight.outcome},
                )
            if time.monotonic() > deadline:
                raise VehicleUnavailable(
                    f"flight {flight_id}: the instance owning vehicle {flight.vehicle_id} did not take it "
                    f"within {timeout_s:.0f} s (it stays pending for whichever instance owns it next)",
                    code="flights.flight_instance_owning_vehicle",
                    params={
                        "flight_id": flight_id,
                        "vehicle_id": flight.vehicle_id,
                        "timeout_s": f"{timeout_s:.0f}",
                    },
                )
            await asyncio.sleep(0.1)

    async def _pick_up(self) -> None:
        """Several instances: fly the open flights of owned vehicles that another instance recorded, and stop
        driving a flight that another instance ended (superseded it)."""
        driven = list(self._drivers)

        def read() -> tuple[list[tuple[int, int, str]], list[int]]:
            with Session(self._engine) as session:
                open_now = [
                    (f.id, f.vehicle_id, f.state)
                    for f in flights.open_flights(session=session)
                    if f.id is not None
                ]
                closed = [
                    f.id
                    for f in (session.get(Flight, fid) for fid in driven)
                    if f is not None and f.id is not None and f.state not in _OPEN_VALUES
                ]
            return open_now, closed

        open_now, closed = await asyncio.to_thread(read)
        for fid in closed:
            self._ended.add(fid)  # ended by another instance (superseded): its driver stops at its next check
        for fid, vid, state in open_now:
            if fid in self._drivers or fid in self._started_here or not self._owns(vid):
                continue
            if self._by_vehicle.get(vid) not in (None, fid):
                continue
            self._spawn_driver(fid, recovering=state == FlightState.ACTIVE.value, picked_up=True)

    def _first_done(self, flight_id: int, error: BaseException | None = None) -> None:
        first = self._first_sent.pop(flight_id, None)
        if first is None or first.done():
            return
        if error is None:
            first.set_result(None)
        else:
            first.set_exception(error)
            first.exception()  # retrieved: nobody may be waiting for it

    async def send_home(
        self,
        vehicle_id: int,
        *,
        asker: Asker,
        reason: str,
        incident_id: int | None = None,
        mission_id: int | None = None,
        confirm: bool = False,
    ) -> Flight | None:
        """Bring an airborne vehicle home along a routed path (a RETURN flight); disarm one on the ground.

        None when the vehicle is on the ground. With no way around the zones it holds where it is and the
        operators are told (a straight RTL across a no-fly zone is never sent).
        """
        vehicle = self.view(vehicle_id)
        if vehicle.position is None:
            # Right after a (re)connect the position may not be in yet: a route needs it.
            await self._full_snapshot(vehicle_id)
            vehicle = self.view(vehicle_id)
        snap = vehicle.snapshot
        if snap is not None and snap.link_up and not snap.in_air and (snap.alt_rel_m or 0.0) < 1.0:
            if snap.armed:
                await self.commander.send(
                    vehicle_id, cmd.Disarm(), actor=asker.name, refs=cmd.Refs(incident_id=incident_id)
                )
            await self.end_open(vehicle_id, state=FlightState.COMPLETED, outcome=f"on the ground: {reason}")
            return None
        with Session(self._engine) as session:
            profile = vehicle.profile
            restrictions = restrictions_for_span(
                session=session, vehicle_id=vehicle_id, flight_s=profile.endurance_s, config=self.gate
            )
        try:
            if vehicle.position is None:
                raise PlanningError(
                    f"vehicle {vehicle_id} reports no position to plan the way home from",
                    code="flights.vehicle_reports_position_plan",
                    params={"vehicle_id": vehicle_id},
                )
            legs = home_legs(vehicle, restrictions=restrictions, config=self.gate)
        except PlanningError as err:
            # Holding is judged on nothing it could cross; PX4's own failsafes stay armed meanwhile.
            self._hub.emit(
                Event(kind="vehicle.stranded", vehicle_id=vehicle_id, data={"reason": str(err)[:300]})
            )
            log.warning("vehicle %s: no way home (%s); holding", vehicle_id, err)
            legs = [Leg(kind=LegKind.HOLD)]
        return await self.start(
            vehicle_id=vehicle_id,
            purpose=FlightPurpose.RETURN,
            legs=legs,
            asker=asker,
            action=Action.HOME,
            reason=reason,
            incident_id=incident_id,
            mission_id=mission_id,
            confirm=confirm,
        )

    async def end_open(self, vehicle_id: int, *, state: FlightState, outcome: str) -> Flight | None:
        """End the vehicle's open flight (if any) and stop its driver; the ended flight."""
        with session_scope(self._engine) as session:
            flight = flights.open_for_vehicle(session=session, vehicle_id=vehicle_id)
            if flight is None or flight.id is None:
                return None
            if not flights.end(session=session, flight_id=flight.id, state=state, outcome=outcome):
                return None
        self._ended.add(flight.id)
        await self._stop_driver(flight.id)
        self._emit_ended(flight.id)
        return flight

    def supervision(self) -> dict[int, str | None]:
        """For every vehicle: what supervises it now (flight, mission, pilot) or None."""
        out: dict[int, str | None] = {}
        for profile in self._fleet.profiles():
            out[profile.id] = self.supervisor_of(profile.id)
        return out

    def supervisor_of(self, vehicle_id: int) -> str | None:
        supervising = self._supervising.get(vehicle_id)
        if supervising is not None:
            return supervising
        mission = self._mission_probe(vehicle_id)
        if mission is not None:
            return mission
        holder = self._holders.get(vehicle_id)
        return f"pilot:{holder}" if holder is not None else None

    # -- driving ------------------------------------------------------------------------------------------

    def _spawn_driver(self, flight_id: int, *, recovering: bool = False, picked_up: bool = False) -> None:
        running = self._drivers.get(flight_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(
            self._drive(flight_id, recovering=recovering, picked_up=picked_up), name=f"flight:{flight_id}"
        )
        self._drivers[flight_id] = task

        def _done(t: asyncio.Task[None], fid: int = flight_id) -> None:
            if self._drivers.get(fid) is t:
                del self._drivers[fid]
            if not t.cancelled() and t.exception() is not None:
                log.error("flight %s: driver failed", fid, exc_info=t.exception())

        task.add_done_callback(_done)

    async def _stop_driver(self, flight_id: int) -> None:
        task = self._drivers.pop(flight_id, None)
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for vid, fid in list(self._by_vehicle.items()):
            if fid == flight_id:
                del self._by_vehicle[vid]
                self._supervising.pop(vid, None)

    def _load(self, flight_id: int) -> Flight:
        with Session(self._engine) as session:
            return flights.get(session=session, flight_id=flight_id)

    async def _drive(self, flight_id: int, *, recovering: bool, picked_up: bool = False) -> None:
        flight = self._load(flight_id)
        vid = flight.vehicle_id
        self._by_vehicle[vid] = flight_id
        try:
            if recovering and not await self._recover(flight):
                return
            hook = self._before_first_leg.get(flight.purpose)
            if picked_up and not recovering and hook is not None:
                await hook(flight)
            with session_scope(self._engine) as session:
                flights.set_state(
                    session=session, flight_id=flight_id, expect=FlightState.PENDING, to=FlightState.ACTIVE
                )
            while True:
                flight = self._load(flight_id)
                if flight.state not in (FlightState.PENDING.value, FlightState.ACTIVE.value):
                    return
                legs = flight.typed_legs()
                if flight.leg_index >= len(legs):
                    self._finish(flight, FlightState.COMPLETED, "every leg flown")
                    return
                leg = legs[flight.leg_index]
                await self._fly_leg(flight, leg)
                with session_scope(self._engine) as session:
                    moved = flights.advance(session=session, flight_id=flight_id, from_leg=flight.leg_index)
                if moved:
                    await self._tell("flight_leg_done", flight, leg)
        except _Ended:
            return
        except _HandedOver as took:
            self._finish(flight, FlightState.HANDED_OVER, f"pilot {took.holder} took control")
        except (SkywardenError, PlanningError) as err:
            log.warning("flight %s (vehicle %s) failed: %s", flight_id, vid, err)
            await self._failed(flight_id, str(err))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug must not leave a vehicle flying unsupervised
            log.exception("flight %s (vehicle %s) failed unexpectedly", flight_id, vid)
            await self._failed(flight_id, f"internal error: {err!r}")
        finally:
            # Ended before its first command went out (superseded, refused on recovery, a bug).
            self._first_done(
                flight_id,
                Conflict(
                    f"flight {flight_id} ended before it commanded the vehicle",
                    code="flights.flight_ended_before_commanded_2",
                    params={"flight_id": flight_id},
                ),
            )
            if self._by_vehicle.get(vid) == flight_id:
                del self._by_vehicle[vid]
                self._supervising.pop(vid, None)

    def _finish(self, flight: Flight, state: FlightState, outcome: str) -> bool:
        assert flight.id is not None
        with session_scope(self._engine) as session:
            ended = flights.end(session=session, flight_id=flight.id, state=state, outcome=outcome)
            if ended:
                audit.record(
                    session=session,
                    actor=EXECUTOR,
                    action=f"flight.{state.value}",
                    target=f"vehicle:{flight.vehicle_id}",
                    details={"flight_id": flight.id, "outcome": outcome[:300]},
                )
        if ended:
            self._emit_ended(flight.id)
        return ended

    def _emit_ended(self, flight_id: int) -> None:
        self._ended.add(flight_id)
        flight = self._load(flight_id)
        self._hub.emit(
            Event(
                kind="flight.ended",
                vehicle_id=flight.vehicle_id,
                data={
                    "flight_id": flight_id,
                    "purpose": flight.purpose,
                    "state": flight.state,
                    "outcome": flight.outcome,
                    "incident_id": flight.incident_id,
                },
            )
        )
        self._spawn(self._tell("flight_ended", flight), name=f"flight:{flight_id}:ended")

    async def _failed(self, flight_id: int, why: str) -> None:
        """End a flight as failed; an airborne vehicle nobody else holds is brought home."""
        flight = self._load(flight_id)
        if not self._finish(flight, FlightState.FAILED, why):
            return
        snap = self._fleet.latest(flight.vehicle_id)
        airborne = snap is not None and (snap.in_air or snap.armed or (snap.alt_rel_m or 0.0) > 1.0)
        if not airborne or self._holders.get(flight.vehicle_id) is not None:
            return
        if flight.purpose == FlightPurpose.RETURN.value and flight.typed_legs() == [Leg(kind=LegKind.RTL)]:
            return  # the last resort itself failed: the vehicle's own failsafes remain
        try:
            if flight.purpose == FlightPurpose.RETURN.value:
                # A routed return that failed: plain RTL, still a supervised flight.
                await self.start(
                    vehicle_id=flight.vehicle_id,
                    purpose=FlightPurpose.RETURN,
                    legs=[Leg(kind=LegKind.RTL)],
                    asker=Asker(EXECUTOR),
                    action=Action.HOME,
                    reason=f"the routed return failed ({why[:100]})",
                    incident_id=flight.incident_id,
                    mission_id=flight.mission_id,
                    verdict=Verdict(
                        request=GateRequest(flight.vehicle_id, Action.HOME, Asker(EXECUTOR)), refusals=()
                    ),
                )
            else:
                await self.send_home(
                    flight.vehicle_id,
                    asker=Asker(EXECUTOR),
                    reason=f"{flight.purpose} flight failed: {why[:200]}",
                    incident_id=flight.incident_id,
                )
        except SkywardenError as err:
            log.error("vehicle %s: could not be sent home after a failed flight: %s", flight.vehicle_id, err)

    async def _tell(self, method: str, flight: Flight, *args: Any) -> None:
        for listener in self._listeners[FlightPurpose(flight.purpose)]:
            try:
                await getattr(listener, method)(flight, *args)
            except Exception:  # one listener's failure must not stop the flight
                log.exception("flight %s: listener %s.%s failed", flight.id, listener, method)

    async def _fly_leg(self, flight: Flight, leg: Leg) -> None:
        """Command ``leg`` (audited) and wait until telemetry says it is done."""
        assert flight.id is not None
        vid = flight.vehicle_id
        refs = cmd.Refs(flight_id=flight.id, incident_id=flight.incident_id, mission_id=flight.mission_id)
        actor = flight.requested_by

        async def send(command: cmd.Command) -> None:
            self._check_open(flight)
            try:
                await self.commander.send(vid, command, actor=actor, refs=refs)
            except Exception as err:
                self._first_done(flight.id or 0, err)
                raise
            self._first_done(flight.id or 0)

        self._supervising[vid] = f"flight:{flight.id}"
        cfg = self.config
        if leg.kind is LegKind.TAKEOFF:
            # Just linked (a restart): wait for a reading before deciding it is on the ground to be armed.
            snap = self._fleet.latest(vid) or await self.charge_known(vid)
            if snap is None or not snap.in_air:
                if snap is None or not snap.armed:
                    snap = await self.charge_known(vid)
                    check_charge_at_arming(
                        vehicle_id=vid,
                        charge_pct=None if snap is None else snap.battery_pct,
                        config=self.gate,
                    )
                    await send(cmd.Arm())
                await send(cmd.Takeoff(leg.alt_m))
                await self._tell("flight_takeoff_acked", flight)
            try:
                await self._until(
                    flight, lambda s: s.in_air, timeout_s=cfg.takeoff_timeout_s, what="take-off"
                )
            except FlightFailed:
                snap = self._fleet.latest(vid)
                if snap is not None and snap.armed and not snap.in_air:
                    with contextlib.suppress(SkywardenError):
                        await send(cmd.Disarm())
                raise
            await self._airborne(flight)
            legs = flight.typed_legs()
            following = legs[flight.leg_index + 1] if flight.leg_index + 1 < len(legs) else None
            # Heading off while still climbing saves time; to hold there, the climb must be done.
            moving_on = following is not None and following.kind in (LegKind.GOTO, LegKind.ORBIT)
            target = (leg.alt_m or 0.0) * (cfg.climb_fraction if moving_on else 1.0) - (
                0 if moving_on else 1.5
            )
            await self._until(flight, lambda s: (s.alt_rel_m or 0.0) >= target, what="climb")
        elif leg.kind is LegKind.GOTO:
            assert leg.lat is not None and leg.lon is not None and leg.alt_m is not None
            await self._still_clear(flight)
            await send(cmd.Goto(leg.lat, leg.lon, leg.alt_m, yaw_deg=leg.yaw_deg))
            # PX4 flies a reposition at its own MPC_XY_CRUISE (5 m/s by default), not at the speed the gate
            # and the ETAs assumed (the registry's cruise speed): tell it, after the goto (a reposition
            # resets the speed to the default).
            speed = leg.speed_m_s or self._fleet.profile(vid).cruise_speed_m_s
            try:
                await send(cmd.SetSpeed(speed))
            except SkywardenError as err:  # audited as cmd.set_speed.failed; it flies on at its own speed
                log.warning("flight %s: vehicle %s kept its own speed (%s)", flight.id, vid, err)
            # A corner of a route around a zone is reached closely, so the real path keeps the planned
            # clearance; the scene (or a station) may be reached more loosely.
            within = min(cfg.arrive_within_m, ROUTE_CORNER_M) if leg.tag == "route" else cfg.arrive_within_m
            await self._until(flight, lambda s: _near(s, leg, within), what="the leg")
        elif leg.kind is LegKind.ORBIT:
            assert leg.lat is not None and leg.lon is not None and leg.alt_m is not None
            await self._still_clear(flight)
            await send(
                cmd.Orbit(
                    leg.lat,
                    leg.lon,
                    leg.alt_m,
                    radius_m=leg.radius_m or 40.0,
                    speed_m_s=leg.speed_m_s or 4.0,
                    clockwise=leg.clockwise,
                )
            )
            await self._stay(flight, leg)
        elif leg.kind is LegKind.HOLD:
            await send(cmd.Hold())
            if flight.purpose == FlightPurpose.RETURN.value and leg.dwell_s is None:
                await self._hold_until_a_way_home(flight)
            await self._stay(flight, leg)
        elif leg.kind is LegKind.RTL:
            await send(cmd.ReturnToLaunch())
            await self._until(flight, _landed, what="the return home", timeout_s=cfg.leg_timeout_s * 2)
        elif leg.kind is LegKind.LAND:
            await send(cmd.Land())
            await self._until(flight, _landed, what="landing")

    async def _still_clear(self, flight: Flight) -> None:
        """The airspace of now on the rest of the flight, before each leg is commanded.

        Zones added or activated since the flight was judged count: a flight whose rest now crosses one
        fails (and is brought home around it); a return is planned again around it.
        """
        if flight.leg_index == 0:
            return  # judged a moment ago, when it was started
        legs = flight.typed_legs()
        path = path_of(legs[flight.leg_index :])
        if path is None:
            return
        before = legs[flight.leg_index - 1]
        if before.lat is not None and before.lon is not None and before.alt_m is not None:
            # From the corner the plan reached: the legs as planned, against the airspace of now.
            path = replace(path, start=PathPoint(before.lat, before.lon, before.alt_m))
        verdict = await asyncio.to_thread(
            self.judge,
            GateRequest(
                vehicle_id=flight.vehicle_id,
                action=Action.HOME,
                asker=Asker(EXECUTOR),
                path=path,
                flight_id=flight.id,
                planning=True,  # the path only: who asked and the battery were judged at the start
            ),
        )
        blocked = [r for r in verdict.refusals if r.rule in (Rule.AIRSPACE, Rule.ALTITUDE)]
        if not blocked:
            return
        why = "; ".join(r.message for r in blocked)
        if flight.purpose == FlightPurpose.RETURN.value:
            log.warning("flight %s: the way home is blocked now (%s); planning it again", flight.id, why)
            await self.send_home(
                flight.vehicle_id,
                asker=Asker(EXECUTOR),
                reason=f"the way home was blocked: {why}"[:300],
                incident_id=flight.incident_id,
                mission_id=flight.mission_id,
            )
            raise _Ended()
        raise FlightFailed(
            f"the rest of the flight is no longer clear: {why}",
            code="flights.rest_flight_longer_clear",
            params={"why": why},
        )

    async def _hold_until_a_way_home(self, flight: Flight) -> None:
        """A return that could not be planned (no position, no way around the zones) holds until it can."""
        while True:
            with contextlib.suppress(FlightFailed):
                await self._until(flight, lambda _s: False, what="a way home", timeout_s=2.0, quiet=True)
            vehicle = self.view(flight.vehicle_id)
            if vehicle.position is None:
                continue
            with Session(self._engine) as session:
                restrictions = restrictions_for_span(
                    session=session,
                    vehicle_id=flight.vehicle_id,
                    flight_s=vehicle.profile.endurance_s,
                    config=self.gate,
                )
            try:
                home_legs(vehicle, restrictions=restrictions, config=self.gate)
            except PlanningError:
                continue
            await self.send_home(
                flight.vehicle_id,
                asker=Asker(EXECUTOR),
                reason="a way home can be planned now",
                incident_id=flight.incident_id,
                mission_id=flight.mission_id,
            )
            raise _Ended()

    async def _stay(self, flight: Flight, leg: Leg) -> None:
        if leg.dwell_s is None:
            await self._until(flight, lambda _s: False, what="overwatch", timeout_s=None)
        else:
            wall_s = leg.dwell_s / max(self.config.speed_factor, 1e-9)
            with contextlib.suppress(FlightFailed):
                await self._until(flight, lambda _s: False, what="the hold", timeout_s=wall_s, quiet=True)

    async def _airborne(self, flight: Flight) -> None:
        assert flight.id is not None
        with session_scope(self._engine) as session:
            first = flights.mark_airborne(session=session, flight_id=flight.id)
        if first:
            await self._tell("flight_airborne", self._load(flight.id))

    def _check_open(self, flight: Flight) -> None:
        """_Ended when the flight ended meanwhile; _HandedOver when a pilot took the vehicle."""
        if flight.id in self._ended:
            raise _Ended()
        holder = self._holders.get(flight.vehicle_id)
        if holder is not None and holder != flight.requested_by:
            raise _HandedOver(holder)

    async def _until(
        self,
        flight: Flight,
        done: Callable[[TelemetrySnapshot], bool],
        *,
        what: str,
        timeout_s: float | None = -1.0,
        quiet: bool = False,
    ) -> None:
        """Wait until ``done(snapshot)``; FlightFailed on timeout or link loss."""
        vid = flight.vehicle_id
        limit = self.config.leg_timeout_s if timeout_s == -1.0 else timeout_s
        deadline = None if limit is None else time.monotonic() + limit
        event = self._snap_events.setdefault(vid, asyncio.Event())
        next_check = 0.0
        while True:
            snap = self._fleet.latest(vid)
            if snap is not None and snap.link_up and done(snap):
                return
            now = time.monotonic()
            if now >= next_check:
                self._check_open(flight)
                next_check = now + 0.5
                lost_s = now - self._last_link_up.get(vid, now)
                if lost_s > self.config.link_loss_timeout_s:
                    raise FlightFailed(
                        f"link to vehicle {vid} lost for {lost_s:.0f} s during {what}",
                        code="flights.link_vehicle_lost_s",
                        params={"vid": vid, "lost_s": f"{lost_s:.0f}", "what": what},
                    )
            if deadline is not None and now > deadline:
                if quiet:
                    raise FlightFailed(what, code="flights.not_done", params={"what": what})
                raise FlightFailed(
                    f"vehicle {vid}: {what} did not finish in {limit:.0f} s",
                    code="flights.vehicle_did_finish_s",
                    params={"vid": vid, "what": what, "limit": f"{limit:.0f}"},
                )
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=self.config.tick_s * 5)

    def _on_snapshot(self, vehicle_id: int, snap: TelemetrySnapshot) -> None:
        if snap.link_up:
            self._last_link_up[vehicle_id] = time.monotonic()
        event = self._snap_events.get(vehicle_id)
        if event is not None:
            event.set()

    # -- supervision and recovery ----------------------------------------------------------------------------

    async def _refresh_holders(self) -> None:
        def read() -> dict[int, str]:
            with Session(self._engine) as session:
                return {row.vehicle_id: row.holder for row in session.exec(select(VehicleControl))}

        self._holders = await asyncio.to_thread(read)

    async def _supervise(self) -> None:
        """Refresh who holds which vehicle; bring home vehicles found flying with nothing supervising them."""
        while True:
            try:
                await self._refresh_holders()
                await self._adopt_orphans()
                if self._clustered:
                    await self._pick_up()
            except Exception:  # the loop must outlive any one bad pass
                log.exception("flight supervision pass failed")
            await asyncio.sleep(max(self.config.tick_s * 2.5, 0.25))

    async def _adopt_orphans(self) -> None:
        """After a (re)start or a takeover: a vehicle in the air that nothing supervises goes home."""
        now, window_s = time.monotonic(), self.config.reconnect_wait_s + 10.0
        if now - self._started_at > window_s and all(now - t > window_s for t in self._watch_since.values()):
            return
        for profile in self._fleet.profiles():
            vid = profile.id
            if not self._owns(vid) or now - self._watch_since.get(vid, self._started_at) > window_s:
                continue
            snap = self._fleet.latest(vid)
            if vid in self._adopted or snap is None or not snap.link_up or not snap.in_air:
                continue
            if vid in self._by_vehicle or self.supervisor_of(vid) is not None:
                continue
            with Session(self._engine) as session:
                if flights.open_for_vehicle(session=session, vehicle_id=vid) is not None:
                    continue
                from mission.missions import service as missions_service

                if missions_service.current_for_vehicle(session=session, vehicle_id=vid) is not None:
                    continue
            self._adopted.add(vid)
            log.warning("vehicle %s found flying with nothing supervising it; bringing it home", vid)
            try:
                await self.send_home(
                    vid, asker=Asker(RECOVERY), reason="found flying after a restart with no task"
                )
            except SkywardenError as err:
                log.error("vehicle %s: could not bring the unsupervised vehicle home: %s", vid, err)

    async def _recover(self, flight: Flight) -> bool:
        """Bring an open flight found at start in step with its vehicle; True to go on flying it."""
        assert flight.id is not None
        vid = flight.vehicle_id
        snap = await self._full_snapshot(vid)
        if snap is None:
            self._finish(flight, FlightState.FAILED, "vehicle not reachable after a restart")
            return False
        self._last_link_up[vid] = time.monotonic()
        legs = flight.typed_legs()
        leg = legs[flight.leg_index] if flight.leg_index < len(legs) else None
        self._audit_recovery(flight, snap)
        if not snap.in_air:
            if not flight.airborne and leg is not None and leg.kind is LegKind.TAKEOFF:
                # Never launched again by a restart: the requester decides (dispatch re-dispatches).
                if snap.armed:
                    with contextlib.suppress(SkywardenError):
                        await self.commander.send(vid, cmd.Disarm(), actor=RECOVERY, refs=cmd.Refs(flight.id))
                self._finish(
                    flight, FlightState.FAILED, "service restarted before the take-off; not relaunched"
                )
                return False
            ends_home = bool(legs) and legs[-1].kind in (LegKind.RTL, LegKind.LAND)
            if snap.armed and not ends_home:
                return True  # still arming or landing: fly on
            state = FlightState.COMPLETED if ends_home else FlightState.FAILED
            self._finish(flight, state, "vehicle on the ground after a restart")
            return False
        if flight.purpose == FlightPurpose.RETURN.value or self._holders.get(vid) is not None:
            return True  # a return always goes on; a pilot's vehicle: the driver hands it over or flies on
        path = path_of(legs[flight.leg_index :])
        if path is None:
            return True
        # The rest against the airspace of now (who asked was judged at the start; the battery is the
        # overwatch's and the vehicle's failsafes' to watch live).
        verdict = self.judge(
            GateRequest(
                vehicle_id=vid,
                action=Action.HOME,
                asker=Asker(RECOVERY),
                path=path,
                incident_id=flight.incident_id,
                flight_id=flight.id,
                planning=True,
            )
        )
        blocked = [r for r in verdict.refusals if r.rule in (Rule.AIRSPACE, Rule.ALTITUDE)]
        if not blocked:
            return True
        why = "; ".join(r.message for r in blocked)
        log.warning(
            "flight %s: the rest no longer passes the gate after a restart (%s); going home", flight.id, why
        )
        await self.send_home(
            vid,
            asker=Asker(RECOVERY),
            reason=f"after a restart the rest was refused: {why}"[:300],
            incident_id=flight.incident_id,
        )
        return False

    async def _full_snapshot(self, vehicle_id: int) -> TelemetrySnapshot | None:
        """The vehicle's first complete snapshot after a (re)connect: position, charge and a landed state
        that agrees with its height (right after a link comes up MAVSDK has not heard every stream yet)."""
        deadline = time.monotonic() + self.config.reconnect_wait_s
        first_up: float | None = None
        snap = self._fleet.latest(vehicle_id)
        while True:
            now = time.monotonic()
            if snap is not None and snap.link_up:
                first_up = first_up or now
                complete = snap.lat is not None and snap.lon is not None and snap.battery_pct is not None
                consistent = snap.in_air or (snap.alt_rel_m or 0.0) < 3.0
                if complete and consistent and now - first_up >= SETTLE_S:
                    return snap
            if now > deadline:
                return snap if snap is not None and snap.link_up else None
            await asyncio.sleep(0.1)
            snap = self._fleet.latest(vehicle_id)

    def _audit_recovery(self, flight: Flight, snap: TelemetrySnapshot) -> None:
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=RECOVERY,
                action="flight.recovered",
                target=f"vehicle:{flight.vehicle_id}",
                details={
                    "flight_id": flight.id,
                    "purpose": flight.purpose,
                    "leg_index": flight.leg_index,
                    "in_air": snap.in_air,
                    "armed": snap.armed,
                },
            )
        self._hub.emit(
            Event(
                kind="flight.recovered",
                vehicle_id=flight.vehicle_id,
                data={"flight_id": flight.id, "purpose": flight.purpose, "in_air": snap.in_air},
            )
        )


__all__ = ["ExecutorConfig", "FlightExecutor", "FlightFailed", "FlightListener", "path_of"]
