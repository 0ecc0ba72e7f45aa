"""MissionSupervisor: drives uploaded missions (patrols, sweeps) through their lifecycle on real vehicles.

It is the mission half of the one executor: every check goes through the safety gate
(``mission.safety.gate``), every command through the executor's Commander (audited before it is sent),
and every movement that is not the mission itself (a return home, around the zones) is a persisted
flight of the FlightExecutor. Every step commits its new state before it commands a vehicle, so a request
the service accepted survives a crash: on start each in-flight mission is reconciled with its vehicle.
Transitions are compare-and-set, so a mission ends exactly once however many times the news arrives.
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

from flightplans.items import Geofence, Land, LoiterTime, MissionItem, ReturnToLaunch, Waypoint
from mission.audit import service as audit
from mission.db import session_scope
from mission.errors import InvalidTransition, LinkError, SkywardenError, VehicleUnavailable
from mission.fleet.manager import FleetManager, Hub
from mission.flights import commander as cmd
from mission.flights.executor import FlightExecutor
from mission.flights.models import FlightState
from mission.link.types import FlightMode, TelemetrySnapshot
from mission.missions import service
from mission.missions.codec import geofence_from_json, items_from_json
from mission.missions.fence import breach_note
from mission.missions.models import Mission, MissionCreate, PlanSpec
from mission.missions.states import IN_FLIGHT, MissionState
from mission.planning import PlanPreview, PlanRequest, to_preview
from mission.safety.gate import (
    Action,
    Asker,
    FlightPath,
    GateRequest,
    PathPoint,
    Verdict,
    check_charge_at_arming,
    judge,
)
from mission.telemetry.events import Event

log = logging.getLogger(__name__)

S = MissionState
SYSTEM = "system"
VEHICLE = "vehicle"
RECOVERY = "system:recovery"


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """Timings of the supervisor (wall seconds)."""

    link_loss_timeout_s: float = 30.0
    reconnect_wait_s: float = 20.0
    landed_grace_s: float = 5.0
    watchdog_period_s: float = 1.0
    takeoff_timeout_s: float = 30.0  # armed in MISSION mode, the vehicle must be seen in the air by then
    arm_retry_s: float = 20.0  # how long a vehicle refusing to arm into a new mission is asked again

    @classmethod
    def from_settings(cls, settings: Any) -> SupervisorConfig:
        return cls(
            link_loss_timeout_s=settings.link_loss_timeout_s,
            reconnect_wait_s=settings.reconnect_wait_s,
            landed_grace_s=settings.landed_grace_s,
        )


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
    vehicle_returned: bool = False  # the vehicle went home on its own before the items were done
    progress_saving: bool = False
    fence: Geofence | None = None  # what the mission uploaded with it, to read a failsafe against
    mode: FlightMode | None = None  # the vehicle's mode in the last snapshot


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
        executor: FlightExecutor,
        config: SupervisorConfig | None = None,
    ) -> None:
        self._engine = engine
        self._fleet = fleet
        self._hub = hub
        self._executor = executor
        self._commander = executor.commander
        self._cfg = config or SupervisorConfig()
        self._tracks: dict[int, _Track] = {}  # by vehicle id
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drivers: dict[int, asyncio.Task[Mission]] = {}
        self._owns: Callable[[int], bool] = lambda _vid: True  # several instances: see set_ownership
        fleet.add_listener(self._on_snapshot)
        executor.set_mission_probe(self.supervising)

    # -- lifetime -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> MissionSupervisor:
        self._spawn(self._watchdog(), name="missions:watchdog")
        with session_scope(self._engine) as session:
            pending = [
                (m.id, m.vehicle_id, MissionState(m.state))
                for m in service.in_flight(session=session)
                if self._owns(m.vehicle_id)
            ]
        for mission_id, vehicle_id, state in pending:
            assert mission_id is not None
            self._spawn(
                self._reconcile(mission_id, vehicle_id, state), name=f"mission:{mission_id}:reconcile"
            )
        return self

    def set_ownership(self, owns: Callable[[int], bool]) -> None:
        """Supervise and reconcile only the vehicles ``owns`` says are this instance's (before start)."""
        self._owns = owns

    async def adopt(self, vehicle_id: int) -> None:
        """This instance took the vehicle over: reconcile its in-flight mission as after a restart."""
        with session_scope(self._engine) as session:
            pending = [
                (m.id, MissionState(m.state))
                for m in service.in_flight(session=session)
                if m.vehicle_id == vehicle_id
            ]
        for mission_id, state in pending:
            assert mission_id is not None
            self._spawn(
                self._reconcile(mission_id, vehicle_id, state), name=f"mission:{mission_id}:reconcile"
            )

    async def release(self, vehicle_id: int) -> None:
        """This instance lost the vehicle: stop tracking its mission (its new owner reconciles it)."""
        track = self._tracks.pop(vehicle_id, None)
        if track is not None:
            driver = self._drivers.pop(track.mission_id, None)
            if driver is not None and not driver.done():
                driver.cancel()
                await asyncio.gather(driver, return_exceptions=True)

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
                    fence=geofence_from_json(mission.geofence) if mission.geofence else None,
                )
        elif track is not None and track.mission_id == mission.id:
            del self._tracks[mission.vehicle_id]

    # -- operator actions ----------------------------------------------------------------------------------

    def create(self, *, data: MissionCreate, asker: Asker) -> Mission:
        """A draft mission; its plan is judged now so a plan that cannot be built is refused at once."""
        verdict = self._judge_plan(data.vehicle_id, data.plan, asker=asker)
        preview = self._preview(verdict)
        with session_scope(self._engine) as session:
            mission = service.create(
                session=session,
                name=data.name,
                vehicle_id=data.vehicle_id,
                plan=data.plan.model_dump(),
                actor=asker.name,
            )
            mission.path = preview.path
            mission.metrics = preview.metrics
            mission.violations = [v.model_dump() for v in preview.violations]
            session.add(mission)
            session.flush()
            assert mission.id is not None
            audit.record(
                session=session,
                actor=asker.name,
                action="mission.create",
                target=f"mission:{mission.id}",
                details={"name": data.name, "vehicle_id": data.vehicle_id, "kind": data.plan.kind},
            )
        return mission

    def validate(self, *, mission_id: int, asker: Asker) -> Mission:
        """Run the safety gate; on success the mission is validated with the items and geofence to fly."""
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
            vehicle_id, plan = mission.vehicle_id, mission.plan
            state = MissionState(mission.state)
        if state not in (S.DRAFT, S.VALIDATED):
            raise InvalidTransition(
                f"mission {mission_id} is {state.value}; validate is only possible from draft or validated",
                code="missions.mission_validate_only_possible",
                params={"mission_id": mission_id, "value": state.value},
            )
        verdict = self._judge_plan(
            vehicle_id, PlanSpec.model_validate(plan), asker=asker, mission_id=mission_id
        )
        preview = self._preview(verdict)
        if not verdict.ok:
            with session_scope(self._engine) as session:
                mission = service.get(session=session, mission_id=mission_id)
                mission.violations = [v.model_dump() for v in preview.violations]
                mission.path, mission.metrics = preview.path, preview.metrics
                session.add(mission)
                audit.record(
                    session=session,
                    actor=asker.name,
                    action="mission.validate.refused",
                    target=f"mission:{mission_id}",
                    details=verdict.details(),
                )
            verdict.raise_if_refused()
        return self._apply(
            mission_id,
            "validate",
            actor=asker.name,
            reason="safety gate passed",
            changes={
                "items": preview.items,
                "geofence": preview.geofence,
                "path": preview.path,
                "metrics": preview.metrics,
                "violations": [],
            },
            audit_action="mission.validate",
            audit_details={"items": len(preview.items), "gate": verdict.details()},
        )

    def _judge_plan(
        self,
        vehicle_id: int,
        plan: PlanSpec,
        *,
        asker: Asker,
        mission_id: int | None = None,
        planning: bool = True,
    ) -> Verdict:
        """The gate on a mission's plan, flown from the vehicle's home over the airspace of its flight.

        Ahead of the flight (``planning``) the plan itself is judged; at launch everything is.
        """
        return self._executor.judge(
            GateRequest(
                vehicle_id=vehicle_id,
                action=Action.LAUNCH,
                asker=asker,
                plan=PlanRequest.model_validate(plan.model_dump()),
                mission_id=mission_id,
                planning=planning,
            )
        )

    @staticmethod
    def _preview(verdict: Verdict) -> PlanPreview:
        assert verdict.compiled is not None
        return to_preview(
            verdict.compiled,
            refusals=list(verdict.refusals),
            flight_time_s=verdict.flight_s,
            battery=None,
            reserve_pct=0.0,
        )

    async def launch(self, *, mission_id: int, asker: Asker) -> Mission:
        """Judge again against the airspace, battery and control of now, commit, then upload and start."""
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
            vehicle_id, plan, state = mission.vehicle_id, mission.plan, MissionState(mission.state)
        if state != S.VALIDATED:
            if state in (S.UPLOADING, S.READY, S.ACTIVE) and mission_id in self._drivers:
                return await self._await_driver(mission_id, self._drivers[mission_id])
            raise InvalidTransition(
                f"mission {mission_id} is {state.value}; launch is only possible from validated",
                code="missions.mission_launch_only_possible",
                params={"mission_id": mission_id, "value": state.value},
            )
        verdict = await asyncio.to_thread(
            self._judge_plan,
            vehicle_id,
            PlanSpec.model_validate(plan),
            asker=asker,
            mission_id=mission_id,
            planning=False,
        )
        if not verdict.ok:
            self._executor.refuse(verdict, audit_action="mission.launch.refused")
        self._fleet.link(vehicle_id)  # refuse now if the vehicle is not connected
        preview = self._preview(verdict)

        def _still_free(session: Any, mission: Mission) -> None:
            # The gate again inside the launch's transaction: control, incidents and other missions.
            again = judge(
                session=session,
                request=GateRequest(
                    vehicle_id=vehicle_id, action=Action.LAUNCH, asker=asker, mission_id=mission_id
                ),
                vehicle=self._executor.view(vehicle_id),
                config=self._executor.gate,
            )
            again.raise_if_refused()

        self._apply(
            mission_id,
            "launch",
            actor=asker.name,
            reason="launch requested",
            expect_from=S.VALIDATED,
            changes={
                "items": preview.items,
                "geofence": preview.geofence,
                "path": preview.path,
                "metrics": preview.metrics,
            },
            audit_action="mission.launch",
            audit_details={"gate": verdict.details()},
            check=_still_free,
        )
        return await self._await_driver(mission_id, self._drive(mission_id, actor=asker.name))

    async def _await_driver(self, mission_id: int, task: asyncio.Task[Mission]) -> Mission:
        """The launch's outcome; a launch stopped by an abort is an InvalidTransition, not a cancellation."""
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.cancelled() and (me is None or not me.cancelling()):
                raise InvalidTransition(
                    f"mission {mission_id} was aborted during its launch",
                    code="missions.mission_was_aborted_during",
                    params={"mission_id": mission_id},
                ) from None
            raise

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
        """uploading -> ready -> active; safe to run again after a crash at any point.

        PX4 refuses MISSION for a moment right after an upload, and disarms a vehicle that was armed but
        did not take off within a few seconds (COM_DISARM_PRFLT, 10 s of its own time: 2.5 s at 4x). So the
        refusal is waited out first, while the vehicle is disarmed and safe (the link retries until the
        mode reads MISSION); then it is armed in MISSION, which PX4 answers by taking off into the mission.
        Only once telemetry shows it in the air is the mission active; a vehicle that never takes off is
        disarmed and the launch ends as a failed start (back to validated).
        """
        with session_scope(self._engine) as session:
            mission = service.get(session=session, mission_id=mission_id)
        items = items_from_json(mission.items or [])
        fence = geofence_from_json(mission.geofence or {"shapes": []})
        vehicle_id = mission.vehicle_id
        refs = cmd.Refs(mission_id=mission_id)
        if MissionState(mission.state) == S.UPLOADING:
            try:
                link = await self._fleet.wait_link(vehicle_id, timeout_s=self._cfg.reconnect_wait_s)
                await self._commander.send(vehicle_id, cmd.UploadGeofence(fence), actor=actor, refs=refs)
                if not same_mission(items, await link.download_mission()):
                    await self._commander.send(vehicle_id, cmd.UploadMission(items), actor=actor, refs=refs)
                    if not same_mission(items, await link.download_mission()):
                        raise LinkError(
                            f"vehicle {vehicle_id}: the mission read back differs from the one uploaded",
                            code="missions.vehicle_mission_read_back",
                            params={"vehicle_id": vehicle_id},
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
                if not (snap is not None and snap.in_air and snap.mode == FlightMode.MISSION):
                    # Disarmed and safe: wait out PX4's refusal right after the upload here (the link
                    # retries until the mode reads MISSION), then arm without leaving MISSION: PX4 takes off
                    # into the mission at once. Arming first (or arming through HOLD and switching back)
                    # left PX4 armed on the ground, refused MISSION again, until its preflight auto-disarm.
                    self._require_state(mission_id, S.READY, before="starting the mission")
                    await self._commander.send(vehicle_id, cmd.StartMission(), actor=actor, refs=refs)
                    await self._arm_into_mission(link, vehicle_id, mission_id, actor=actor, refs=refs)
                    await self._wait_airborne(vehicle_id, mission_id)
            except (LinkError, VehicleUnavailable) as err:
                snap = self._fleet.latest(vehicle_id)
                airborne = snap is not None and snap.in_air
                if snap is not None and snap.armed and not airborne:
                    # Never left the ground: it must not wait armed on its dock.
                    with contextlib.suppress(SkywardenError):
                        await self._commander.send(vehicle_id, cmd.Disarm(), actor=SYSTEM, refs=refs)
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
                mission_id,
                "start",
                actor=actor,
                reason="vehicle in the air flying the mission",
                expect_from=S.READY,
            )
        return mission

    async def _arm_into_mission(
        self, link: Any, vehicle_id: int, mission_id: int, *, actor: str, refs: cmd.Refs
    ) -> None:
        """Arm in MISSION. Until PX4 has accepted the new mission it refuses to arm in MISSION and stays
        disarmed ("Resolve system health failures first", TEMPORARILY_REJECTED), so the arm is asked again
        until it is taken or ``arm_retry_s`` has passed. Every attempt is audited."""
        deadline = time.monotonic() + self._cfg.arm_retry_s
        while True:
            snap = link.latest
            if snap is not None and snap.armed:
                return
            self._require_state(mission_id, S.READY, before="arming")
            if link.mode is not FlightMode.MISSION:
                await self._commander.send(vehicle_id, cmd.StartMission(), actor=actor, refs=refs)
            snap = await self._executor.charge_known(vehicle_id)
            check_charge_at_arming(
                vehicle_id=vehicle_id,
                charge_pct=None if snap is None else snap.battery_pct,
                config=self._executor.gate,
            )
            try:
                await self._commander.send(vehicle_id, cmd.Arm(keep_mode=True), actor=actor, refs=refs)
                return
            except LinkError as err:
                refused = "rejected" in str(err) or "denied" in str(err)
                if not refused or time.monotonic() > deadline:
                    raise
                log.info("mission %s: %s; asking again", mission_id, err)
            await asyncio.sleep(0.5)

    async def _wait_airborne(self, vehicle_id: int, mission_id: int) -> None:
        """Until telemetry shows the vehicle in the air; LinkError when it did not take off in time."""
        deadline = time.monotonic() + self._cfg.takeoff_timeout_s
        while True:
            snap = self._fleet.latest(vehicle_id)
            if snap is not None and snap.link_up and snap.in_air:
                return
            if time.monotonic() > deadline:
                armed = snap is not None and snap.armed
                raise LinkError(
                    f"vehicle {vehicle_id} did not take off within {self._cfg.takeoff_timeout_s:.0f} s of"
                    f" being armed in mission mode ({'still armed' if armed else 'disarmed again'})",
                    vehicle_id=vehicle_id,
                    action="take-off",
                    code="missions.vehicle_did_take_off",
                    params={
                        "vehicle_id": vehicle_id,
                        "takeoff_timeout_s": f"{self._cfg.takeoff_timeout_s:.0f}",
                        "v": "still armed" if armed else "disarmed again",
                    },
                )
            self._require_state(mission_id, S.READY, before="waiting for the take-off")
            await asyncio.sleep(0.05)

    def _require_state(self, mission_id: int, state: MissionState, *, before: str) -> None:
        """InvalidTransition unless the mission is still ``state`` (an abort may have come in meanwhile)."""
        with session_scope(self._engine) as session:
            now = MissionState(service.get(session=session, mission_id=mission_id).state)
        if now != state:
            raise InvalidTransition(
                f"mission {mission_id} is {now.value}; not {before}",
                code="missions.mission",
                params={"mission_id": mission_id, "value": now.value, "before": before},
            )

    async def pause(self, *, mission_id: int, asker: Asker) -> Mission:
        """Hold the vehicle where it is; the mission can be resumed."""
        mission = self._apply(
            mission_id,
            "pause",
            actor=asker.name,
            reason="paused by operator",
            audit_action="mission.pause",
            check=self._authority(asker),
        )
        try:
            await self._commander.send(
                mission.vehicle_id, cmd.PauseMission(), actor=asker.name, refs=cmd.Refs(mission_id=mission_id)
            )
        except (LinkError, VehicleUnavailable) as err:
            self._apply(
                mission_id, "resume", actor=SYSTEM, reason=f"pause failed: {err}", expect_from=S.PAUSED
            )
            raise
        return mission

    async def resume(self, *, mission_id: int, asker: Asker) -> Mission:
        """Continue a paused mission from the item it was flying, once the rest passes the safety gate."""
        with session_scope(self._engine) as session:
            row = service.get(session=session, mission_id=mission_id)
            vehicle_id, state, raw_items = row.vehicle_id, MissionState(row.state), list(row.items or [])
        if state == S.PAUSED:
            verdict = await asyncio.to_thread(self._judge_rest, vehicle_id, raw_items, asker, mission_id)
            if not verdict.ok:
                self._executor.refuse(verdict, audit_action="mission.resume.refused")
        mission = self._apply(
            mission_id,
            "resume",
            actor=asker.name,
            reason="resumed by operator",
            audit_action="mission.resume",
            check=self._authority(asker),
        )
        try:
            # The mission takes the vehicle back from whatever flew it meanwhile (a pilot's goto, a hold).
            await self._executor.end_open(
                vehicle_id, state=FlightState.SUPERSEDED, outcome=f"mission {mission_id} resumed"
            )
            await self._commander.send(
                vehicle_id, cmd.StartMission(), actor=asker.name, refs=cmd.Refs(mission_id=mission_id)
            )
        except (LinkError, VehicleUnavailable) as err:
            self._apply(
                mission_id, "pause", actor=SYSTEM, reason=f"resume failed: {err}", expect_from=S.ACTIVE
            )
            raise
        return mission

    def _judge_rest(self, vehicle_id: int, raw_items: list[Any], asker: Asker, mission_id: int) -> Verdict:
        """The gate on the rest of a mission, flown from where the vehicle is, with the charge of now."""
        snap = self._fleet.latest(vehicle_id)
        current = snap.mission.current if snap is not None else 0
        items = items_from_json(raw_items)
        rest = items[max(0, current) :]
        points = tuple(
            PathPoint(i.lat, i.lon, i.alt_m, loiter_s=i.seconds if isinstance(i, LoiterTime) else 0.0)
            for i in rest
            if isinstance(i, Waypoint | LoiterTime)
        )
        returns_home = not rest or not isinstance(rest[-1], Land)
        return self._executor.judge(
            GateRequest(
                vehicle_id=vehicle_id,
                action=Action.RESUME,
                asker=asker,
                path=FlightPath(points=points, returns_home=returns_home),
                mission_id=mission_id,
            )
        )

    async def send_home(self, vehicle_id: int, *, asker: Asker, mission_id: int | None = None) -> None:
        """Bring the vehicle home along a routed path: a persisted return flight of the executor."""
        await self._executor.send_home(
            vehicle_id,
            asker=asker,
            reason="mission return" if mission_id else "return",
            mission_id=mission_id,
        )

    async def return_home(self, *, mission_id: int, asker: Asker) -> Mission:
        """Send the vehicle home; the mission ends when it has landed."""
        mission = self._apply(
            mission_id,
            "return",
            actor=asker.name,
            reason="return requested by operator",
            audit_action="mission.return",
            check=self._authority(asker),
        )
        await self.send_home(mission.vehicle_id, asker=asker, mission_id=mission_id)
        return mission

    async def abort(self, *, mission_id: int, asker: Asker) -> Mission:
        """End the mission now; a vehicle in the air is sent home."""
        with session_scope(self._engine) as session:
            self._authority(asker)(session, service.get(session=session, mission_id=mission_id))
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
            actor=asker.name,
            reason="aborted by operator",
            audit_action="mission.abort",
            check=self._authority(asker),
        )
        if before in IN_FLIGHT:
            snap = self._fleet.latest(mission.vehicle_id)
            if before in (S.UPLOADING, S.READY) and snap is not None and snap.link_up and not snap.in_air:
                # Still on the ground: an arm the cut launch had already sent may land; disarm.
                with contextlib.suppress(LinkError, VehicleUnavailable):
                    await self._commander.send(
                        mission.vehicle_id,
                        cmd.Disarm(),
                        actor=asker.name,
                        refs=cmd.Refs(mission_id=mission_id),
                    )
            elif snap is None or snap.in_air or snap.armed:
                await self.send_home(mission.vehicle_id, asker=asker, mission_id=mission_id)
        return mission

    def _authority(self, asker: Asker) -> Callable[[Any, Mission], None]:
        """The gate's authority rule for operating a mission (no pilot but the asker holds the vehicle)."""

        def check(session: Any, mission: Mission) -> None:
            judge(
                session=session,
                request=GateRequest(
                    vehicle_id=mission.vehicle_id, action=Action.HOME, asker=asker, mission_id=mission.id
                ),
                vehicle=self._executor.view(mission.vehicle_id),
                config=self._executor.gate,
            ).raise_if_refused()

        return check

    def supervising(self, vehicle_id: int) -> str | None:
        """``mission:ID`` when a mission of the vehicle is tracked (and, after a restart, verified)."""
        track = self._tracks.get(vehicle_id)
        if track is None or not track.verified:
            return None
        return f"mission:{track.mission_id}"

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
        # On the way home the progress is frozen where the return began: PX4 reports N of N once it has
        # landed after an RTL, whatever item it was at, and a mission called home at item 2 of 11 must not
        # end "completed".
        frozen = track.state == S.RETURNING
        if knows_ours and prog.current != track.progress and not frozen:
            track.progress = prog.current
            self._save_progress(track)
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
            if knows_ours and not frozen
            else (track.progress >= track.total - 1)
        )
        landed = not snap.in_air and not snap.armed
        returning_mode = snap.mode in (FlightMode.RETURN, FlightMode.LAND)
        # A mode change seen while ACTIVE and no flight of the executor drives the vehicle is the vehicle's
        # own (a failsafe) or from outside the service (an RC pilot, a second ground station). A pilot's or
        # dispatch's flight takes the vehicle first and tells us after (note_manual_command).
        previous, track.mode = track.mode, snap.mode
        changed = previous is not None and previous != snap.mode and snap.in_air
        fence_note = self._mode_changed(vehicle_id, track, previous, snap) if changed else None
        because = f" {fence_note}" if fence_note else ""
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
                why = (
                    "mission items done" if items_done else f"vehicle switched to {snap.mode.value}{because}"
                )
                track.vehicle_returned = not items_done
                decision = ("return", f"{why}; returning home")
            elif (
                changed
                and not self._flown_by_service(vehicle_id)
                and previous is FlightMode.MISSION
                and snap.mode not in (FlightMode.MISSION, FlightMode.UNKNOWN)
                and not items_done
            ):
                decision = (
                    "pause",
                    f"vehicle switched from mission to {snap.mode.value} on its own{because}"
                    f" at item {track.progress + 1} of {track.total}; resume or return it",
                )
        elif track.state == S.PAUSED:
            if returning_mode and snap.in_air:
                track.vehicle_returned = True
                decision = ("return", f"vehicle switched to {snap.mode.value}{because}; returning home")
            elif landed and settled:
                decision = ("fail", "vehicle landed while the mission was paused")
        elif track.state == S.RETURNING and landed:
            if items_done:
                decision = ("complete", "vehicle landed")
            else:
                # Home early: an operator's return ends it aborted, the vehicle's own (a failsafe) failed.
                decision = (
                    "fail" if track.vehicle_returned else "abort",
                    f"landed after returning home at item {track.progress + 1} of {track.total};"
                    " the rest was not flown",
                )
        if decision is not None:
            action, reason = decision
            try:
                self._apply(track.mission_id, action, actor=VEHICLE, reason=reason, expect_from=track.state)
            except InvalidTransition as err:
                log.info("mission %s: %s", track.mission_id, err)
                self._tracks.pop(vehicle_id, None)

    def _flown_by_service(self, vehicle_id: int) -> bool:
        """Whether a flight of the executor commands the vehicle now (its mode changes are the service's)."""
        return (self._executor.supervisor_of(vehicle_id) or "").startswith("flight:")

    def _mode_changed(
        self, vehicle_id: int, track: _Track, previous: FlightMode | None, snap: TelemetrySnapshot
    ) -> str | None:
        """Publish a mode change of a vehicle on a mission; a stop or return at its geofence is audited as
        the vehicle's breach action (PX4 says no more than "Failsafe activated"). Returns that finding."""
        note = None
        if snap.mode in (FlightMode.HOLD, FlightMode.RETURN, FlightMode.LAND):
            note = breach_note(track.fence, lat=snap.lat, lon=snap.lon)
        data = {"from": previous.value if previous else None, "to": snap.mode.value, "geofence": note}
        self._hub.emit(
            Event(kind="vehicle.mode", vehicle_id=vehicle_id, mission_id=track.mission_id, data=data)
        )
        if note is None:
            return None
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=VEHICLE,
                action="vehicle.geofence_breach",
                target=f"mission:{track.mission_id}",
                details={
                    "vehicle_id": vehicle_id,
                    "mode": snap.mode.value,
                    "where": note,
                    "lat": snap.lat,
                    "lon": snap.lon,
                    "alt_rel_m": snap.alt_rel_m,
                },
            )
        self._hub.emit(
            Event(
                kind="vehicle.failsafe",
                vehicle_id=vehicle_id,
                mission_id=track.mission_id,
                data={"cause": "geofence", "mode": snap.mode.value, "where": note},
            )
        )
        log.warning(
            "vehicle %s (mission %s): %s, now %s", vehicle_id, track.mission_id, note, snap.mode.value
        )
        return note

    def _save_progress(self, track: _Track) -> None:
        """Write the track's progress off the event loop; one write in flight, always the newest value."""
        if track.progress_saving:
            return
        track.progress_saving = True

        async def save() -> None:
            written = None
            try:
                while written != (track.progress, track.total):
                    written = (track.progress, track.total)
                    await asyncio.to_thread(self._write_progress, track.mission_id, *written)
            finally:
                track.progress_saving = False

        self._spawn(save(), name=f"mission:{track.mission_id}:progress")

    def _write_progress(self, mission_id: int, current: int, total: int) -> None:
        with session_scope(self._engine) as session:
            service.set_progress(session=session, mission_id=mission_id, current=current, total=total)

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
        if state == S.RETURNING:
            # The way home is a flight of the executor (recovered on its own); the mission waits to land.
            self._audit_tracked(mission, vehicle_id, items)
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
        self._audit_tracked(mission, vehicle_id, items)

    def _audit_tracked(self, mission: Mission, vehicle_id: int, items: list[MissionItem]) -> None:
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=RECOVERY,
                action="mission.recovery.track",
                target=f"mission:{mission.id}",
                details={"state": mission.state, "vehicle_id": vehicle_id, "items": len(items)},
            )
        self._hub.emit(
            Event(
                kind="mission.recovered",
                vehicle_id=vehicle_id,
                mission_id=mission.id,
                data={"state": mission.state, "items": len(items)},
            )
        )
