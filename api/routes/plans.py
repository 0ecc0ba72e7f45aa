"""Plan previews: the path, metrics, violations and mission items of a plan, without storing anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import SessionDep, get_runtime, require_roles
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.errors import NotFound
from mission.fleet.manager import FleetManager, VehicleProfile, profile_from_row
from mission.fleet.models import Vehicle
from mission.link.types import TelemetrySnapshot
from mission.missions.gate import GateConfig, evaluate_plan
from mission.planning import PlanPreview, PlanRequest

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])
Planner = Annotated[Principal, Depends(require_roles(Role.pilot, Role.dispatcher))]


@router.post("/preview", response_model=PlanPreview, summary="Preview a plan against the airspace of now")
def preview_plan(
    data: PlanRequest,
    request: Request,
    session: SessionDep,
    _who: Planner,
    vehicle_id: Annotated[
        int | None, Query(ge=1, description="judge it for this vehicle (home, battery)")
    ] = None,
) -> PlanPreview:
    profile: VehicleProfile | None = None
    snapshot: TelemetrySnapshot | None = None
    gate = GateConfig()
    if vehicle_id is not None:
        row = session.get(Vehicle, vehicle_id)
        if row is None:
            raise NotFound(f"vehicle {vehicle_id} does not exist")
        profile = profile_from_row(row)
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            fleet: FleetManager = get_runtime(request).fleet
            snapshot = fleet.latest(vehicle_id)
            gate = runtime.gate
    return evaluate_plan(plan=data, session=session, profile=profile, snapshot=snapshot, config=gate).preview
