"""Airspace zones over HTTP: everyone reads; admins change them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AnyRole, IdPath, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.airspace import files
from mission.airspace import service as airspace
from mission.airspace.models import ZoneCreate, ZoneKind, ZoneRead
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.errors import BadRequest

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


class ZoneImport(BaseModel):
    """A GeoJSON or KML file's text (the panel reads the file the admin picks)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["geojson", "kml"]
    content: str = Field(min_length=1, max_length=2_000_000)


class ZoneImported(BaseModel):
    created: list[ZoneRead]
    replaced: list[ZoneRead]


class ZoneSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: dict[str, Any] = Field(description="a GeoJSON LineString of [lon, lat] across the zone")


class ZoneMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zone_ids: list[int] = Field(min_length=2, max_length=50)


def _all_zones(session: SessionDep) -> list[ZoneRead]:
    items, _total = airspace.list_zones(session=session, limit=100_000, offset=0)
    return list(items)


@router.get("/export.geojson", summary="Every zone as a GeoJSON FeatureCollection")
def export_geojson(session: SessionDep, _who: AnyRole) -> Response:
    body = json.dumps(files.to_geojson(_all_zones(session)), ensure_ascii=False, indent=1)
    return Response(
        body,
        media_type="application/geo+json",
        headers={"Content-Disposition": 'attachment; filename="zones.geojson"'},
    )


@router.get("/export.kml", summary="Every zone as KML")
def export_kml(session: SessionDep, _who: AnyRole) -> Response:
    return Response(
        files.to_kml(_all_zones(session)),
        media_type="application/vnd.google-earth.kml+xml",
        headers={"Content-Disposition": 'attachment; filename="zones.kml"'},
    )


@router.post("/import", response_model=ZoneImported, summary="Create or replace zones from GeoJSON or KML")
def import_zones(data: ZoneImport, session: SessionDep, who: Admin) -> ZoneImported:
    parsed = files.from_geojson(data.content) if data.format == "geojson" else files.from_kml(data.content)
    created, replaced = files.import_zones(session=session, zones=parsed)
    audit.record(
        session=session,
        actor=who.username,
        action="zone.import",
        target="zones",
        details={
            "format": data.format,
            "created": [z.name for z in created],
            "replaced": [z.name for z in replaced],
        },
    )
    return ZoneImported(created=created, replaced=replaced)


@router.post("/merge", response_model=ZoneRead, summary="Merge touching zones of one kind into one")
def merge_zones(data: ZoneMerge, session: SessionDep, who: Admin) -> ZoneRead:
    merged = files.merge_zones(session=session, zone_ids=data.zone_ids)
    audit.record(
        session=session,
        actor=who.username,
        action="zone.merge",
        target=f"zone:{merged.id}",
        details={"zone_ids": data.zone_ids},
    )
    return merged


@router.post("/{zone_id}/split", response_model=list[ZoneRead], summary="Split a zone along a line")
def split_zone(zone_id: IdPath, data: ZoneSplit, session: SessionDep, who: Admin) -> list[ZoneRead]:
    line = data.line
    coords = line.get("coordinates") if line.get("type") == "LineString" else None
    if not isinstance(coords, list) or len(coords) < 2:
        raise BadRequest("line must be a GeoJSON LineString with 2 or more points", code="zone.split_failed")
    parts = files.split_zone(session=session, zone_id=zone_id, line=coords)
    audit.record(
        session=session,
        actor=who.username,
        action="zone.split",
        target=f"zone:{zone_id}",
        details={"parts": [z.id for z in parts], "line": coords},
    )
    return parts


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
