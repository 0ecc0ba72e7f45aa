"""Airspace zones over HTTP: everyone reads; admins change them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from api.deps import AnyRole, IdPath, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.airspace import service as airspace
from mission.airspace.models import ZoneCreate, ZoneKind, ZoneRead
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role

router = APIRouter(prefix="/api/v1/zones", tags=["airspace"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.get("", response_model=Page[ZoneRead], summary="List zones")
def list_zones(
    session: SessionDep,
    paging: Paging,
    _who: AnyRole,
    kind: Annotated[ZoneKind | None, Query(description="only zones of this kind")] = None,
    active_at: Annotated[
        datetime | None, Query(description="only zones active at this time (ISO 8601)")
    ] = None,
) -> Page[ZoneRead]:
    items, total = airspace.list_zones(
        session=session, limit=paging.limit, offset=paging.offset, kind=kind, active_at=active_at
    )
    return paging.page(items, total)


@router.post("", response_model=ZoneRead, status_code=status.HTTP_201_CREATED, summary="Create a zone")
def create_zone(data: ZoneCreate, session: SessionDep, who: Admin) -> ZoneRead:
    zone = airspace.create_zone(session=session, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="zone.create",
        target=f"zone:{zone.id}",
        details=data.model_dump(mode="json"),
    )
    return zone


@router.get("/{zone_id}", response_model=ZoneRead, summary="One zone")
def get_zone(zone_id: IdPath, session: SessionDep, _who: AnyRole) -> ZoneRead:
    return airspace.get_zone(session=session, zone_id=zone_id)


@router.put("/{zone_id}", response_model=ZoneRead, summary="Replace a zone")
def replace_zone(zone_id: IdPath, data: ZoneCreate, session: SessionDep, who: Admin) -> ZoneRead:
    zone = airspace.replace_zone(session=session, zone_id=zone_id, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="zone.update",
        target=f"zone:{zone_id}",
        details=data.model_dump(mode="json"),
    )
    return zone


@router.delete("/{zone_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a zone")
def delete_zone(zone_id: IdPath, session: SessionDep, who: Admin) -> Response:
    gone = airspace.delete_zone(session=session, zone_id=zone_id)
    audit.record(
        session=session,
        actor=who.username,
        action="zone.delete",
        target=f"zone:{zone_id}",
        details={"name": gone.name},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
