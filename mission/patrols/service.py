"""Patrols as records: create, list, enable/disable, delete; their runs."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from mission.errors import Conflict, NotFound
from mission.patrols.models import Patrol, PatrolCreate, PatrolRun


def create(*, session: Session, data: PatrolCreate) -> Patrol:
    """Store a patrol; Conflict if the name is taken."""
    if session.exec(select(Patrol).where(col(Patrol.name) == data.name)).first() is not None:
        raise Conflict(
            f"patrol {data.name!r} already exists",
            code="patrols.patrol_already_exists",
            params={"name": repr(data.name)},
        )
    row = Patrol(**data.model_dump())
    session.add(row)
    session.flush()
    return row


def get(*, session: Session, patrol_id: int) -> Patrol:
    row = session.get(Patrol, patrol_id)
    if row is None:
        raise NotFound(
            f"patrol {patrol_id} does not exist",
            code="patrols.patrol_does_exist",
            params={"patrol_id": patrol_id},
        )
    return row


def list_patrols(*, session: Session, limit: int, offset: int) -> tuple[list[Patrol], int]:
    rows = session.exec(select(Patrol).order_by(col(Patrol.id)).offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(select(func.count()).select_from(Patrol)).one())


def update(*, session: Session, patrol_id: int, data: PatrolCreate) -> Patrol:
    """Replace a patrol's definition (its runs stay); Conflict if the new name is another patrol's."""
    row = get(session=session, patrol_id=patrol_id)
    clash = session.exec(select(Patrol).where(col(Patrol.name) == data.name)).first()
    if clash is not None and clash.id != patrol_id:
        raise Conflict(
            f"patrol {data.name!r} already exists",
            code="patrols.patrol_already_exists",
            params={"name": repr(data.name)},
        )
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return row


def set_enabled(*, session: Session, patrol_id: int, enabled: bool) -> Patrol:
    row = get(session=session, patrol_id=patrol_id)
    row.enabled = enabled
    session.add(row)
    session.flush()
    return row


def delete(*, session: Session, patrol_id: int) -> Patrol:
    """Delete a patrol that never ran; one with runs is disabled instead (its history stays)."""
    row = get(session=session, patrol_id=patrol_id)
    has_runs = session.exec(select(PatrolRun.id).where(col(PatrolRun.patrol_id) == patrol_id)).first()
    if has_runs is not None:
        raise Conflict(
            f"patrol {patrol_id} has runs; disable it instead of deleting it",
            code="patrols.patrol_has_runs_disable",
            params={"patrol_id": patrol_id},
        )
    session.delete(row)
    session.flush()
    return row


def runs(
    *, session: Session, limit: int, offset: int, patrol_id: int | None = None
) -> tuple[list[PatrolRun], int]:
    query = select(PatrolRun)
    count = select(func.count()).select_from(PatrolRun)
    if patrol_id is not None:
        get(session=session, patrol_id=patrol_id)
        query = query.where(col(PatrolRun.patrol_id) == patrol_id)
        count = count.where(col(PatrolRun.patrol_id) == patrol_id)
    rows = session.exec(query.order_by(col(PatrolRun.scheduled_for).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(count).one())
