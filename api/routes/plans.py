"""Plan previews: the path, metrics, violations and mission items of a plan, without storing anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import SessionDep, get_runtime, require_roles
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.errors import NotFound
from mission.fleet.models import Vehicle
from mission.planning import PlanContext, PlanPreview, PlanRequest, preview, to_preview
from mission.safety.gate import Action, Asker, GateConfig, GateRequest, nofly_from, restrictions_for_span

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])
Planner = Annotated[Principal, Depends(require_roles(Role.pilot, Role.dispatcher))]


@router.post("/preview", response_model=PlanPreview, summary="Preview a plan against the airspace of now")
def preview_plan(
    data: PlanRequest,
    request: Request,
    session: SessionDep,
    who: Planner,
    vehicle_id: Annotated[
        int | None, Query(ge=1, description="judge it for this vehicle (home, battery, control)")
    ] = None,
) -> PlanPreview:
    """Without a vehicle the plan is judged for airspace and altitude only; with one, as the gate would."""
    runtime = getattr(request.app.state, "runtime", None)
    if vehicle_id is None or runtime is None:
        gate = runtime.gate if runtime is not None else GateConfig()
        restrictions = restrictions_for_span(session=session, vehicle_id=0, flight_s=0.0, config=gate)
        context = PlanContext(
            nofly=nofly_from(restrictions),
            max_alt_m=gate.max_alt_m,
            return_alt_m=gate.return_alt_m,
            clearance_floor_m=gate.clearance_m,
            fence_margin_m=gate.fence_margin_m,
        )
        return preview(data, context=context)
    if session.get(Vehicle, vehicle_id) is None:
        raise NotFound(
            f"vehicle {vehicle_id} does not exist",
            code="api.plans.vehicle_does_exist",
            params={"vehicle_id": vehicle_id},
        )
    executor = get_runtime(request).flights
    verdict = executor.judge(
        GateRequest(
            vehicle_id=vehicle_id,
            action=Action.LAUNCH,
            asker=Asker(who.username, str(who.role)),
            plan=data,
            planning=True,
        )
    )
    assert verdict.compiled is not None
    view = executor.view(vehicle_id)
    return to_preview(
        verdict.compiled,
        refusals=list(verdict.refusals),
        flight_time_s=verdict.flight_s,
        battery=view.battery(),
        reserve_pct=executor.gate.battery_reserve_pct,
    )
