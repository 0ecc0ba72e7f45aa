"""Mission persistence: create, read, and compare-and-set state transitions with their event rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from mission.errors import InvalidTransition, NotFound
from mission.missions.models import Mission, MissionEvent, utcnow
from mission.missions.states import (
    IN_FLIGHT,
    TERMINAL,
    MissionState,
    allowed_from,
    can,
    explain_refusal,
    target_of,
)


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of a transition request; ``event`` is None when it was a repeat (nothing changed)."""

    mission: Mission
    event: MissionEvent | None


def get(*, session: Session, mission_id: int) -> Mission:
    """The mission or NotFound."""
    mission = session.get(Mission, mission_id)
    if mission is None:
        raise NotFound(
            f"mission {mission_id} does not exist",
            code="missions.mission_does_exist",
            params={"mission_id": mission_id},
        )
    return mission


def list_missions(
    *,
    session: Session,
    limit: int = 50,
    offset: int = 0,
    state: str | None = None,
    vehicle_id: int | None = None,
) -> tuple[list[Mission], int]:
    """A page of missions, newest first, and the total count."""
    query = select(Mission)
    count = select(func.count()).select_from(Mission)
    if state is not None:
        query = query.where(Mission.state == state)
        count = count.where(Mission.state == state)
    if vehicle_id is not None:
        query = query.where(Mission.vehicle_id == vehicle_id)
        count = count.where(Mission.vehicle_id == vehicle_id)
    rows = session.exec(query.order_by(col(Mission.id).desc()).offset(offset).limit(limit)).all()
    total = session.exec(count).one()
    return list(rows), int(total)


def in_flight(*, session: Session) -> list[Mission]:
    """Every mission the runtime must track or reconcile, oldest first."""
    rows = session.exec(
        select(Mission).where(col(Mission.state).in_([s.value for s in IN_FLIGHT])).order_by(col(Mission.id))
    ).all()
    return list(rows)


def current_for_vehicle(*, session: Session, vehicle_id: int) -> Mission | None:
    """The vehicle's in-flight mission, if any."""
    return session.exec(
        select(Mission)
        .where(Mission.vehicle_id == vehicle_id, col(Mission.state).in_([s.value for s in IN_FLIGHT]))
        .order_by(col(Mission.id).desc())
    ).first()


def events(
    *, session: Session, mission_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[MissionEvent], int]:
    """A page of the mission's transitions, oldest first, and the total count."""
    get(session=session, mission_id=mission_id)
    rows = session.exec(
        select(MissionEvent)
        .where(MissionEvent.mission_id == mission_id)
        .order_by(col(MissionEvent.id))
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.exec(
        select(func.count()).select_from(MissionEvent).where(MissionEvent.mission_id == mission_id)
    ).one()
    return list(rows), int(total)


def create(*, session: Session, name: str, vehicle_id: int, plan: dict[str, Any], actor: str) -> Mission:
    """A new draft mission with its creation event."""
    mission = Mission(name=name, vehicle_id=vehicle_id, plan=plan, created_by=actor)
    session.add(mission)
    session.flush()
    assert mission.id is not None
    session.add(
        MissionEvent(
            mission_id=mission.id,
            from_state=MissionState.DRAFT.value,
            to_state=MissionState.DRAFT.value,
            actor=actor,
            reason="created",
        )
    )
    session.flush()
    return mission


def transition(
    *,
    session: Session,
    mission_id: int,
    action: str,
    actor: str,
    reason: str = "",
    expect_from: MissionState | None = None,
    changes: dict[str, Any] | None = None,
) -> Transition:
    """Move the mission by ``action`` (compare-and-set on its state) and record who did it and why.

    Repeating an action whose target is already the current state (pause on a paused mission, a second
    "complete") changes nothing and returns ``event=None``, so retries and restarts record each step once.
    """
    mission = get(session=session, mission_id=mission_id)
    current = MissionState(mission.state)
    target = target_of(action)
    if expect_from is not None and current != expect_from:
        if current == target:
            return Transition(mission, None)
        raise InvalidTransition(
            f"mission {mission_id} is {current.value}, not {expect_from.value}; {action} was not applied",
            code="missions.mission_was_applied",
            params={
                "mission_id": mission_id,
                "value": current.value,
                "value2": expect_from.value,
                "action": action,
            },
        )
    if not can(action, current):
        if current == target:
            return Transition(mission, None)
        raise InvalidTransition(
            explain_refusal(action, current, mission_id=mission_id),
            code="missions.action_not_allowed",
            params={
                "mission_id": mission_id,
                "state": current.value,
                "action": action,
                "allowed": allowed_from(action),
            },
        )
    now = utcnow()
    values: dict[str, Any] = {"state": target.value, "updated_at": now, "reason": reason or None}
    if target == MissionState.ACTIVE and mission.started_at is None:
        values["started_at"] = now
    if target in TERMINAL:
        values["ended_at"] = now
    values.update(changes or {})
    result = session.execute(
        update(Mission)
        .where(col(Mission.id) == mission_id, col(Mission.state) == current.value)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Someone else moved it between our read and write: judge the request again on the fresh state.
        session.expire(mission)
        return transition(
            session=session,
            mission_id=mission_id,
            action=action,
            actor=actor,
            reason=reason,
            expect_from=expect_from,
            changes=changes,
        )
    event = MissionEvent(
        mission_id=mission_id,
        from_state=current.value,
        to_state=target.value,
        actor=actor,
        reason=reason,
        at=now,
    )
    session.add(event)
    session.flush()
    session.refresh(mission)
    return Transition(mission, event)


def set_progress(*, session: Session, mission_id: int, current: int, total: int) -> None:
    """Record how far the vehicle got (no event: progress is not a state change)."""
    session.execute(
        update(Mission)
        .where(col(Mission.id) == mission_id)
        .values(progress_current=current, progress_total=total, updated_at=utcnow())
    )
