"""Incident lifecycle: create, move through new -> assigned -> en route -> on scene -> closed, measure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from mission.audit.clock import as_utc, utcnow
from mission.errors import InvalidTransition, NotFound
from mission.incidents.metrics import ResponseSummary, ResponseTimes, seconds_between, summarize
from mission.incidents.models import (
    ALLOWED_FROM,
    STAMP_COLUMN,
    Incident,
    IncidentCreate,
    IncidentEvent,
    IncidentSource,
    IncidentState,
)


def _event(
    session: Session,
    incident: Incident,
    kind: str,
    *,
    actor: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    assert incident.id is not None
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=at,
            kind=kind,
            actor=actor,
            vehicle_id=incident.vehicle_id,
            details=dict(details or {}),
        )
    )


def create(
    *,
    session: Session,
    data: IncidentCreate,
    actor: str,
    channel: IncidentSource = IncidentSource.API,
    at: datetime | None = None,
) -> Incident:
    """Store a new incident in state ``new``."""
    when = as_utc(at) if at is not None else utcnow()
    incident = Incident(
        kind=data.kind,
        priority=data.priority,
        lat=data.lat,
        lon=data.lon,
        notes=data.notes,
        source=data.source,
        channel=channel.value,
        ref=data.ref,
        overhead_s=data.overhead_s,
        alt_m=data.alt_m,
        required_capabilities=list(dict.fromkeys(data.required_capabilities)),
        created_by=actor,
        created_at=when,
    )
    session.add(incident)
    session.flush()
    _event(session, incident, "created", actor=actor, at=when, details={"channel": channel.value})
    session.flush()
    return incident


def get(*, session: Session, incident_id: int) -> Incident:
    """The incident, or NotFound."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(
            f"incident {incident_id} does not exist",
            code="incidents.incident_does_exist",
            params={"incident_id": incident_id},
        )
    return incident


def list_incidents(
    *, session: Session, limit: int = 50, offset: int = 0, state: IncidentState | None = None
) -> tuple[list[Incident], int]:
    """One page of incidents, newest first, and the total count."""
    query = select(Incident)
    count = select(func.count()).select_from(Incident)
    if state is not None:
        query = query.where(col(Incident.state) == state.value)
        count = count.where(col(Incident.state) == state.value)
    rows = session.exec(query.order_by(col(Incident.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(count).one())


def transition(
    *,
    session: Session,
    incident_id: int,
    to: IncidentState,
    actor: str,
    at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> Incident:
    """Move an incident to ``to``, stamping the time; InvalidTransition names the states when it cannot."""
    incident = get(session=session, incident_id=incident_id)
    current = IncidentState(incident.state)
    if current not in ALLOWED_FROM[to]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_FROM[to]))
        raise InvalidTransition(
            f"incident {incident_id} is {current.value}; it can become {to.value} only from {allowed}",
            code="incidents.incident_can_become_only",
            params={
                "incident_id": incident_id,
                "value": current.value,
                "value2": to.value,
                "allowed": allowed,
            },
        )
    when = as_utc(at) if at is not None else utcnow()
    incident.state = to.value
    column = STAMP_COLUMN.get(to)
    if column is not None and getattr(incident, column) is None:
        setattr(incident, column, when)
    if to is IncidentState.NEW:
        incident.vehicle_id = None
    session.add(incident)
    _event(
        session,
        incident,
        to.value if to is not IncidentState.NEW else "unassigned",
        actor=actor,
        at=when,
        details=details,
    )
    session.flush()
    return incident


def assign(
    *,
    session: Session,
    incident_id: int,
    vehicle_id: int,
    decision: dict[str, Any],
    actor: str,
    at: datetime | None = None,
) -> Incident:
    """Assign ``vehicle_id`` (new -> assigned) and keep the ranked decision that chose it."""
    incident = get(session=session, incident_id=incident_id)
    if IncidentState(incident.state) is not IncidentState.NEW:
        raise InvalidTransition(
            f"incident {incident_id} is {incident.state}; only a new incident can be assigned",
            code="incidents.incident_only_new_incident",
            params={"incident_id": incident_id, "state": incident.state},
        )
    incident.vehicle_id = vehicle_id
    incident.decision = decision
    session.add(incident)
    return transition(
        session=session,
        incident_id=incident_id,
        to=IncidentState.ASSIGNED,
        actor=actor,
        at=at,
        details={"vehicle_id": vehicle_id},
    )


def record_decision(*, session: Session, incident_id: int, decision: dict[str, Any], actor: str) -> Incident:
    """Keep a decision that chose nobody (so the operator sees why)."""
    incident = get(session=session, incident_id=incident_id)
    incident.decision = decision
    session.add(incident)
    _event(
        session,
        incident,
        "no_vehicle",
        actor=actor,
        at=utcnow(),
        details={"explanation": decision.get("explanation", "")},
    )
    session.flush()
    return incident


def mark_airborne(*, session: Session, incident_id: int, actor: str, at: datetime | None = None) -> Incident:
    """Stamp the moment the assigned vehicle is airborne (take-off acknowledged, or already flying)."""
    incident = get(session=session, incident_id=incident_id)
    if incident.airborne_at is None:
        incident.airborne_at = as_utc(at) if at is not None else utcnow()
        session.add(incident)
        _event(session, incident, "airborne", actor=actor, at=incident.airborne_at)
        session.flush()
    return incident


def note(*, session: Session, incident_id: int, kind: str, actor: str, details: dict[str, Any]) -> None:
    """Log something that happened to an incident without changing its state (pilot takeover, relief)."""
    incident = get(session=session, incident_id=incident_id)
    _event(session, incident, kind, actor=actor, at=utcnow(), details=details)
    session.flush()


def events(*, session: Session, incident_id: int) -> list[IncidentEvent]:
    """Every event of an incident, oldest first."""
    get(session=session, incident_id=incident_id)
    return list(
        session.exec(
            select(IncidentEvent)
            .where(col(IncidentEvent.incident_id) == incident_id)
            .order_by(col(IncidentEvent.id))
        ).all()
    )


def response_times(incident: Incident) -> ResponseTimes:
    """Request -> assigned / airborne / on scene for one incident."""
    assert incident.id is not None
    start = as_utc(incident.created_at)

    def since(value: datetime | None) -> float | None:
        return seconds_between(start, as_utc(value) if value is not None else None)

    return ResponseTimes(
        incident.id, since(incident.assigned_at), since(incident.airborne_at), since(incident.on_scene_at)
    )


def response_summary(
    *, session: Session, since: datetime | None = None, until: datetime | None = None
) -> ResponseSummary:
    """p50/p90 response times over incidents created in [since, until)."""
    query = select(Incident)
    if since is not None:
        query = query.where(col(Incident.created_at) >= as_utc(since))
    if until is not None:
        query = query.where(col(Incident.created_at) < as_utc(until))
    return summarize([response_times(i) for i in session.exec(query).all()])
