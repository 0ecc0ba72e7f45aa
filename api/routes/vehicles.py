"""The vehicle registry over HTTP: anyone may read, only admins change it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from api.deps import AnyRole, IdPath, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.fleet import service as fleet
from mission.fleet.models import VehicleCreate, VehicleRead, VehicleUpdate
from mission.telemetry.serialize import snapshot_to_dict

router = APIRouter(prefix="/api/v1/vehicles", tags=["vehicles"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


class VehicleLinkStatus(BaseModel):
    """The MAVLink connection as the service sees it now (the same ``link_up`` as /ws snapshots)."""

    state: Literal["up", "down", "never"]  # never: no heartbeat since the service started
    quality: float | None = None  # 0..1 when the link layer measures one


class VehicleHealth(BaseModel):
    """The vehicle's last reported health and state (the /ws snapshot's fields), None before the first."""

    gps_ok: bool
    home_ok: bool
    battery_pct: float | None
    armed: bool
    in_air: bool
    mode: str


class VehicleStatus(VehicleRead):
    """A registered vehicle with its live link and health."""

    link: VehicleLinkStatus
    health: VehicleHealth | None


def _status(vehicle: Any, request: Request) -> VehicleStatus:
    runtime = getattr(request.app.state, "runtime", None)
    snap = runtime.fleet.latest(vehicle.id) if runtime is not None else None
    base = VehicleRead.model_validate(vehicle).model_dump()
    if snap is None:
        return VehicleStatus(**base, link=VehicleLinkStatus(state="never"), health=None)
    data = snapshot_to_dict(snap)
    return VehicleStatus(
        **base,
        link=VehicleLinkStatus(state="up" if snap.link_up else "down", quality=data["link_quality"]),
        health=VehicleHealth(
            gps_ok=snap.gps_ok,
            home_ok=snap.home_ok,
            battery_pct=data["battery_pct"],
            armed=snap.armed,
            in_air=snap.in_air,
            mode=data["mode"],
        ),
    )


@router.get("", response_model=Page[VehicleStatus], summary="List registered vehicles with link and health")
def list_vehicles(
    session: SessionDep, paging: Paging, _who: AnyRole, request: Request
) -> Page[VehicleStatus]:
    items, total = fleet.list_vehicles(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page([_status(v, request) for v in items], total)


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


@router.get("/{vehicle_id}", response_model=VehicleStatus, summary="One vehicle with its link and health")
def get_vehicle(vehicle_id: IdPath, session: SessionDep, _who: AnyRole, request: Request) -> VehicleStatus:
    return _status(fleet.get(session=session, vehicle_id=vehicle_id), request)


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
