"""Incidents over HTTP: report (and auto-dispatch), list, follow, dispatch, launch, close; response times."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel

from api.deps import AnyRole, SessionDep, get_runtime, require_roles
from api.pagination import Page, Paging
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.db import session_scope
from mission.dispatch.dispatcher import Dispatcher, decision_json
from mission.errors import LinkError
from mission.incidents import service
from mission.incidents.models import (
    IncidentClose,
    IncidentCreate,
    IncidentEventRead,
    IncidentRead,
    IncidentSource,
    IncidentState,
)
from mission.safety.gate import Asker

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
DispatcherRole = Annotated[Principal, Depends(require_roles(Role.dispatcher))]


def get_dispatcher(request: Request) -> Dispatcher:
    """The runtime's Dispatcher; 503 while it is not running."""
    dispatcher = getattr(get_runtime(request), "dispatcher", None)
    if dispatcher is None:
        raise LinkError("dispatch is not running", code="api.incidents.dispatch_running")
    return dispatcher


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


class DecisionOut(BaseModel):
    """Ranked candidates with ETA and energy, and the sentence that explains the choice."""

    chosen_vehicle_id: int | None
    explanation: str
    candidates: list[dict[str, Any]]


class ResponseTimesOut(BaseModel):
    incident_id: int
    to_assigned_s: float | None
    to_airborne_s: float | None
    to_on_scene_s: float | None


@router.get("", response_model=Page[IncidentRead], summary="List incidents, newest first")
def list_incidents(
    session: SessionDep,
    paging: Paging,
    _who: AnyRole,
    state: Annotated[IncidentState | None, Query(description="only incidents in this state")] = None,
) -> Page[IncidentRead]:
    rows, total = service.list_incidents(
        session=session, limit=paging.limit, offset=paging.offset, state=state
    )
    return paging.page([IncidentRead.model_validate(r) for r in rows], total)


@router.post(
    "",
    response_model=IncidentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident; with auto_dispatch the first-arriving vehicle is assigned and launched",
)
async def create_incident(
    data: IncidentCreate, request: Request, who: DispatcherRole, dispatcher: DispatcherDep
) -> IncidentRead:
    channel = IncidentSource.PANEL if data.source == "panel" else IncidentSource.API
    incident_id = await dispatcher.create(data=data, actor=who.username, channel=channel)
    with session_scope(request.app.state.engine) as session:
        return IncidentRead.model_validate(service.get(session=session, incident_id=incident_id))


@router.get("/{incident_id}", response_model=IncidentRead, summary="One incident with every timestamp")
def get_incident(incident_id: int, session: SessionDep, _who: AnyRole) -> IncidentRead:
    return IncidentRead.model_validate(service.get(session=session, incident_id=incident_id))


@router.get("/{incident_id}/events", response_model=list[IncidentEventRead], summary="The incident's history")
def incident_events(incident_id: int, session: SessionDep, _who: AnyRole) -> list[IncidentEventRead]:
    return [
        IncidentEventRead.model_validate(e) for e in service.events(session=session, incident_id=incident_id)
    ]


@router.get(
    "/{incident_id}/response",
    response_model=ResponseTimesOut,
    summary="Request -> assigned/airborne/on scene",
)
def incident_response(incident_id: int, session: SessionDep, _who: AnyRole) -> ResponseTimesOut:
    times = service.response_times(service.get(session=session, incident_id=incident_id))
    return ResponseTimesOut(
        incident_id=times.incident_id,
        to_assigned_s=times.to_assigned_s,
        to_airborne_s=times.to_airborne_s,
        to_on_scene_s=times.to_on_scene_s,
    )


@router.post("/{incident_id}/dispatch", response_model=DecisionOut, summary="Choose (and launch) a vehicle")
async def dispatch_incident(
    incident_id: int,
    who: DispatcherRole,
    dispatcher: DispatcherDep,
    launch: Annotated[
        bool | None, Query(description="launch at once (default: the auto-launch setting)")
    ] = None,
) -> DecisionOut:
    decision = await dispatcher.dispatch(incident_id, actor=who.username, launch=launch)
    return DecisionOut(**decision_json(decision))


@router.post("/{incident_id}/launch", response_model=IncidentRead, summary="Launch the assigned vehicle now")
async def launch_incident(
    incident_id: int, request: Request, who: DispatcherRole, dispatcher: DispatcherDep
) -> IncidentRead:
    await dispatcher.launch(incident_id, asker=Asker(who.username, str(who.role)))
    with session_scope(request.app.state.engine) as session:
        return IncidentRead.model_validate(service.get(session=session, incident_id=incident_id))


@router.post("/{incident_id}/close", response_model=IncidentRead, summary="Close; its vehicle flies home")
async def close_incident(
    incident_id: int, who: DispatcherRole, dispatcher: DispatcherDep, body: IncidentClose | None = None
) -> IncidentRead:
    reason = body.reason if body is not None else "resolved"
    return IncidentRead.model_validate(await dispatcher.close(incident_id, actor=who.username, reason=reason))
