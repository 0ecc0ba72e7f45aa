"""Control authority over HTTP: who holds a vehicle, take, release, hand off (all audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import AnyRole, SessionDep, require_roles
from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.control import service as control
from mission.control.models import ControlRead, HandoffRequest
from mission.errors import NotFound
from mission.fleet.models import Vehicle

router = APIRouter(prefix="/api/v1/vehicles", tags=["control"])
Pilot = Annotated[Principal, Depends(require_roles(Role.pilot))]


def _vehicle(session: SessionDep, vehicle_id: int) -> None:
    if session.get(Vehicle, vehicle_id) is None:
        raise NotFound(
            f"vehicle {vehicle_id} does not exist",
            code="api.control.vehicle_does_exist",
            params={"vehicle_id": vehicle_id},
        )


@router.get("/{vehicle_id}/control", response_model=ControlRead, summary="Who holds the vehicle")
def control_status(vehicle_id: int, session: SessionDep, _who: AnyRole) -> ControlRead:
    _vehicle(session, vehicle_id)
    return control.status(session=session, vehicle_id=vehicle_id)


@router.post("/{vehicle_id}/control", response_model=ControlRead, summary="Take control of the vehicle")
def take_control(
    vehicle_id: int,
    session: SessionDep,
    who: Pilot,
    force: Annotated[bool, Query(description="admin only: take it from the pilot holding it")] = False,
) -> ControlRead:
    _vehicle(session, vehicle_id)
    status, previous = control.take(
        session=session, vehicle_id=vehicle_id, username=who.username, role=who.role, force=force
    )
    audit.record(
        session=session,
        actor=who.username,
        action="control.take",
        target=f"vehicle:{vehicle_id}",
        details={"forced_from": previous} if previous else {},
    )
    return status


@router.delete("/{vehicle_id}/control", response_model=ControlRead, summary="Release control of the vehicle")
def release_control(vehicle_id: int, session: SessionDep, who: Pilot) -> ControlRead:
    _vehicle(session, vehicle_id)
    before = control.holder_of(session=session, vehicle_id=vehicle_id)
    status = control.release(session=session, vehicle_id=vehicle_id, username=who.username, role=who.role)
    if before is not None:
        audit.record(
            session=session,
            actor=who.username,
            action="control.release",
            target=f"vehicle:{vehicle_id}",
            details={"holder": before},
        )
    return status


@router.post(
    "/{vehicle_id}/control/handoff", response_model=ControlRead, summary="Hand control to another pilot"
)
def handoff_control(vehicle_id: int, data: HandoffRequest, session: SessionDep, who: Pilot) -> ControlRead:
    _vehicle(session, vehicle_id)
    before = control.holder_of(session=session, vehicle_id=vehicle_id)

    def role_of(username: str) -> str | None:
        user = auth.get_user(session=session, username=username)
        return None if user is None or user.disabled else user.role.value

    status = control.handoff(
        session=session,
        vehicle_id=vehicle_id,
        username=who.username,
        role=who.role,
        to_username=data.to_username,
        role_of=role_of,
    )
    audit.record(
        session=session,
        actor=who.username,
        action="control.handoff",
        target=f"vehicle:{vehicle_id}",
        details={"from": before, "to": data.to_username},
    )
    return status
