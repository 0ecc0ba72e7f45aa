"""The patrol scheduler: on time on an accelerated clock, never twice after a restart, skips with a reason."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import Session, SQLModel, col, select

import mission.fleet.models  # noqa: F401  (registers the vehicles table the runs refer to)
from mission.db import make_engine, session_scope
from mission.dispatch.energy import Performance
from mission.dispatch.ranking import Activity, VehicleState
from mission.errors import LinkError
from mission.patrols.clock import AcceleratedClock
from mission.patrols.models import Patrol, PatrolCreate, PatrolRead, PatrolRun, RunStatus
from mission.patrols.scheduler import (
    PatrolLauncher,
    PatrolScheduler,
    choose_patrol_vehicle,
    claim,
    due_slots,
    in_window,
)
from tests.support.wait import until

AREA = {
    "type": "Polygon",
    "coordinates": [[[109.97, 39.81], [109.99, 39.81], [109.99, 39.83], [109.97, 39.83], [109.97, 39.81]]],
}
START = datetime(2026, 11, 29, 9, 59, 50, tzinfo=UTC)


def state(vid: int, *, battery: float = 95.0, activity: Activity = Activity.DOCKED, caps=()) -> VehicleState:
    return VehicleState(
        vid,
        f"uav{vid}",
        39.82,
        109.98,
        0.0,
        activity,
        battery,
        39.82,
        109.98,
        Performance(),
        frozenset(caps),
    )


class RecordingLauncher(PatrolLauncher):
    """Launches nothing; keeps (run, vehicle, simulated time) of every launch request."""

    def __init__(self, clock, states, *, fail: bool = False) -> None:
        self.clock, self.states, self.fail = clock, states, fail
        self.launches: list[tuple[int, int, datetime]] = []

    def vehicle_states(self):
        return self.states

    async def launch(self, *, patrol, run_id, vehicle_id):
        if self.fail:
            raise LinkError("uav1: takeoff timed out", vehicle_id=vehicle_id, action="takeoff")
        self.launches.append((run_id, vehicle_id, self.clock.now()))
        return None


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'sched.db'}")
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def add_patrol(engine, **kw) -> PatrolRead:
    data = PatrolCreate(
        name=kw.pop("name", "night"),
        plan={"kind": "perimeter", "geometry": AREA},
        cron=kw.pop("cron", "* * * * *"),
        **kw,
    )
    with session_scope(engine) as s:
        row = Patrol(**data.model_dump())
        s.add(row)
        s.flush()
        return PatrolRead.model_validate(row)


def runs(engine) -> list[PatrolRun]:
    with Session(engine) as s:
        return list(s.exec(select(PatrolRun).order_by(col(PatrolRun.id))).all())


async def test_fires_on_time_in_accelerated_time_and_not_twice_after_restart(engine):
    add_patrol(engine)
    clock = AcceleratedClock(START, speed=10.0)  # 10:00:00 comes after 1 wall second
    launcher = RecordingLauncher(clock, [state(1)])
    async with PatrolScheduler(engine=engine, launcher=launcher, clock=clock, catch_up_s=0):
        await asyncio.sleep(1.5)  # 15 simulated s: past the 10:00:00 slot
    assert len(launcher.launches) == 1
    _run_id, vehicle_id, fired_at = launcher.launches[0]
    slot = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert vehicle_id == 1
    assert timedelta(0) <= fired_at - slot < timedelta(seconds=3)  # on time, in simulated seconds
    # A restart: a new scheduler whose catch-up window covers the launched 10:00 slot again.
    clock2 = AcceleratedClock(clock.now(), speed=10.0)
    launcher2 = RecordingLauncher(clock2, [state(1)])
    assert (clock2.now() - slot).total_seconds() < 50
    async with PatrolScheduler(engine=engine, launcher=launcher2, clock=clock2, catch_up_s=50):
        await asyncio.sleep(0.2)
    assert launcher2.launches == []
    rows = runs(engine)
    assert [(r.scheduled_for.replace(tzinfo=UTC), r.status) for r in rows] == [
        (slot, RunStatus.LAUNCHED.value)
    ]
    assert rows[0].vehicle_id == 1


async def test_no_fit_vehicle_is_skipped_with_the_reason(engine):
    add_patrol(engine, required_capabilities=["spotlight"])
    clock = AcceleratedClock(START, speed=60.0)
    launcher = RecordingLauncher(
        clock,
        [
            state(1, caps={"camera"}),
            state(2, battery=8.0, caps={"spotlight"}),
            state(3, activity=Activity.PATROL, caps={"spotlight"}),
        ],
    )
    sched = PatrolScheduler(engine=engine, launcher=launcher, clock=clock, catch_up_s=0)
    await clock.sleep(15)
    claimed = await sched.tick()
    assert len(claimed) == 1 and launcher.launches == []
    (run,) = runs(engine)
    assert run.status == RunStatus.SKIPPED.value
    assert "uav1: lacks spotlight" in run.reason
    assert "uav2: battery" in run.reason
    assert "uav3: patrol" in run.reason


async def test_launch_failure_is_recorded_not_retried(engine):
    add_patrol(engine)
    clock = AcceleratedClock(START, speed=60.0)
    launcher = RecordingLauncher(clock, [state(1)], fail=True)
    sched = PatrolScheduler(engine=engine, launcher=launcher, clock=clock, catch_up_s=0)
    await clock.sleep(15)
    await sched.tick()
    await sched.tick()
    (run,) = runs(engine)
    assert run.status == RunStatus.FAILED.value and "takeoff timed out" in run.reason


async def test_slot_outside_the_window_is_skipped(engine):
    add_patrol(engine, window_start="20:00", window_end="06:00")
    clock = AcceleratedClock(START, speed=60.0)
    launcher = RecordingLauncher(clock, [state(1)])
    sched = PatrolScheduler(engine=engine, launcher=launcher, clock=clock, catch_up_s=0)
    await clock.sleep(15)
    await sched.tick()
    (run,) = runs(engine)
    assert run.status == RunStatus.SKIPPED.value and "outside the patrol window" in run.reason


def test_cron_slots_and_windows_in_the_patrol_time_zone(engine):
    p = add_patrol(
        engine, cron="30 22 * * *", timezone="Asia/Shanghai", window_start="22:00", window_end="02:00"
    )
    slots = due_slots(
        p, after=datetime(2026, 11, 29, 0, 0, tzinfo=UTC), until=datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert slots == [datetime(2026, 11, 29, 14, 30, tzinfo=UTC), datetime(2026, 11, 30, 14, 30, tzinfo=UTC)]
    assert in_window(p, slots[0])
    assert not in_window(p, datetime(2026, 11, 29, 4, 0, tzinfo=UTC))  # 12:00 local


def test_bad_patrol_input_names_the_field():
    with pytest.raises(ValidationError, match="not a valid 5-field cron"):
        PatrolCreate(name="x", plan={"kind": "sweep", "geometry": AREA}, cron="every day")
    with pytest.raises(ValidationError, match="HH:MM"):
        PatrolCreate(
            name="x",
            plan={"kind": "sweep", "geometry": AREA},
            cron="* * * * *",
            window_start="25:00",
            window_end="01:00",
        )
    with pytest.raises(ValidationError, match="timezone 'Mars/Olympus' is unknown"):
        PatrolCreate(
            name="x", plan={"kind": "sweep", "geometry": AREA}, cron="* * * * *", timezone="Mars/Olympus"
        )


def test_choice_prefers_a_charged_capable_docked_vehicle(engine):
    p = add_patrol(engine)
    choice = choose_patrol_vehicle([state(1, battery=10.0), state(2)], p)
    assert choice.vehicle_id == 2


def test_a_slot_can_be_claimed_once(engine):
    p = add_patrol(engine)
    slot = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    first = claim(engine=engine, patrol_id=p.id, scheduled_for=slot, at=slot)
    assert first is not None
    assert claim(engine=engine, patrol_id=p.id, scheduled_for=slot, at=slot) is None


class PickyLauncher(RecordingLauncher):
    """Launches like RecordingLauncher, but a plan error (ValueError) on patrol ``bad``."""

    def __init__(self, clock, states, *, bad: str) -> None:
        super().__init__(clock, states)
        self.bad = bad

    async def launch(self, *, patrol, run_id, vehicle_id):
        if patrol.name == self.bad:
            raise ValueError(f"patrol {patrol.name}: geometry is empty")
        return await super().launch(patrol=patrol, run_id=run_id, vehicle_id=vehicle_id)


def store_raw_patrol(engine, *, name: str, plan: dict) -> None:
    """A patrol row as an older release could store it, with a plan nobody checked."""
    with session_scope(engine) as s:
        s.add(Patrol(name=name, plan=plan, cron="* * * * *"))


async def test_one_bad_patrol_never_stops_the_others(engine):
    store_raw_patrol(engine, name="broken", plan={"kind": "bogus", "geometry": 5})
    add_patrol(engine, name="planless")
    add_patrol(engine, name="good")
    clock = AcceleratedClock(START, speed=60.0)  # 10:00:00 after 1/6 wall s; 10:01 after 1.2 s
    launcher = PickyLauncher(clock, [state(1), state(2), state(3)], bad="planless")
    async with PatrolScheduler(engine=engine, launcher=launcher, clock=clock, catch_up_s=0):
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len([r for r in runs(engine) if r.status != RunStatus.CLAIMED.value]) >= 6:
                break
    by_patrol: dict[int, list[PatrolRun]] = {}
    for r in runs(engine):
        by_patrol.setdefault(r.patrol_id, []).append(r)
    broken, planless, good = (by_patrol.get(i, []) for i in (1, 2, 3))
    # Every patrol's 10:00 and 10:01 slots were handled: the loop survived and the cursor skipped nothing.
    assert len(good) >= 2 and all(r.status == RunStatus.LAUNCHED.value for r in good)
    assert len(broken) >= 2 and all(r.status == RunStatus.FAILED.value for r in broken)
    assert "unexpected error" in broken[0].reason
    assert len(planless) >= 2 and all(r.status == RunStatus.FAILED.value for r in planless)
    assert "geometry is empty" in planless[0].reason


class InstanceLauncher(RecordingLauncher):
    """One instance of several: it flies only the vehicles in ``owned``."""

    def __init__(self, clock, states, owned: set[int]) -> None:
        super().__init__(clock, states)
        self.owned = owned

    def owned_here(self, vehicle_id: int) -> bool:
        return vehicle_id in self.owned


async def test_a_run_on_another_instances_vehicle_is_launched_there_once(engine):
    """The leader's scheduler picks vehicle 2 (another instance's): it hands the run over; only the owner's
    hand-off launches it, once, however many instances look."""
    from mission.patrols.handoff import PatrolHandoff

    add_patrol(engine, vehicle_id=2)
    clock = AcceleratedClock(START, speed=10.0)
    fleet = [state(1), state(2)]
    leader = InstanceLauncher(clock, fleet, owned={1})
    owner = InstanceLauncher(clock, fleet, owned={2})
    scheduler = PatrolScheduler(engine=engine, launcher=leader, clock=clock, catch_up_s=0)
    await asyncio.sleep(1.2)  # past the 10:00:00 slot
    claimed = await scheduler.tick()
    assert len(claimed) == 1 and leader.launches == []
    [run] = runs(engine)
    assert (run.status, run.vehicle_id, run.mission_id) == (RunStatus.CLAIMED.value, 2, None)

    def handoff(launcher: InstanceLauncher, name: str) -> PatrolHandoff:
        return PatrolHandoff(
            engine=engine, launcher=launcher, owns=launcher.owned_here, instance_id=name, clock=clock
        )

    assert await handoff(leader, "a").tick() == []  # not its vehicle: never launched there
    mine, again = handoff(owner, "b"), handoff(owner, "c")
    async with mine, again:  # two looking at once (a lease moving): one takes it
        await until(lambda: runs(engine)[0].status == RunStatus.LAUNCHED.value, 10, "the owner's launch")
    assert [(r, v) for r, v, _ in owner.launches] == [(run.id, 2)]
    [run] = runs(engine)
    assert (run.status, run.vehicle_id, run.reason) == (RunStatus.LAUNCHED.value, 2, "")


async def test_a_handed_off_run_nobody_takes_fails_after_the_catch_up_window(engine):
    add_patrol(engine, vehicle_id=2, cron="0 10 * * *")
    clock = AcceleratedClock(START, speed=100.0)
    leader = InstanceLauncher(clock, [state(1), state(2)], owned={1})
    scheduler = PatrolScheduler(engine=engine, launcher=leader, clock=clock, catch_up_s=30)
    await asyncio.sleep(0.2)  # 20 simulated s: past 10:00:00
    assert len(await scheduler.tick()) == 1
    assert runs(engine)[0].status == RunStatus.CLAIMED.value
    await asyncio.sleep(0.5)  # 50 more simulated s: the owner never took it
    await scheduler.tick()
    [run] = runs(engine)
    assert run.status == RunStatus.FAILED.value
    assert run.reason == "no instance owning its vehicle launched it in time"


async def test_runs_left_claimed_by_a_stopped_instance_are_settled_by_their_mission(engine):
    """An instance stopped while launching three runs: one before its mission existed, one with its mission
    validated but never sent, one whose mission went out. The next leader's tick settles each by its
    mission; a fresh claim (still being launched) and a pending hand-off are left alone."""
    from mission.missions.models import Mission
    from mission.patrols.scheduler import HANDOFF_REASON, ORPHAN_AFTER_S

    patrol = add_patrol(engine, cron="0 0 1 1 *")  # never due in the test: only the rows below count
    old = START - timedelta(seconds=ORPHAN_AFTER_S + 60)
    with session_scope(engine) as s:
        from mission.fleet.models import Vehicle

        s.add(
            Vehicle(
                id=1,
                name="uav1",
                connection_url="udpin://0.0.0.0:14540",
                sysid=1,
                home_lat=39.82,
                home_lon=109.98,
            )
        )
        s.flush()
        validated = Mission(name="m", vehicle_id=1, state="validated", plan={}, created_by="system:scheduler")
        flown = Mission(
            name="m", vehicle_id=1, state="active", plan={}, created_by="system:scheduler", started_at=old
        )
        s.add_all([validated, flown])
        s.flush()
        for k, (reason, mission_id, at) in enumerate(
            [
                ("", None, old),
                ("launching on b", validated.id, old),
                ("", flown.id, old),
                ("", None, START),  # claimed just now: a launch under way
                (HANDOFF_REASON, None, old),  # fail_stale_handoffs' business, with its own reason
            ]
        ):
            s.add(
                PatrolRun(
                    patrol_id=patrol.id,
                    scheduled_for=old + timedelta(minutes=k),
                    reason=reason,
                    mission_id=mission_id,
                    claimed_at=at,
                    vehicle_id=1,
                )
            )
    clock = AcceleratedClock(START, speed=1.0)
    scheduler = PatrolScheduler(
        engine=engine, launcher=RecordingLauncher(clock, [state(1)]), clock=clock, catch_up_s=30
    )
    await scheduler.tick()
    got = [(r.status, r.reason) for r in runs(engine)]
    assert got == [
        (RunStatus.FAILED.value, "the instance launching it stopped before the launch"),
        (
            RunStatus.FAILED.value,
            f"the instance launching it stopped before the launch; mission {validated.id} was left validated",
        ),
        (RunStatus.LAUNCHED.value, ""),
        (RunStatus.CLAIMED.value, ""),
        (RunStatus.FAILED.value, "no instance owning its vehicle launched it in time"),
    ]
    assert runs(engine)[2].mission_id == flown.id


async def test_a_tick_waiting_for_the_database_never_blocks_the_event_loop(engine, tmp_path):
    """Another connection holds the SQLite write lock (a request thread whose commit the event loop schedules)
    and lets go from the loop 0.5 s later. A tick writing on the loop would wait for the lock there, so the
    release could never run: the service froze for the 30 s busy timeout and the tick failed."""
    import itertools
    import sqlite3

    add_patrol(engine, cron="0 10 * * *")
    clock = AcceleratedClock(START, speed=100.0)
    scheduler = PatrolScheduler(engine=engine, launcher=RecordingLauncher(clock, [state(1)]), clock=clock)
    await asyncio.sleep(0.2)  # 20 simulated s: 10:00:00 is due
    holder = sqlite3.connect(tmp_path / "sched.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a request between its flush and its commit
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, holder.execute, "COMMIT")
    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(loop.time())
            await asyncio.sleep(0.02)

    beating = asyncio.create_task(heartbeat())
    try:
        await asyncio.wait_for(scheduler.tick(), 10)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        holder.close()
    longest = max(b - a for a, b in itertools.pairwise(beats))
    assert longest < 0.4, f"the event loop stood still for {longest:.2f} s during the tick"
    assert [r.status for r in runs(engine)] == [RunStatus.LAUNCHED.value]
