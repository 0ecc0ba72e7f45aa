"""The patrol scheduler: launches each cron slot once, on time, onto a fit vehicle, or records why not.

Exactly-once across restarts comes from the database: a slot is launched only by whoever inserted its
unique (patrol_id, scheduled_for) run row, and that row is committed before the launch starts.

Several instances: the scheduler runs on the leader and chooses among the whole fleet; a run on a vehicle
another instance owns is handed to that instance (``HANDOFF_REASON`` on the claimed row), whose
``PatrolHandoff`` (mission/patrols/handoff.py) takes it once and launches it, as a mission is flown by its
vehicle's owner.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from shapely.geometry import shape
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from mission.audit.clock import as_utc
from mission.db import session_scope
from mission.dispatch.energy import climb, cruise
from mission.dispatch.ranking import Activity, VehicleState
from mission.errors import SkywardenError
from mission.fleet.models import Vehicle
from mission.missions.models import Mission
from mission.missions.states import MissionState
from mission.patrols.clock import Clock, WallClock
from mission.patrols.models import Patrol, PatrolRead, PatrolRun, RunStatus, parse_hhmm

log = logging.getLogger(__name__)

# The reason on a claimed run whose vehicle another instance owns: that instance launches it.
HANDOFF_REASON = "handed to the instance that owns the vehicle"


def due_slots(patrol: PatrolRead, *, after: datetime, until: datetime) -> list[datetime]:
    """Cron times of ``patrol`` in (after, until], as aware UTC, evaluated in the patrol's time zone."""
    tz = ZoneInfo(patrol.timezone)
    it = croniter(patrol.cron, as_utc(after).astimezone(tz))
    out: list[datetime] = []
    end = as_utc(until)
    while True:
        slot = as_utc(it.get_next(datetime))
        if slot > end:
            return out
        out.append(slot)
        if len(out) > 10_000:
            raise ValueError(f"patrol {patrol.name!r}: cron {patrol.cron!r} fires too often")


def next_slot(patrol: PatrolRead, *, after: datetime) -> datetime:
    """The first cron time strictly after ``after`` (aware UTC)."""
    tz = ZoneInfo(patrol.timezone)
    return as_utc(croniter(patrol.cron, as_utc(after).astimezone(tz)).get_next(datetime))


def in_window(patrol: PatrolRead, at: datetime) -> bool:
    """Whether ``at`` is in the patrol's local time window (which may wrap midnight); no window = always."""
    if patrol.window_start is None or patrol.window_end is None:
        return True
    local = as_utc(at).astimezone(ZoneInfo(patrol.timezone)).time().replace(tzinfo=None)
    start, end = parse_hhmm(patrol.window_start), parse_hhmm(patrol.window_end)
    if start <= end:
        return start <= local < end
    return local >= start or local < end


@dataclass(frozen=True, slots=True)
class VehicleChoice:
    """A fit vehicle, or None with the reason no vehicle fits."""

    vehicle_id: int | None
    reason: str


def patrol_energy_wh(state: VehicleState, patrol: PatrolRead, *, alt_m: float = 60.0) -> float:
    """Energy to fly the patrol for its estimated duration and get to and from it, plus landing."""
    perf = state.perf
    geom = shape(patrol.plan["geometry"])
    c = geom.centroid
    # A rough transit: straight to the patrol's centroid and back, at cruise.
    dx = (c.x - state.home_lon) * 111_320.0 * math.cos(math.radians(state.home_lat))
    dy = (c.y - state.home_lat) * 111_320.0
    transit = cruise(((0.0, 0.0), (dx, dy), (0.0, 0.0)), perf)
    return (
        perf.cruise_power_w * patrol.estimated_duration_s / 3600.0
        + transit.energy_wh
        + climb(alt_m, perf).energy_wh
        + climb(-alt_m, perf).energy_wh
    )


