"""Large-event security over HTTP: create an event (restricted zone, plan set, assigned vehicles with their
exemptions), edit the assignment, grant and revoke exemptions, start and stand down, read live measures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from shapely.geometry import Polygon

from api.deps import AnyRole, IdPath, RuntimeDep, SessionDep, require_roles
from api.pagination import Page, Paging
from flightplans.geodesy import distance_m
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.dispatch.ranking import Activity
from mission.runtime import Runtime
from mission.security_events import service
from mission.security_events.models import (
    AssignmentUpdate,
    ExemptionCreate,
    SecurityEventCreate,
    SecurityEventRead,
    ZoneExemptionRead,
)

router = APIRouter(prefix="/api/v1/security-events", tags=["security events"])
Planner = Annotated[Principal, Depends(require_roles(Role.dispatcher))]

FIT = (Activity.DOCKED, Activity.IDLE_AIRBORNE)


def availability(runtime: Runtime, venue: Polygon) -> list[service.Availability]:
    """Every registered vehicle as assignment sees it: free and connected, its charge, its distance."""
    centre = venue.centroid
    out = []
    for s in runtime.dispatcher.states():
        ok = s.link_up and s.activity in FIT
        reason = "" if ok else ("not connected" if not s.link_up else f"busy ({s.activity.value})")
        out.append(
            service.Availability(
                vehicle_id=s.vehicle_id,
                name=s.name,
                available=ok,
                battery_pct=s.battery_pct,
                distance_m=distance_m(s.lat, s.lon, centre.y, centre.x),
                reason=reason,
            )
        )
    return out


@router.get("", response_model=Page[SecurityEventRead], summary="List events, latest first")
def list_events(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[SecurityEventRead]:
    rows, total = service.list_events(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page([service.read(session=session, row=r) for r in rows], total)


@router.post(
    "",
    response_model=SecurityEventRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create an event: its restricted zone, plans with coverage, and its assigned vehicles",
)
def create_event(
    data: SecurityEventCreate, session: SessionDep, who: Planner, runtime: RuntimeDep
) -> SecurityEventRead:
    vehicles = data.vehicles
    skipped: list[str] = []
    if vehicles is None:
        venue = Polygon(data.venue.coordinates[0], data.venue.coordinates[1:])
        vehicles, skipped = service.choose_vehicles(availability(runtime, venue), count=data.drones)
    row = service.create(session=session, data=data, actor=who.username)
    audit.record(
        session=session,
        actor=who.username,
        action="security_event.create",
        target=f"security_event:{row.id}",
        details={
            "name": data.name,
            "zone_id": row.zone_id,
            "coverage": row.plan.get("coverage"),
            "vehicles": vehicles,
            "not_assigned": skipped[:20],
        },
    )
    if vehicles:
        service.assign(session=session, event_id=row.id or 0, vehicles=vehicles, actor=who.username)
    return service.read(session=session, row=row)


@router.get("/{event_id}", response_model=SecurityEventRead, summary="One event with its plan set")
def get_event(event_id: IdPath, session: SessionDep, _who: AnyRole) -> SecurityEventRead:
    return service.read(session=session, row=service.get(session=session, event_id=event_id))


@router.put(
    "/{event_id}/vehicles",
    response_model=SecurityEventRead,
    summary="Set the assigned vehicles (registry ids); exemptions follow (granted, revoked, audited)",
)
def set_vehicles(
    event_id: IdPath, data: AssignmentUpdate, session: SessionDep, who: Planner
) -> SecurityEventRead:
    row = service.assign(session=session, event_id=event_id, vehicles=data.vehicles, actor=who.username)
    return service.read(session=session, row=row)


@router.post(
    "/{event_id}/exemptions",
    response_model=ZoneExemptionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Exempt one more vehicle from the event zone (e.g. to serve an incident in the venue)",
)
def grant(event_id: IdPath, data: ExemptionCreate, session: SessionDep, who: Planner) -> ZoneExemptionRead:
    row = service.grant_exemption(session=session, event_id=event_id, data=data, actor=who.username)
    return ZoneExemptionRead.model_validate(row)


@router.delete(
    "/{event_id}/exemptions/{exemption_id}",
    response_model=ZoneExemptionRead,
    summary="Revoke an exemption: the vehicle is refused in the event zone from now",
)
def revoke(event_id: IdPath, exemption_id: IdPath, session: SessionDep, who: Planner) -> ZoneExemptionRead:
    row = service.revoke_exemption(
        session=session, event_id=event_id, exemption_id=exemption_id, actor=who.username
    )
    return ZoneExemptionRead.model_validate(row)


@router.post("/{event_id}/start", response_model=SecurityEventRead, summary="Start flying the event's plan")
async def start(event_id: IdPath, who: Planner, runtime: RuntimeDep) -> SecurityEventRead:
    return await runtime.events.start(event_id, actor=who.username)


@router.post(
    "/{event_id}/stand-down",
    response_model=SecurityEventRead,
    summary="Stand down: every drone home, exemptions expire",
)
async def stand_down(event_id: IdPath, who: Planner, runtime: RuntimeDep) -> SecurityEventRead:
    return await runtime.events.stand_down(event_id, actor=who.username)


@router.get(
    "/{event_id}/live", summary="Live measures: ring revisit gaps flown, sweep coverage, posts manned"
)
def live(event_id: IdPath, session: SessionDep, _who: AnyRole, runtime: RuntimeDep) -> dict[str, Any]:
    service.get(session=session, event_id=event_id)
    return runtime.events.measures(event_id)


@router.delete("/{event_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an event and its zone")
def delete_event(event_id: IdPath, session: SessionDep, who: Planner) -> Response:
    gone = service.delete(session=session, event_id=event_id)
    audit.record(
        session=session,
        actor=who.username,
        action="security_event.delete",
        target=f"security_event:{event_id}",
        details={"name": gone.name},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
