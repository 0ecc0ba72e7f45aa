"""Flight persistence: open a flight (superseding the vehicle's open one), advance it, end it once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from mission.audit.clock import utcnow
from mission.errors import NotFound
from mission.flights.models import OPEN_STATES, Flight, FlightPurpose, FlightState, Leg

_OPEN = [s.value for s in OPEN_STATES]


def get(*, session: Session, flight_id: int) -> Flight:
    flight = session.get(Flight, flight_id, populate_existing=True)
    if flight is None:
        raise NotFound(
            f"flight {flight_id} does not exist",
            code="flights.flight_does_exist",
            params={"flight_id": flight_id},
        )
    return flight


def open_for_vehicle(*, session: Session, vehicle_id: int) -> Flight | None:
    """The vehicle's pending or active flight, if any."""
    return session.exec(
        select(Flight).where(col(Flight.vehicle_id) == vehicle_id, col(Flight.state).in_(_OPEN))
    ).first()


def open_flights(*, session: Session) -> list[Flight]:
    """Every pending or active flight, oldest first (what a (re)start picks up)."""
    return list(session.exec(select(Flight).where(col(Flight.state).in_(_OPEN)).order_by(col(Flight.id))))


def open_for_incident(
    *, session: Session, incident_id: int, purposes: Sequence[FlightPurpose] | None = None
) -> list[Flight]:
    """The incident's open flights (its dispatch flight, a relief on its way, ...)."""
    query = select(Flight).where(col(Flight.incident_id) == incident_id, col(Flight.state).in_(_OPEN))
    if purposes is not None:
        query = query.where(col(Flight.purpose).in_([p.value for p in purposes]))
    return list(session.exec(query.order_by(col(Flight.id))))


def list_flights(
    *,
    session: Session,
    limit: int,
    offset: int,
    vehicle_id: int | None = None,
    incident_id: int | None = None,
    open_only: bool = False,
) -> tuple[list[Flight], int]:
    query = select(Flight)
    count = select(func.count()).select_from(Flight)
    for column, value in ((Flight.vehicle_id, vehicle_id), (Flight.incident_id, incident_id)):
        if value is not None:
            query = query.where(col(column) == value)
            count = count.where(col(column) == value)
    if open_only:
        query = query.where(col(Flight.state).in_(_OPEN))
        count = count.where(col(Flight.state).in_(_OPEN))
    rows = session.exec(query.order_by(col(Flight.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(count).one())


def create(
    *,
    session: Session,
    vehicle_id: int,
    purpose: FlightPurpose,
    legs: Sequence[Leg],
    requested_by: str,
    reason: str = "",
    incident_id: int | None = None,
    mission_id: int | None = None,
    relieves_vehicle_id: int | None = None,
) -> tuple[Flight, Flight | None]:
    """A new pending flight; the vehicle's open flight (if any) ends as superseded in the same transaction.

    Returns the new flight and the one it superseded.
    """
    previous = open_for_vehicle(session=session, vehicle_id=vehicle_id)
    if previous is not None:
        end(
            session=session,
            flight_id=previous.id or 0,
            state=FlightState.SUPERSEDED,
            outcome=f"superseded by a {purpose.value} flight ({reason})"[:500],
        )
        session.flush()
    flight = Flight(
        vehicle_id=vehicle_id,
        purpose=purpose.value,
        legs=[leg.model_dump(exclude_defaults=True) | {"kind": leg.kind.value} for leg in legs],
        requested_by=requested_by[:100],
        reason=reason[:500],
        incident_id=incident_id,
        mission_id=mission_id,
        relieves_vehicle_id=relieves_vehicle_id,
        # A flight that begins in the air (a return, a redirected drone) is airborne from the start.
    )
    session.add(flight)
    session.flush()
    return flight, previous


def set_state(
    *, session: Session, flight_id: int, expect: FlightState, to: FlightState, **values: Any
) -> bool:
    """Compare-and-set the state; False when the flight was no longer ``expect``."""
    result = session.execute(
        update(Flight)
        .where(col(Flight.id) == flight_id, col(Flight.state) == expect.value)
        .values(state=to.value, updated_at=utcnow(), **values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def advance(*, session: Session, flight_id: int, from_leg: int) -> bool:
    """Move an active flight past leg ``from_leg``; False if it moved on or ended meanwhile."""
    result = session.execute(
        update(Flight)
        .where(
            col(Flight.id) == flight_id,
            col(Flight.leg_index) == from_leg,
            col(Flight.state) == FlightState.ACTIVE.value,
        )
        .values(leg_index=from_leg + 1, updated_at=utcnow())
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def mark_airborne(*, session: Session, flight_id: int) -> bool:
    """Note that the vehicle was seen in the air; True the first time."""
    result = session.execute(
        update(Flight)
        .where(col(Flight.id) == flight_id, col(Flight.airborne) == False)  # noqa: E712
        .values(airborne=True, updated_at=utcnow())
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def end(*, session: Session, flight_id: int, state: FlightState, outcome: str) -> bool:
    """End an open flight once; False when it had ended already."""
    now = utcnow()
    result = session.execute(
        update(Flight)
        .where(col(Flight.id) == flight_id, col(Flight.state).in_(_OPEN))
        .values(state=state.value, outcome=outcome[:500], updated_at=now, ended_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