def choose_patrol_vehicle(
    states: Iterable[VehicleState], patrol: PatrolRead, *, only: frozenset[int] | None = None
) -> VehicleChoice:
    """The docked vehicle with the needed capabilities and enough battery, nearest to the patrol area.

    ``only``: the vehicles the patrol may fly (its own vehicle, or those at its dock); None = any.
    """
    required = frozenset(patrol.required_capabilities)
    geom = shape(patrol.plan["geometry"])
    refusals: list[str] = []
    fit: list[tuple[float, int]] = []
    if only is not None:
        states = [s for s in states if s.vehicle_id in only]
        if not states:
            which = (
                f"vehicle {patrol.vehicle_id}" if patrol.vehicle_id is not None else f"dock {patrol.dock!r}"
            )
            return VehicleChoice(None, f"no fit vehicle: {which} has no vehicle in the fleet")
    for s in states:
        if not s.link_up:
            refusals.append(f"{s.name}: link down")
            continue
        if s.activity is not Activity.DOCKED:
            refusals.append(f"{s.name}: {s.activity.value}")
            continue
        missing = required - s.capabilities
        if missing:
            refusals.append(f"{s.name}: lacks {', '.join(sorted(missing))}")
            continue
        need = patrol_energy_wh(s, patrol) + s.perf.reserve_wh
        have = s.battery_pct / 100.0 * s.perf.battery_wh
        if have < need:
            refusals.append(f"{s.name}: battery {have:.0f} Wh < {need:.0f} Wh needed")
            continue
        c = geom.centroid
        fit.append((math.hypot(c.x - s.home_lon, c.y - s.home_lat), s.vehicle_id))
    if fit:
        fit.sort()
        return VehicleChoice(fit[0][1], "")
    return VehicleChoice(None, "no fit vehicle: " + ("; ".join(refusals) if refusals else "fleet is empty"))


def allowed_vehicles(engine: Engine, patrol: PatrolRead) -> frozenset[int] | None:
    """The vehicles a patrol may fly: its own, those at its dock, or None for any vehicle."""
    if patrol.vehicle_id is not None:
        return frozenset({patrol.vehicle_id})
    if patrol.dock is None:
        return None
    with Session(engine) as session:
        ids = session.exec(select(Vehicle.id).where(col(Vehicle.dock) == patrol.dock)).all()
    return frozenset(i for i in ids if i is not None)


class PatrolLauncher:
    """What the scheduler needs to fly a patrol: fleet states and a launch (the runtime provides both)."""

    def vehicle_states(self) -> Sequence[VehicleState]:  # pragma: no cover - protocol
        raise NotImplementedError

    def owned_here(self, vehicle_id: int) -> bool:
        """Whether this instance flies the vehicle (always, with one instance)."""
        return True

    async def launch(self, *, patrol: PatrolRead, run_id: int, vehicle_id: int) -> int | None:
        """Start the patrol on the vehicle; returns the mission id; raises a SkywardenError on failure."""
        raise NotImplementedError  # pragma: no cover - protocol


def claim(*, engine: Engine, patrol_id: int, scheduled_for: datetime, at: datetime) -> int | None:
    """Insert and commit the run row for a slot; None when someone already has (never launch then)."""
    try:
        with session_scope(engine) as session:
            run = PatrolRun(patrol_id=patrol_id, scheduled_for=as_utc(scheduled_for), claimed_at=as_utc(at))
            session.add(run)
            session.flush()
            assert run.id is not None
            return run.id
    except IntegrityError:
        return None


def hand_off(*, engine: Engine, run_id: int, vehicle_id: int) -> None:
    """Leave a claimed run to the instance that owns its vehicle (it launches it, ``PatrolHandoff``)."""
    with session_scope(engine) as session:
        session.exec(
            update(PatrolRun)
            .where(col(PatrolRun.id) == run_id, col(PatrolRun.status) == RunStatus.CLAIMED.value)
            .values(vehicle_id=vehicle_id, reason=HANDOFF_REASON)
        )


def take_handed_off(*, engine: Engine, run_id: int, taker: str) -> bool:
    """Take a handed-off run to launch it; False when another instance took it first (then never launch)."""
    with session_scope(engine) as session:
        result = session.exec(
            update(PatrolRun)
            .where(
                col(PatrolRun.id) == run_id,
                col(PatrolRun.status) == RunStatus.CLAIMED.value,
                col(PatrolRun.reason) == HANDOFF_REASON,
            )
            .values(reason=f"launching on {taker}"[:500])
        )
        return bool(result.rowcount == 1)


def fail_stale_handoffs(*, engine: Engine, older_than: datetime, at: datetime) -> int:
    """Fail runs handed off before ``older_than`` that no owner took (their vehicle's owner was down)."""
    with session_scope(engine) as session:
        result = session.exec(
            update(PatrolRun)
            .where(
                col(PatrolRun.status) == RunStatus.CLAIMED.value,
                col(PatrolRun.reason) == HANDOFF_REASON,
                col(PatrolRun.claimed_at) < as_utc(older_than),
            )
            .values(
                status=RunStatus.FAILED.value,
                reason="no instance owning its vehicle launched it in time",
                finished_at=as_utc(at),
            )
        )
        return int(result.rowcount or 0)


# A launch is bounded by the supervisor's own timeouts (upload, start, arm: well under a minute); a claim this
# old whose run never left CLAIMED was left by an instance that stopped while launching it.
ORPHAN_AFTER_S = 120.0
# Missions in these states never reached the vehicle: the launch did not happen.
_NOT_LAUNCHED = (MissionState.DRAFT.value, MissionState.VALIDATED.value)


