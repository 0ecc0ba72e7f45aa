"""Direct vehicle commands; the caller must hold control of the vehicle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import RuntimeDep, require_roles
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.commands import service
from mission.commands.models import CommandRequest, CommandResult

router = APIRouter(prefix="/api/v1/vehicles", tags=["commands"])
Pilot = Annotated[Principal, Depends(require_roles(Role.pilot))]


@router.post(
    "/{vehicle_id}/commands",
    response_model=CommandResult,
    summary="Command a vehicle: arm, takeoff, hold, goto, orbit, return, land, payload",
)
async def command_vehicle(
    vehicle_id: int, data: CommandRequest, who: Pilot, runtime: RuntimeDep
) -> CommandResult:
    return await service.execute(
        engine=runtime.engine,
        flights=runtime.flights,
        missions=runtime.missions,
        hub=runtime.hub,
        vehicle_id=vehicle_id,
        request=data,
        principal=who,
    )
