"""The vehicle registry over HTTP: anyone may read, only admins change it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from api.deps import AnyRole, IdPath, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.fleet import service as fleet
from mission.fleet.models import VehicleCreate, VehicleRead, VehicleUpdate

router = APIRouter(prefix="/api/v1/vehicles", tags=["vehicles"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.get("", response_model=Page[VehicleRead], summary="List registered vehicles")
def list_vehicles(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[VehicleRead]:
    items, total = fleet.list_vehicles(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page(items, total)


@router.post(
    "", response_model=VehicleRead, status_code=status.HTTP_201_CREATED, summary="Register a vehicle"
)
def create_vehicle(data: VehicleCreate, session: SessionDep, who: Admin) -> VehicleRead:
    vehicle = fleet.create(session=session, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="vehicle.create",
        target=f"vehicle:{vehicle.id}",
        details=data.model_dump(mode="json"),
    )
    return vehicle


@router.get("/{vehicle_id}", response_model=VehicleRead, summary="One vehicle")
def get_vehicle(vehicle_id: IdPath, session: SessionDep, _who: AnyRole) -> VehicleRead:
    return fleet.get(session=session, vehicle_id=vehicle_id)


@router.patch("/{vehicle_id}", response_model=VehicleRead, summary="Change some fields of a vehicle")
def update_vehicle(
    vehicle_id: IdPath, data: VehicleUpdate, session: SessionDep, who: Admin, request: Request
) -> VehicleRead:
    linked = sorted({"enabled", "connection_url", "sysid"} & data.model_fields_set)
    runtime = getattr(request.app.state, "runtime", None)
    if linked and runtime is not None:
        runtime.fleet.require_grounded(vehicle_id, change=f"changing {', '.join(linked)}")
    vehicle = fleet.update(session=session, vehicle_id=vehicle_id, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="vehicle.update",
        target=f"vehicle:{vehicle_id}",
        details=data.model_dump(mode="json", exclude_unset=True),
    )
    return vehicle


@router.delete("/{vehicle_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a vehicle")
def delete_vehicle(vehicle_id: IdPath, session: SessionDep, who: Admin, request: Request) -> Response:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.fleet.require_grounded(vehicle_id, change="removing it from the registry")
    gone = fleet.delete(session=session, vehicle_id=vehicle_id)
    audit.record(
        session=session,
        actor=who.username,
        action="vehicle.delete",
        target=f"vehicle:{vehicle_id}",
        details={"name": gone.name, "sysid": gone.sysid},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
