"""The mission state machine on SQLite and PostgreSQL: legal moves, refusals with reasons, records once."""

from __future__ import annotations

import threading

import pytest

from mission.db import session_scope
from mission.errors import InvalidTransition, NotFound
from mission.fleet.models import Vehicle
from mission.missions import service
from mission.missions.models import MissionEvent
from mission.missions.states import TRANSITIONS, MissionState, can
from tests import conftest_db

S = MissionState
PLAN = {
    "kind": "custom",
    "geometry": {"type": "LineString", "coordinates": [[109.98, 39.82], [109.99, 39.82]]},
}

# Every test here runs on SQLite and on PostgreSQL, each migrated with the project's Alembic migrations.
db_url, engine = conftest_db.db_url, conftest_db.engine


@pytest.fixture(autouse=True)
def _vehicle(engine):
    with session_scope(engine) as session:
        session.add(
            Vehicle(
                name="drone-1",
                connection_url="udpin://0.0.0.0:14540",
                sysid=1,
                home_lat=39.82,
                home_lon=109.98,
            )
        )


def _new(engine) -> int:
    with session_scope(engine) as session:
        m = service.create(session=session, name="north sweep", vehicle_id=1, plan=PLAN, actor="alice")
        assert m.id is not None
        return m.id


def _move(engine, mission_id: int, action: str, actor: str = "alice", **kw):
    with session_scope(engine) as session:
        return service.transition(session=session, mission_id=mission_id, action=action, actor=actor, **kw)


def test_full_lifecycle_records_every_transition_with_actor_and_reason(engine):
    mid = _new(engine)
    path = [
        ("validate", S.VALIDATED),
        ("launch", S.UPLOADING),
        ("uploaded", S.READY),
        ("start", S.ACTIVE),
        ("pause", S.PAUSED),
        ("resume", S.ACTIVE),
        ("return", S.RETURNING),
        ("complete", S.COMPLETED),
    ]
    for action, expected in path:
        result = _move(engine, mid, action, reason=f"because {action}")
        assert result.mission.state == expected.value
        assert result.event is not None
    with session_scope(engine) as session:
        rows, total = service.events(session=session, mission_id=mid)
        m = service.get(session=session, mission_id=mid)
    assert total == len(path) + 1  # plus "created"
    assert [(e.from_state, e.to_state) for e in rows[1:]] == [
        ("draft", "validated"),
        ("validated", "uploading"),
        ("uploading", "ready"),
        ("ready", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "returning"),
        ("returning", "completed"),
    ]
    assert all(e.actor == "alice" and e.reason.startswith("because") for e in rows[1:])
    assert m.started_at is not None and m.ended_at is not None


def test_illegal_transition_is_refused_with_the_reason_and_changes_nothing(engine):
    mid = _new(engine)
    with pytest.raises(
        InvalidTransition, match=r"mission \d+ is draft; launch is only possible from: validated"
    ):
        _move(engine, mid, "launch")
    with pytest.raises(InvalidTransition, match="pause is only possible from: active"):
        _move(engine, mid, "pause")
    with session_scope(engine) as session:
        assert service.get(session=session, mission_id=mid).state == "draft"
        assert service.events(session=session, mission_id=mid)[1] == 1


def test_terminal_states_accept_nothing_but_a_repeat(engine):
    mid = _new(engine)
    _move(engine, mid, "abort")
    assert _move(engine, mid, "abort").event is None  # a retried abort is not a second record
    for action in ("validate", "launch", "resume", "return", "complete"):
        with pytest.raises(InvalidTransition):
            _move(engine, mid, action)


def test_repeated_action_is_idempotent(engine):
    mid = _new(engine)
    for action in ("validate", "launch", "uploaded", "start", "pause"):
        _move(engine, mid, action)
    again = _move(engine, mid, "pause")
    assert again.event is None and again.mission.state == "paused"


def test_completion_reported_concurrently_is_recorded_once(engine):
    mid = _new(engine)
    for action in ("validate", "launch", "uploaded", "start"):
        _move(engine, mid, action)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def complete() -> None:
        barrier.wait()
        try:
            _move(engine, mid, "complete", actor="vehicle", expect_from=S.ACTIVE)
        except BaseException as err:  # pragma: no cover - shown in the assertion
            errors.append(err)

    threads = [threading.Thread(target=complete) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with session_scope(engine) as session:
        from sqlmodel import select

        completed = session.exec(
            select(MissionEvent).where(MissionEvent.mission_id == mid, MissionEvent.to_state == "completed")
        ).all()
    assert len(completed) == 1


def test_unknown_mission_is_not_found(engine):
    with pytest.raises(NotFound, match="mission 999 does not exist"):
        _move(engine, 999, "pause")


def test_table_is_consistent():
    # every non-terminal state can reach a terminal one, and abort covers every live state
    for state in S:
        if state in (S.COMPLETED, S.ABORTED, S.FAILED):
            assert not any(can(a, state) for a in TRANSITIONS if TRANSITIONS[a][1] != state)
        else:
            assert can("abort", state)