def settle_orphaned_claims(*, engine: Engine, older_than: datetime, at: datetime) -> list[int]:
    """Settle runs claimed (or taken from a hand-off) before ``older_than`` that are still CLAIMED: the
    instance launching them stopped midway. A run whose mission went out is LAUNCHED (the mission itself is
    taken over with its vehicle); any other is FAILED with the reason. Pending hand-offs are left to
    ``fail_stale_handoffs``. Returns the settled run ids."""
    settled: list[int] = []
    with session_scope(engine) as session:
        rows = session.exec(
            select(PatrolRun).where(
                col(PatrolRun.status) == RunStatus.CLAIMED.value,
                col(PatrolRun.reason) != HANDOFF_REASON,
                col(PatrolRun.claimed_at) < as_utc(older_than),
            )
        ).all()
        for run in rows:
            mission = session.get(Mission, run.mission_id) if run.mission_id is not None else None
            if mission is not None and mission.state not in _NOT_LAUNCHED:
                run.status = RunStatus.LAUNCHED.value
                run.reason = ""
                run.launched_at = as_utc(mission.started_at or at)
            else:
                run.status = RunStatus.FAILED.value
                left = f"; mission {mission.id} was left {mission.state}" if mission is not None else ""
                run.reason = f"the instance launching it stopped before the launch{left}"[:500]
                run.finished_at = as_utc(at)
            session.add(run)
            assert run.id is not None
            settled.append(run.id)
    return settled


async def launch_run(
    *, launcher: PatrolLauncher, patrol: PatrolRead, run_id: int, vehicle_id: int
) -> tuple[RunStatus, str, int | None]:
    """Launch a claimed run on ``vehicle_id``: (LAUNCHED, "", mission id) or (FAILED, why, None)."""
    try:
        mission_id = await launcher.launch(patrol=patrol, run_id=run_id, vehicle_id=vehicle_id)
    except (SkywardenError, ValueError) as exc:
        return RunStatus.FAILED, str(exc), None
    except Exception as exc:
        log.exception("patrol run %s: unexpected error while launching", run_id)
        return RunStatus.FAILED, f"unexpected error: {type(exc).__name__}: {exc}", None
    return RunStatus.LAUNCHED, "", mission_id


