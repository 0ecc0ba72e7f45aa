"""MissionSupervisor: drives missions through their lifecycle against real vehicles.

Every step commits its new state (and audit entry) before it commands a vehicle, so a request the service
accepted survives a crash: on start the supervisor reconciles each in-flight mission with its vehicle (it
downloads the vehicle's mission and resumes tracking). Transitions are compare-and-set, so a mission that
completes is recorded completed exactly once however many times the news arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.errors import PlanningError
from flightplans.items import Land, MissionItem, ReturnToLaunch
from mission.audit import service as audit
from mission.control import service as control
from mission.db import session_scope
from mission.errors import AirspaceViolation, InvalidTransition, LinkError, SkywardenError, VehicleUnavailable
from mission.fleet.manager import FleetManager, Hub
from mission.incidents.models import Incident, IncidentState
from mission.link.types import FlightMode, TelemetrySnapshot
from mission.missions import service
from mission.missions.codec import geofence_from_json, items_from_json
from mission.missions.gate import GateConfig, GateResult, context_for, evaluate_plan, restrictions_for_flight
from mission.missions.homing import fly_home, home_route, remaining_problems
from mission.missions.models import Mission, MissionCreate, PlanSpec
from mission.missions.states import IN_FLIGHT, MissionState
from mission.telemetry.events import Event

log = logging.getLogger(__name__)

S = MissionState
SYSTEM = "system"
VEHICLE = "vehicle"
RECOVERY = "system:recovery"
# Incidents in these states hold their vehicle: no mission may be launched on it.
INCIDENT_HOLDS = (IncidentState.ASSIGNED, IncidentState.EN_ROUTE, IncidentState.ON_SCENE)


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """Timings of the supervisor (wall seconds)."""

    link_loss_timeout_s: float = 30.0
    reconnect_wait_s: float = 20.0
    landed_grace_s: float = 5.0
    watchdog_period_s: float = 1.0


@dataclass
class _Track:
    mission_id: int
    state: MissionState
    total: int
    ends_home: bool
    progress: int
    last_link_up: float
    since: float
    verified: bool = True  # False until a restarted service has read the vehicle's mission back


def _ends_home(items: list[MissionItem]) -> bool:
    return bool(items) and isinstance(items[-1], ReturnToLaunch | Land)


def same_mission(ours: Sequence[MissionItem], theirs: Sequence[object]) -> bool:
    """Whether a downloaded mission is ours, allowing for MAVLink's integer degrees and float32 altitudes."""
    if len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs, strict=True):
        if a.kind != getattr(b, "kind", None):
            return False
        for name, tolerance in (("lat", 1e-6), ("lon", 1e-6), ("alt_m", 0.1)):
            if hasattr(a, name) and abs(getattr(a, name) - getattr(b, name)) > tolerance:
                return False
    return True


def _incident_holding(session: Session, vehicle_id: int) -> None:
    """VehicleUnavailable when an assigned, en-route or on-scene incident holds the vehicle."""
    held = session.exec(
        select(Incident)
        .where(col(Incident.vehicle_id) == vehicle_id)
        .where(col(Incident.state).in_([s.value for s in INCIDENT_HOLDS]))
    ).first()
    if held is not None:
        raise VehicleUnavailable(
            f"vehicle {vehicle_id} is held by incident {held.id} ({held.kind}, {held.state});"
            " close or reassign the incident first"
        )


def _log_failure(task: asyncio.Task[Any]) -> None:
    """Retrieve a finished task's error so none goes unseen (a caller may have stopped waiting)."""
    if task.cancelled():
        return
    err = task.exception()
    if err is not None and not isinstance(err, SkywardenError):
        log.error("task %s failed", task.get_name(), exc_info=err)


