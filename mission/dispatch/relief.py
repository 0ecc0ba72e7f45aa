"""Battery rotation: when an overwatch outlasts one battery, send a relief early enough to overlap.

The vehicle on scene must leave when what is left in its battery only just covers the flight home plus its
reserve. The relief must be overhead before that moment, so it launches at ``leave - relief ETA - margin``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from mission.dispatch.energy import CALM, Wind, climb, cruise
from mission.dispatch.ranking import CandidateEstimate, DispatchRequest, VehicleState, rank
from mission.safety.routing import Airspace


@dataclass(frozen=True, slots=True)
class ReliefPlan:
    """When the vehicle on scene must leave, and which relief launches when to arrive before that."""

    on_scene_vehicle_id: int
    leave_in_s: float
    needs_relief: bool
    relief: CandidateEstimate | None
    launch_in_s: float | None
    arrive_in_s: float | None
    explanation: str


def time_until_leave_s(
    vehicle: VehicleState, *, scene_lat: float, scene_lon: float, airspace: Airspace, wind: Wind = CALM
) -> float:
    """Seconds the vehicle can still hover at the scene before it must fly home to land with its reserve."""
    perf = vehicle.perf
    available_wh = max(0.0, min(100.0, vehicle.battery_pct)) / 100.0 * perf.battery_wh
    back = airspace.route((scene_lat, scene_lon), (vehicle.home_lat, vehicle.home_lon))
    return_wh = cruise(back.points_xy, perf, wind=wind).energy_wh + climb(-vehicle.alt_rel_m, perf).energy_wh
    if not math.isfinite(return_wh):
        return 0.0
    return perf.hover_s_for(available_wh - return_wh - perf.reserve_wh)


def plan_relief(
    on_scene: VehicleState,
    candidates: Iterable[VehicleState],
    *,
    scene_lat: float,
    scene_lon: float,
    remaining_overhead_s: float,
    alt_m: float,
    airspace: Airspace,
    wind: Wind = CALM,
    margin_s: float = 60.0,
    min_relief_overhead_s: float = 300.0,
) -> ReliefPlan:
    """Plan the relief of ``on_scene`` so the scene is never left uncovered; ``margin_s`` is the overlap."""
    leave_in_s = time_until_leave_s(
        on_scene, scene_lat=scene_lat, scene_lon=scene_lon, airspace=airspace, wind=wind
    )
    if leave_in_s >= remaining_overhead_s:
        return ReliefPlan(
            on_scene.vehicle_id,
            leave_in_s,
            False,
            None,
            None,
            None,
            f"{on_scene.name} can stay {leave_in_s:.0f} s, "
            f"longer than the {remaining_overhead_s:.0f} s still needed",
        )
    still_needed_s = remaining_overhead_s - leave_in_s + margin_s
    request = DispatchRequest(
        lat=scene_lat, lon=scene_lon, alt_m=alt_m, overhead_s=min(still_needed_s, min_relief_overhead_s)
    )
    others = [v for v in candidates if v.vehicle_id != on_scene.vehicle_id]
    decision = rank(others, request, airspace=airspace, wind=wind)
    relief = decision.chosen
    if relief is None:
        return ReliefPlan(
            on_scene.vehicle_id,
            leave_in_s,
            True,
            None,
            None,
            None,
            f"{on_scene.name} must leave in {leave_in_s:.0f} s "
            f"and no relief can serve: {decision.explanation}",
        )
    launch_in_s = max(0.0, leave_in_s - relief.eta_s - margin_s)
    arrive_in_s = launch_in_s + relief.eta_s
    return ReliefPlan(
        on_scene.vehicle_id,
        leave_in_s,
        True,
        relief,
        launch_in_s,
        arrive_in_s,
        f"{on_scene.name} must leave in {leave_in_s:.0f} s; {relief.name} launches in {launch_in_s:.0f} s "
        f"and arrives {leave_in_s - arrive_in_s:.0f} s before it leaves",
    )