def finish_run(
    *,
    engine: Engine,
    run_id: int,
    status: RunStatus,
    reason: str = "",
    vehicle_id: int | None = None,
    mission_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Record what became of a claimed slot."""
    with session_scope(engine) as session:
        run = session.get(PatrolRun, run_id)
        if run is None:
            return
        run.status = status.value
        run.reason = reason[:500]
        if vehicle_id is not None:
            run.vehicle_id = vehicle_id
        if mission_id is not None:
            run.mission_id = mission_id
        if status is RunStatus.LAUNCHED:
            run.launched_at = at
        elif status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.PREEMPTED):
            run.finished_at = at
        session.add(run)


class PatrolScheduler:
    """Fires every enabled patrol's cron slots on the injected clock; one task, ``patrols:scheduler``."""

    def __init__(
        self,
        *,
        engine: Engine,
        launcher: PatrolLauncher,
        clock: Clock | None = None,
        poll_s: float = 30.0,
        catch_up_s: float = 300.0,
        on_run: Callable[[int, RunStatus, str], None] | None = None,
    ) -> None:
        self._engine = engine
        self._launcher = launcher
        self.clock: Clock = clock or WallClock()
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._catch_up = timedelta(seconds=catch_up_s)
        # Slots from (start - catch_up) on are due: restart launches missed slots; the claim keeps each once.
        self._cursor: datetime = self.clock.now() - self._catch_up
        self._task: asyncio.Task[None] | None = None
        self._on_run = on_run

    async def __aenter__(self) -> PatrolScheduler:
        self._task = asyncio.create_task(self._loop(), name="patrols:scheduler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Launches run inside the loop's tick (the claim is settled before the next slot): one task to stop.
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _patrols(self) -> list[PatrolRead]:
        with Session(self._engine) as session:
            rows = session.exec(select(Patrol).where(col(Patrol.enabled)).order_by(col(Patrol.id))).all()
            return [PatrolRead.model_validate(r) for r in rows]

    async def tick(self) -> list[int]:
        """Claim and start every slot due since the last tick; returns the run ids this tick claimed.

        One patrol failing (a bad stored plan or cron) is logged and never keeps the others' slots from
        firing; the cursor moves on only once every patrol has been looked at. Its database work runs in
        threads: a write waiting on the SQLite lock on the event loop deadlocked with a request whose commit
        needed the loop, freezing the service for the 30 s busy timeout.
        """
        now = self.clock.now()
        after = self._cursor
        claimed: list[int] = []
        for patrol in await asyncio.to_thread(self._patrols):
            assert patrol.id is not None
            try:
                slots = due_slots(patrol, after=after, until=now)
            except Exception:
                log.exception("patrol %s (%r): cannot compute its slots", patrol.id, patrol.name)
                continue
            for slot in slots:
                run_id = await asyncio.to_thread(
                    claim, engine=self._engine, patrol_id=patrol.id, scheduled_for=slot, at=now
                )
                if run_id is None:
                    continue
                claimed.append(run_id)
                await self._start(patrol, run_id, slot)
        self._cursor = now
        stale = await asyncio.to_thread(
            fail_stale_handoffs, engine=self._engine, older_than=now - self._catch_up, at=now
        )
        if stale:
            log.warning("patrol runs handed to a vehicle's owner were not launched in time: failed")
        orphan_age = timedelta(seconds=max(ORPHAN_AFTER_S, self._catch_up.total_seconds()))
        settled = await asyncio.to_thread(
            settle_orphaned_claims, engine=self._engine, older_than=now - orphan_age, at=now
        )
        for run_id in settled:
            log.warning("patrol run %s: the instance launching it stopped midway; settled", run_id)
        return claimed

    async def _start(self, patrol: PatrolRead, run_id: int, slot: datetime) -> None:
        """Launch a claimed slot; whatever goes wrong is recorded on the run as FAILED with the reason."""
        now = self.clock.now()
        try:
            if not in_window(patrol, slot):
                await self._finish(
                    run_id, RunStatus.SKIPPED, f"{slot.isoformat()} is outside the patrol window", at=now
                )
                return
            only = await asyncio.to_thread(allowed_vehicles, self._engine, patrol)
            choice = choose_patrol_vehicle(self._launcher.vehicle_states(), patrol, only=only)
        except (SkywardenError, ValueError) as exc:
            await self._finish(run_id, RunStatus.FAILED, str(exc), at=self.clock.now())
            return
        except Exception as exc:
            log.exception("patrol run %s: unexpected error while choosing a vehicle", run_id)
            await self._finish(
                run_id,
                RunStatus.FAILED,
                f"unexpected error: {type(exc).__name__}: {exc}",
                at=self.clock.now(),
            )
            return
        if choice.vehicle_id is None:
            await self._finish(run_id, RunStatus.SKIPPED, choice.reason, at=now)
            return
        vehicle_id = choice.vehicle_id
        if not self._launcher.owned_here(vehicle_id):
            await asyncio.to_thread(hand_off, engine=self._engine, run_id=run_id, vehicle_id=vehicle_id)
            log.info("patrol run %s: vehicle %s is another instance's; handed to it", run_id, vehicle_id)
            return
        status, reason, mission_id = await launch_run(
            launcher=self._launcher, patrol=patrol, run_id=run_id, vehicle_id=vehicle_id
        )
        await self._finish(
            run_id, status, reason, vehicle_id=vehicle_id, mission_id=mission_id, at=self.clock.now()
        )

    async def _finish(
        self, run_id: int, status: RunStatus, reason: str, *, at: datetime, **kw: int | None
    ) -> None:
        await asyncio.to_thread(
            finish_run, engine=self._engine, run_id=run_id, status=status, reason=reason, at=at, **kw
        )
        if status is not RunStatus.LAUNCHED:
            log.info("patrol run %s %s: %s", run_id, status.value, reason)
        if self._on_run is not None:
            self._on_run(run_id, status, reason)

    def wake(self) -> None:
        """Re-read the patrols now (one was added or changed)."""
        self._wake.set()

    def _sleep_s(self) -> float:
        now = self.clock.now()
        soonest = now + timedelta(seconds=self._poll_s)
        for p in self._patrols():
            try:
                soonest = min(soonest, next_slot(p, after=now))
            except Exception:
                log.exception("patrol %s (%r): cannot compute its next slot", p.id, p.name)
        return max(0.0, min(self._poll_s, (soonest - now).total_seconds()))

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("patrol scheduler tick failed")
            try:
                sleep_s = self._sleep_s()
            except Exception:
                log.exception("patrol scheduler: cannot compute the next wake-up")
                sleep_s = self._poll_s
            sleeper = asyncio.create_task(self.clock.sleep(sleep_s + 0.001), name="patrols:sleep")
            waker = asyncio.create_task(self._wake.wait(), name="patrols:wake")
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, waker):
                    t.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)
            self._wake.clear()
