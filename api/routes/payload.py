"""Sound and light over HTTP: the message library, live payload actions, mission items, the use log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict

from api.deps import AnyRole, SessionDep, get_runtime, require_roles
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.fleet.manager import VehicleProfile
from mission.payload import service
from mission.payload.models import MessageCreate, MessageRead, PayloadRequest, PayloadUseRead
from mission.safety.gate import Asker

router = APIRouter(prefix="/api/v1/payload", tags=["payload"])
Operator = Annotated[Principal, Depends(require_roles(Role.pilot, Role.dispatcher))]
Librarian = Annotated[Principal, Depends(require_roles(Role.dispatcher))]


class MissionItemRequest(PayloadRequest):
    model_config = ConfigDict(extra="forbid")

    mission_id: int | None = None
    lat: float | None = None
    lon: float | None = None


class MissionItemOut(BaseModel):
    """A DO_SET_ACTUATOR item to put in a custom plan, and the use record it made."""

    item: dict[str, Any]
    use: PayloadUseRead


@router.get("/messages", response_model=Page[MessageRead], summary="The speaker's message library")
def list_messages(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[MessageRead]:
    rows, total = service.list_messages(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page([MessageRead.model_validate(r) for r in rows], total)


@router.post(
    "/messages", response_model=MessageRead, status_code=status.HTTP_201_CREATED, summary="Add a message"
)
def create_message(data: MessageCreate, session: SessionDep, who: Librarian) -> MessageRead:
    row = service.create_message(session=session, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="payload.message.create",
        target=f"message:{row.id}",
        details={"name": data.name, "slot": data.slot, "kind": data.kind.value},
    )
    return MessageRead.model_validate(row)


@router.put("/messages/{message_id}", response_model=MessageRead, summary="Change a message")
def update_message(message_id: int, data: MessageCreate, session: SessionDep, who: Librarian) -> MessageRead:
    row = service.update_message(session=session, message_id=message_id, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="payload.message.update",
        target=f"message:{row.id}",
        details={"name": data.name, "slot": data.slot, "kind": data.kind.value, "language": data.language},
    )
    return MessageRead.model_validate(row)


@router.delete("/messages/{message_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a message")
def delete_message(message_id: int, session: SessionDep, who: Librarian) -> Response:
    row = service.delete_message(session=session, message_id=message_id)
    audit.record(
        session=session,
        actor=who.username,
        action="payload.message.delete",
        target=f"message:{message_id}",
        details={"name": row.name, "slot": row.slot},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/vehicles/{vehicle_id}/actions",
    response_model=PayloadUseRead,
    status_code=status.HTTP_201_CREATED,
    summary="Speaker, siren or spotlight now (DO_SET_ACTUATOR); recorded with who, where and when",
)
async def use_payload(
    vehicle_id: int, data: PayloadRequest, request: Request, who: Operator
) -> PayloadUseRead:
    runtime = get_runtime(request)
    use = await service.use_live(
        engine=request.app.state.engine,
        flights=runtime.flights,
        hub=runtime.hub,
        vehicle_id=vehicle_id,
        request=data,
        asker=Asker(who.username, str(who.role)),
    )
    return PayloadUseRead.model_validate(use)


@router.post(
    "/vehicles/{vehicle_id}/mission-item",
    response_model=MissionItemOut,
    status_code=status.HTTP_201_CREATED,
    summary="The same action as a mission item for a custom plan",
)
def payload_mission_item(
    vehicle_id: int, data: MissionItemRequest, request: Request, session: SessionDep, who: Operator
) -> MissionItemOut:
    profile: VehicleProfile = get_runtime(request).fleet.profile(vehicle_id)
    at = (data.lat, data.lon) if data.lat is not None and data.lon is not None else None
    command, use = service.record_mission_use(
        session=session,
        profile=profile,
        request=PayloadRequest(action=data.action, message_id=data.message_id, incident_id=data.incident_id),
        actor=who.username,
        mission_id=data.mission_id,
        at_latlon=at,
    )
    item = command.mission_item()
    return MissionItemOut(
        item={"kind": item.kind, "index": item.index, "value": item.value},
        use=PayloadUseRead.model_validate(use),
    )


@router.get("/uses", response_model=Page[PayloadUseRead], summary="Every payload use, newest first")
def list_uses(
    session: SessionDep,
    paging: Paging,
    _who: AnyRole,
    vehicle_id: Annotated[int | None, Query(ge=1)] = None,
) -> Page[PayloadUseRead]:
    rows, total = service.list_uses(
        session=session, limit=paging.limit, offset=paging.offset, vehicle_id=vehicle_id
    )
    return paging.page([PayloadUseRead.model_validate(r) for r in rows], total)