class MissionSupervisor:
    """The lifecycle actions the API calls, the progress tracker, the link watchdog and restart recovery."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: FleetManager,
        hub: Hub,
        gate: GateConfig | None = None,
        config: SupervisorConfig | None = None,
    ) -> None:
        self._engine = engine
        self._fleet = fleet
        self._hub = hub
        self._gate = gate or GateConfig()
        self._cfg = config or SupervisorConfig()
        self._tracks: dict[int, _Track] = {}  # by vehicle id
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drivers: dict[int, asyncio.Task[Mission]] = {}
        fleet.add_listener(self._on_snapshot)

    # -- lifetime -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> MissionSupervisor:
        self._spawn(self._watchdog(), name="missions:watchdog")
        with session_scope(self._engine) as session:
            pending = [
                (m.id, m.vehicle_id, MissionState(m.state)) for m in service.in_flight(session=session)
            ]
        for mission_id, vehicle_id, state in pending:
            assert mission_id is not None
            self._spawn(
                self._reconcile(mission_id, vehicle_id, state), name=f"mission:{mission_id}:reconcile"
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, coro: Awaitable[Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    # -- the record ----------------------------------------------------------------------------------------

    def _apply(
        self,
        mission_id: int,
        action: str,
        *,
        actor: str,
        reason: str = "",
        expect_from: MissionState | None = None,
        changes: dict[str, Any] | None = None,
        audit_action: str | None = None,
        audit_details: dict[str, Any] | None = None,
        check: Callable[[Any, Mission], None] | None = None,
    ) -> Mission:
        """Commit one transition (and its audit entry), then tell the hub and the tracker."""
        with session_scope(self._engine) as session:
            if check is not None:
                check(session, service.get(session=session, mission_id=mission_id))
            result = service.transition(
                session=session,
                mission_id=mission_id,
                action=action,
                actor=actor,
                reason=reason,
                expect_from=expect_from,
                changes=changes,
            )
            if audit_action is not None:
                audit.record(
                    session=session,
                    actor=actor,
                    action=audit_action,
                    target=f"mission:{mission_id}",
                    details={"reason": reason, "state": result.mission.state, **(audit_details or {})},
                )
        mission = result.mission
        if result.event is not None:
            self._hub.emit(
                Event(
                    kind="mission.transition",
                    vehicle_id=mission.vehicle_id,
                    mission_id=mission_id,
                    data={
                        "mission_id": mission_id,
                        "name": mission.name,
                        "from_state": result.event.from_state,
                        "to_state": result.event.to_state,
                        "actor": actor,
                        "reason": reason,
                    },
                )
            )
        self._retrack(mission)
        return mission

    def _retrack(self, mission: Mission) -> None:
        state = MissionState(mission.state)
        track = self._tracks.get(mission.vehicle_id)
        if state in (S.ACTIVE, S.PAUSED, S.RETURNING):
            if track is not None and track.mission_id == mission.id:
                track.state = state
            else:
                items = items_from_json(mission.items or [])
                assert mission.id is not None
                now = time.monotonic()
                self._tracks[mission.vehicle_id] = _Track(
                    mission_id=mission.id,
                    state=state,
                    total=len(items),
                    ends_home=_ends_home(items),
                    progress=mission.progress_current,
                    last_link_up=now,
                    since=now,
                )
        elif track is not None and track.mission_id == mission.id:
            del self._tracks[mission.vehicle_id]

    # -- operator actions ----------------------------------------------------------------------------------

    def create(self, *, data: MissionCreate, actor: str) -> Mission:
        """A draft mission; its plan is previewed now so a plan that cannot be built is refused at once."""
        profile = self._fleet.profile(data.vehicle_id)
        with session_scope(self._engine) as session:
            result = evaluate_plan(
                plan=data.plan,
                session=session,
                profile=profile,
                snapshot=self._fleet.latest(data.vehicle_id),
                config=self._gate,
            )
            mission = service.create(
                session=session,
                name=data.name,
                vehicle_id=data.vehicle_id,
                plan=data.plan.model_dump(),
                actor=actor,
            )
            mission.path = result.preview.path
            mission.metrics = result.preview.metrics
            mission.violations = [v.model_dump() for v in result.preview.violations]
            session.add(mission)
            session.flush()
            assert mission.id is not None
            audit.record(
                session=session,
                actor=actor,
                action="mission.create",
                target=f"mission:{mission.id}",
                details={"name": data.name, "vehicle_id": data.vehicle_id, "kind": data.plan.kind},
            )
        return mission

    def validate(self, *, mission_id: int, actor: str) -> Mission:
        """Run the safety gate; on success the mission is validated with the items and geofence to fly."""
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
            vehicle_id, plan = mission.vehicle_id, mission.plan
            state = MissionState(mission.state)
        if state not in (S.DRAFT, S.VALIDATED):
            raise InvalidTransition(
                f"mission {mission_id} is {state.value}; validate is only possible from draft or validated"
            )
        result = self._evaluate(vehicle_id, plan)
        preview = result.preview
        if preview.violations:
            with session_scope(self._engine) as session:
                mission = service.get(session=session, mission_id=mission_id)
                mission.violations = [v.model_dump() for v in preview.violations]
                mission.path, mission.metrics = preview.path, preview.metrics
                session.add(mission)
                audit.record(
                    session=session,
                    actor=actor,
                    action="mission.validate.refused",
                    target=f"mission:{mission_id}",
                    details={"violations": [v.message for v in preview.violations]},
                )
            raise AirspaceViolation(
                f"mission {mission_id} fails the safety gate: "
                + "; ".join(v.message for v in preview.violations),
                violations=[v.model_dump() for v in preview.violations],
            )
        return self._apply(
            mission_id,
            "validate",
            actor=actor,
            reason="safety gate passed",
            changes={
                "items": preview.items,
                "geofence": result.geofence,
                "path": preview.path,
                "metrics": preview.metrics,
                "violations": [],
            },
            audit_action="mission.validate",
            audit_details={"items": len(preview.items)},
        )

    def _evaluate(self, vehicle_id: int, plan: dict[str, Any]) -> GateResult:
        profile = self._fleet.profile(vehicle_id)
        with session_scope(self._engine) as session:
            return evaluate_plan(
                plan=PlanSpec.model_validate(plan),
                session=session,
                profile=profile,
                snapshot=self._fleet.latest(vehicle_id),
                config=self._gate,
            )

    async def launch(self, *, mission_id: int, actor: str) -> Mission:
        """Re-check the gate against the airspace and battery of now, commit, then upload and start."""
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
            vehicle_id, plan, state = mission.vehicle_id, mission.plan, MissionState(mission.state)
            control.require_authority(session=session, vehicle_id=vehicle_id, username=actor, explicit=False)
            busy = service.current_for_vehicle(session=session, vehicle_id=vehicle_id)
        if state != S.VALIDATED:
            if state in (S.UPLOADING, S.READY, S.ACTIVE) and mission_id in self._drivers:
                return await self._await_driver(mission_id, self._drivers[mission_id])
            raise InvalidTransition(
                f"mission {mission_id} is {state.value}; launch is only possible from validated"
            )
        if busy is not None and busy.id != mission_id:
            raise VehicleUnavailable(f"vehicle {vehicle_id} is flying mission {busy.id} ({busy.state})")
        self._require_on_ground_and_free(vehicle_id)
        self._fleet.link(vehicle_id)  # refuse now if the vehicle is not connected
        result = self._evaluate(vehicle_id, plan)
        if result.preview.violations:
            raise AirspaceViolation(
                f"mission {mission_id} no longer passes the safety gate: "
                + "; ".join(v.message for v in result.preview.violations),
                violations=[v.model_dump() for v in result.preview.violations],
            )

        def _still_free(session: Any, mission: Mission) -> None:
            control.require_authority(session=session, vehicle_id=vehicle_id, username=actor, explicit=False)
            other = service.current_for_vehicle(session=session, vehicle_id=vehicle_id)
            if other is not None and other.id != mission_id:
                raise VehicleUnavailable(f"vehicle {vehicle_id} is flying mission {other.id} ({other.state})")
            _incident_holding(session, vehicle_id)

        self._apply(
            mission_id,
            "launch",
            actor=actor,
            reason="launch requested",
            expect_from=S.VALIDATED,
            changes={
                "items": result.preview.items,
                "geofence": result.geofence,
                "path": result.preview.path,
                "metrics": result.preview.metrics,
            },
            audit_action="mission.launch",
            check=_still_free,
        )
        return await self._await_driver(mission_id, self._drive(mission_id, actor=actor))

    async def _await_driver(self, mission_id: int, task: asyncio.Task[Mission]) -> Mission:
        """The launch's outcome; a launch stopped by an abort is an InvalidTransition, not a cancellation."""
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.cancelled() and (me is None or not me.cancelling()):
                raise InvalidTransition(f"mission {mission_id} was aborted during its launch") from None
            raise

    def _require_on_ground_and_free(self, vehicle_id: int) -> None:
        """VehicleUnavailable when an active incident holds the vehicle or it is airborne already."""
        with session_scope(self._engine) as session:
            _incident_holding(session, vehicle_id)
        snap = self._fleet.latest(vehicle_id)
        if snap is not None and snap.link_up and snap.in_air:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} is airborne ({snap.mode.value}) on something else; a mission launches"
                " from the ground and is checked from its home: land it first"
            )

    def _drive(self, mission_id: int, *, actor: str) -> asyncio.Task[Mission]:
        task = self._drivers.get(mission_id)
        if task is None or task.done():
            task = self._spawn(
                self._launch_sequence(mission_id, actor=actor), name=f"mission:{mission_id}:launch"
            )
            self._drivers[mission_id] = task
            task.add_done_callback(lambda _t: self._drivers.pop(mission_id, None))
        return task

    async def _launch_sequence(self, mission_id: int, *, actor: str) -> Mission:
        """uploading -> ready -> active; safe to run again after a crash at any point."""
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
        items = items_from_json(mission.items or [])
        fence = geofence_from_json(mission.geofence or {"shapes": []})
        vehicle_id = mission.vehicle_id
        if MissionState(mission.state) == S.UPLOADING:
            try:
                link = await self._fleet.wait_link(vehicle_id, timeout_s=self._cfg.reconnect_wait_s)
                await link.upload_geofence(fence)
                if not same_mission(items, await link.download_mission()):
                    await link.upload_mission(items)
                    if not same_mission(items, await link.download_mission()):
                        raise LinkError(
                            f"vehicle {vehicle_id}: the mission read back differs from the one uploaded"
                        )
            except (LinkError, VehicleUnavailable) as err:
                self._apply(
                    mission_id,
                    "upload_failed",
                    actor=SYSTEM,
                    reason=f"upload failed: {err}",
                    expect_from=S.UPLOADING,
                )
                raise
            mission = self._apply(
                mission_id,
                "uploaded",
                actor=SYSTEM,
                reason=f"{len(items)} items and {len(fence.shapes)} fence shapes on the vehicle",
                expect_from=S.UPLOADING,
            )
        if MissionState(mission.state) == S.READY:
            try:
                link = await self._fleet.wait_link(vehicle_id, timeout_s=self._cfg.reconnect_wait_s)
                snap = link.latest
                if not (snap is not None and snap.armed and snap.mode == FlightMode.MISSION):
                    if snap is None or not snap.armed:
                        self._require_state(mission_id, S.READY, before="arming")
                        await link.arm()
                    self._require_state(mission_id, S.READY, before="starting the mission")
                    await link.start_mission()
            except (LinkError, VehicleUnavailable) as err:
                # Still on the ground (pre-arm refused, link gone): the mission can be launched again.
                snap = self._fleet.latest(vehicle_id)
                airborne = snap is not None and snap.in_air
                self._apply(
                    mission_id,
                    "fail" if airborne else "start_failed",
                    actor=SYSTEM,
                    reason=f"start failed: {err}"
                    + ("" if airborne else "; launch again when the vehicle is ready"),
                    expect_from=S.READY,
                )
                raise
            mission = self._apply(
                mission_id, "start", actor=actor, reason="vehicle flying the mission", expect_from=S.READY
            )
        return mission

    def _require_state(self, mission_id: int, state: MissionState, *, before: str) -> None:
        """InvalidTransition unless the mission is still ``state`` (an abort may have come in meanwhile)."""
        with session_scope(self._engine) as session:
            now = MissionState(service.get(session=session, mission_id=mission_id).state)
        if now != state:
            raise InvalidTransition(f"mission {mission_id} is {now.value}; not {before}")

    async def pause(self, *, mission_id: int, actor: str) -> Mission:
        """Hold the vehicle where it is; the mission can be resumed."""
        mission = self._apply(
            mission_id,
            "pause",
            actor=actor,
            reason="paused by operator",
            audit_action="mission.pause",
            check=self._authority(actor),
        )
        try:
            await self._fleet.link(mission.vehicle_id).pause()
        except (LinkError, VehicleUnavailable) as err:
            self._apply(
                mission_id, "resume", actor=SYSTEM, reason=f"pause failed: {err}", expect_from=S.PAUSED
            )
            raise
        return mission

    async def resume(self, *, mission_id: int, actor: str) -> Mission:
        """Continue a paused mission from the item it was flying, once the rest passes the safety gate."""
        self._gate_remaining(mission_id, actor=actor)
        mission = self._apply(
            mission_id,
            "resume",
            actor=actor,
            reason="resumed by operator",
            audit_action="mission.resume",
            check=self._authority(actor),
        )
        try:
            await self._fleet.link(mission.vehicle_id).resume()
        except (LinkError, VehicleUnavailable) as err:
            self._apply(
                mission_id, "pause", actor=SYSTEM, reason=f"resume failed: {err}", expect_from=S.ACTIVE
            )
            raise
        return mission

    def _gate_remaining(self, mission_id: int, *, actor: str) -> None:
        """The safety gate on the rest of a mission from the vehicle's position, zones and charge of now."""
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
            vehicle_id, raw_items = mission.vehicle_id, list(mission.items or [])
            state = MissionState(mission.state)
        if state != S.PAUSED:
            return  # the transition refuses it with the reason
        snap = self._fleet.latest(vehicle_id)
        if snap is None or not snap.link_up or snap.lat is None or snap.lon is None:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} reports no position; the rest of mission {mission_id}"
                " cannot be checked"
            )
        if snap.battery_pct is None:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} reports no battery charge; the rest of mission {mission_id}"
                " cannot be checked"
            )
        profile = self._fleet.profile(vehicle_id)
        with session_scope(self._engine) as session:
            ctx = context_for(session=session, profile=profile, snapshot=snap, config=self._gate)
            restrictions = restrictions_for_flight(
                session=session,
                flight_s=profile.endurance_s * snap.battery_pct / 100.0,
                config=self._gate,
            )
        home = ctx.home or (profile.home_lat, profile.home_lon)
        problems = remaining_problems(
            items=items_from_json(raw_items),
            current=snap.mission.current,
            snapshot=snap,
            home=home,
            restrictions=restrictions,
            context=ctx,
            config=self._gate,
        )
        if problems:
            with session_scope(self._engine) as session:
                audit.record(
                    session=session,
                    actor=actor,
                    action="mission.resume.refused",
                    target=f"mission:{mission_id}",
                    details={"problems": problems},
                )
            raise AirspaceViolation(
                f"mission {mission_id} cannot resume from where vehicle {vehicle_id} is: "
                + "; ".join(problems),
                violations=list(problems),
            )

    async def send_home(self, vehicle_id: int) -> None:
        """RTL, first along a routed detour when the straight way home crosses a restriction."""
        link = self._fleet.link(vehicle_id)
        snap = self._fleet.latest(vehicle_id)
        profile = self._fleet.profile(vehicle_id)
        home = (profile.home_lat, profile.home_lon)
        if snap is not None and snap.home_ok and snap.home_lat is not None and snap.home_lon is not None:
            home = (snap.home_lat, snap.home_lon)
        if snap is None or snap.lat is None or snap.lon is None or not snap.in_air:
            await link.return_to_launch()
            return
        with session_scope(self._engine) as session:
            restrictions = restrictions_for_flight(
                session=session, flight_s=profile.endurance_s, config=self._gate
            )
        try:
            route = home_route(
                here=(snap.lat, snap.lon),
                home=home,
                alt_m=snap.alt_rel_m or 0.0,
                restrictions=restrictions,
                config=self._gate,
            )
        except PlanningError as err:  # no way around: straight home beats staying up
            log.warning("vehicle %s: no detour home (%s); returning straight", vehicle_id, err)
            await link.return_to_launch()
            return
        await fly_home(link=link, route=route, snapshot=snap)

    async def return_home(self, *, mission_id: int, actor: str) -> Mission:
        """Send the vehicle home; the mission completes when it has landed."""
        mission = self._apply(
            mission_id,
            "return",
            actor=actor,
            reason="return requested by operator",
            audit_action="mission.return",
            check=self._authority(actor),
        )
        await self.send_home(mission.vehicle_id)
        return mission

    async def abort(self, *, mission_id: int, actor: str) -> Mission:
        """End the mission now; a vehicle in the air is sent home."""
        with session_scope(self._engine) as session:
            row = service.get(session=session, mission_id=mission_id)
            control.require_authority(
                session=session, vehicle_id=row.vehicle_id, username=actor, explicit=False
            )
        driver = self._drivers.pop(mission_id, None)
        if driver is not None and not driver.done():
            # Stop the launch in progress first, so it cannot arm or start after the abort.
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
        with session_scope(self._engine) as session:
            before = MissionState(service.get(session=session, mission_id=mission_id).state)
        mission = self._apply(
            mission_id,
            "abort",
            actor=actor,
            reason="aborted by operator",
            audit_action="mission.abort",
            check=self._authority(actor),
        )
        if before in IN_FLIGHT:
            snap = self._fleet.latest(mission.vehicle_id)
            if before in (S.UPLOADING, S.READY) and snap is not None and snap.link_up and not snap.in_air:
                # Still on the ground: an arm the cut launch had already sent may land; disarm.
                with contextlib.suppress(LinkError, VehicleUnavailable):
                    await self._fleet.link(mission.vehicle_id).disarm()
            elif snap is None or snap.in_air or snap.armed:
                await self.send_home(mission.vehicle_id)
        return mission

    def _authority(self, actor: str) -> Callable[[Any, Mission], None]:
        def check(session: Any, mission: Mission) -> None:
            control.require_authority(
                session=session, vehicle_id=mission.vehicle_id, username=actor, explicit=False
            )

        return check

    def note_manual_command(self, *, vehicle_id: int, command: str, actor: str) -> None:
        """A pilot's direct command takes the vehicle off its mission: pause (hold/goto/orbit) or return."""
        track = self._tracks.get(vehicle_id)
        if track is None:
            return
        action = "return" if command in ("return", "land") else "pause"
        if action == "pause" and track.state != S.ACTIVE:
            return
        with contextlib.suppress(InvalidTransition):
            self._apply(track.mission_id, action, actor=actor, reason=f"manual {command} command")

    # -- tracking ------------------------------------------------------------------------------------------

    def _on_snapshot(self, vehicle_id: int, snap: TelemetrySnapshot) -> None:
        track = self._tracks.get(vehicle_id)
        if track is None:
            return
        now = time.monotonic()
        if not snap.link_up:
            return
        track.last_link_up = now
        if not track.verified:
            return
        prog = snap.mission
        knows_ours = prog.total == track.total and track.total > 0
        if knows_ours and prog.current != track.progress:
            track.progress = prog.current
            with session_scope(self._engine) as session:
                service.set_progress(
                    session=session, mission_id=track.mission_id, current=prog.current, total=prog.total
                )
            self._hub.emit(
                Event(
                    kind="mission.progress",
                    vehicle_id=vehicle_id,
                    mission_id=track.mission_id,
                    data={"current": prog.current, "total": prog.total},
                )
            )
        # Without the vehicle's count (the link has not read the mission back yet) judge by what we saw last.
        items_done = (
            (prog.finished or prog.current >= track.total - 1)
            if knows_ours
            else (track.progress >= track.total - 1)
        )
        landed = not snap.in_air and not snap.armed
        returning_mode = snap.mode in (FlightMode.RETURN, FlightMode.LAND)
        settled = now - track.since >= self._cfg.landed_grace_s
        decision: tuple[str, str] | None = None
        if track.state == S.ACTIVE:
            if landed and settled:
                if items_done:
                    decision = ("complete", "vehicle finished the mission and landed")
                elif knows_ours:
                    decision = (
                        "fail",
                        f"vehicle landed before finishing (item {prog.current + 1} of {track.total})",
                    )
            elif knows_ours and prog.finished and snap.in_air and track.ends_home:
                decision = ("return", "mission items done; vehicle returning home")
            elif knows_ours and prog.finished and not track.ends_home:
                decision = ("complete", "vehicle finished the mission")
            elif returning_mode and snap.in_air:
                why = "mission items done" if items_done else f"vehicle switched to {snap.mode.value}"
                decision = ("return", f"{why}; returning home")
        elif track.state == S.PAUSED:
            if returning_mode and snap.in_air:
                decision = ("return", f"vehicle switched to {snap.mode.value}; returning home")
            elif landed and settled:
                decision = ("fail", "vehicle landed while the mission was paused")
        elif track.state == S.RETURNING and landed:
            decision = ("complete", "vehicle landed")
        if decision is not None:
            action, reason = decision
            try:
                self._apply(track.mission_id, action, actor=VEHICLE, reason=reason, expect_from=track.state)
            except InvalidTransition as err:
                log.info("mission %s: %s", track.mission_id, err)
                self._tracks.pop(vehicle_id, None)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.watchdog_period_s)
            now = time.monotonic()
            for vehicle_id, track in list(self._tracks.items()):
                lost_s = now - track.last_link_up
                if lost_s > self._cfg.link_loss_timeout_s:
                    try:
                        self._apply(
                            track.mission_id,
                            "fail",
                            actor=SYSTEM,
                            reason=f"link to vehicle {vehicle_id} lost for {lost_s:.0f} s",
                            expect_from=track.state,
                        )
                    except InvalidTransition:
                        self._tracks.pop(vehicle_id, None)
                    except Exception:  # one mission's failure must not stop the watchdog for all
                        log.exception("watchdog: mission %s on vehicle %s", track.mission_id, vehicle_id)

    # -- restart recovery ----------------------------------------------------------------------------------

    async def _found_flying(self, mission_id: int, vehicle_id: int, state: MissionState) -> bool:
        """A launch cut short by a restart: tracked if the vehicle is already flying it, else re-validated.

        Its items were checked against the airspace, battery and control of before the crash, so it is
        never carried on: the pilot launches it again and launch re-checks everything.
        """
        snap: TelemetrySnapshot | None = None
        if state == S.READY:  # only a ready mission can have been armed and started
            with contextlib.suppress(LinkError, VehicleUnavailable):
                await self._fleet.wait_link(vehicle_id, timeout_s=self._cfg.reconnect_wait_s)
                for _ in range(25):  # the first snapshot follows the connection within a few ticks
                    if (snap := self._fleet.latest(vehicle_id)) is not None:
                        break
                    await asyncio.sleep(0.2)
        if snap is not None and snap.link_up and snap.in_air:
            self._apply(
                mission_id,
                "start",
                actor=RECOVERY,
                reason="after restart the vehicle was found flying; tracking it",
                expect_from=S.READY,
                audit_action="mission.recovery.start",
            )
            return True
        action = "upload_failed" if state == S.UPLOADING else "start_failed"
        with contextlib.suppress(InvalidTransition):
            self._apply(
                mission_id,
                action,
                actor=RECOVERY,
                reason=f"service restarted while the mission was {state.value}; launch again"
                " (airspace, battery and control are re-checked)",
                expect_from=state,
                audit_action="mission.recovery.revalidate",
            )
        return False

    async def _reconcile(self, mission_id: int, vehicle_id: int, state: MissionState) -> None:
        """Bring one in-flight mission back in step with its vehicle after a (re)start."""
        if state in (S.UPLOADING, S.READY):
            if not await self._found_flying(mission_id, vehicle_id, state):
                return
            state = S.ACTIVE
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
        items = items_from_json(mission.items or [])
        self._retrack(mission)  # from now on the watchdog counts link loss
        track = self._tracks.get(vehicle_id)
        if track is None:
            return
        track.verified = False
        while True:
            try:
                link = await self._fleet.wait_link(vehicle_id, timeout_s=self._cfg.reconnect_wait_s)
                theirs = await link.download_mission()
                break
            except (LinkError, VehicleUnavailable) as err:
                log.warning(
                    "mission %s: vehicle %s not reachable after restart: %s", mission_id, vehicle_id, err
                )
                if self._tracks.get(vehicle_id) is not track:
                    return  # the watchdog gave up on it
                await asyncio.sleep(1.0)
        if not same_mission(items, theirs):
            with contextlib.suppress(InvalidTransition):
                self._apply(
                    mission_id,
                    "fail",
                    actor=SYSTEM,
                    reason=f"after restart vehicle {vehicle_id} holds another mission ({len(theirs)} items)",
                    expect_from=track.state,
                    audit_action="mission.recovery.fail",
                )
            return
        track.verified = True
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=RECOVERY,
                action="mission.recovery.track",
                target=f"mission:{mission_id}",
                details={"state": mission.state, "vehicle_id": vehicle_id, "items": len(items)},
            )
        self._hub.emit(
            Event(
                kind="mission.recovered",
                vehicle_id=vehicle_id,
                mission_id=mission_id,
                data={"state": mission.state, "items": len(items)},
            )
        )
