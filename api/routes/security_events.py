"""Large-event security over HTTP: create an event (restricted zone, plan set, coverage), read, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from api.deps import AnyRole, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.security_events import service
from mission.security_events.models import SecurityEventCreate, SecurityEventRead

router = APIRouter(prefix="/api/v1/security-events", tags=["security events"])
Planner = Annotated[Principal, Depends(require_roles(Role.dispatcher))]


@router.get("", response_model=Page[SecurityEventRead], summary="List events, latest first")
def list_events(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[SecurityEventRead]:
    rows, total = service.list_events(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page([SecurityEventRead.model_validate(r) for r in rows], total)


@router.post(
    "",
    response_model=SecurityEventRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create an event: its restricted zone and its sweep, ring and overwatch plans with coverage",
)
def create_event(data: SecurityEventCreate, session: SessionDep, who: Planner) -> SecurityEventRead:
    row = service.create(session=session, data=data, actor=who.username)
    audit.record(
        session=session,
        actor=who.username,
        action="security_event.create",
        target=f"security_event:{row.id}",
        details={"name": data.name, "zone_id": row.zone_id, "coverage": row.plan.get("coverage")},
    )
    return SecurityEventRead.model_validate(row)


@router.get("/{event_id}", response_model=SecurityEventRead, summary="One event with its plan set")
def get_event(event_id: int, session: SessionDep, _who: AnyRole) -> SecurityEventRead:
    return SecurityEventRead.model_validate(service.get(session=session, event_id=event_id))


@router.delete("/{event_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an event and its zone")
def delete_event(event_id: int, session: SessionDep, who: Planner) -> Response:
    gone = service.delete(session=session, event_id=event_id)
    audit.record(
        session=session,
        actor=who.username,
        action="security_event.delete",
        target=f"security_event:{event_id}",
        details={"name": gone.name},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
