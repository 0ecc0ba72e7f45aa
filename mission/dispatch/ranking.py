"""Which vehicle reaches an incident first, and why: pure ranking of docked and airborne candidates.

ETA for a docked vehicle = take-off time + climb + route around no-fly zones at wind-corrected ground speed;
for an airborne one the route starts where it is. A vehicle is refused when its battery cannot fly to the
scene, stay overhead for the requested time and fly home with its reserve left.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from flightplans.errors import PlanningError
from mission.dispatch.energy import CALM, Performance, Wind, climb, cruise, hover
from mission.safety.routing import Airspace, Route


class Activity(StrEnum):
    """What a vehicle is doing, as far as dispatch cares."""

    DOCKED = "docked"  # on the ground at its dock or home, free
    PATROL = "patrol"  # airborne on a patrol: may be pulled off it
    IDLE_AIRBORNE = "idle_airborne"  # airborne without a task (holding)
    INCIDENT = "incident"  # serving an incident: never re-dispatched automatically
    RETURNING = "returning"  # flying home: may be re-tasked while its battery allows
    UNAVAILABLE = "unavailable"  # maintenance, pilot control, disarmed away from a dock


@dataclass(frozen=True, slots=True)
class VehicleState:
    """A dispatch candidate as seen now."""

    vehicle_id: int
    name: str
    lat: float
    lon: float
    alt_rel_m: float
    activity: Activity
    battery_pct: float
    home_lat: float
    home_lon: float
    perf: Performance = field(default_factory=Performance)
    capabilities: frozenset[str] = frozenset()
    link_up: bool = True
    patrol_run_id: int | None = None

    @property
    def airborne(self) -> bool:
        return self.activity in (
            Activity.PATROL,
            Activity.IDLE_AIRBORNE,
            Activity.INCIDENT,
            Activity.RETURNING,
        )


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """Where to go, how long to stay overhead, at what altitude, with which payloads."""

    lat: float
    lon: float
    overhead_s: float = 300.0
    alt_m: float = 60.0
    required_capabilities: frozenset[str] = frozenset()
    allow_preempt: bool = True
    # With battery rotation a vehicle that can stay at least this long is fit: a relief takes over.
    min_overhead_s: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.overhead_s) and self.overhead_s >= 0):
            raise PlanningError(
                f"overhead_s must be a finite number >= 0, got {self.overhead_s!r}",
                code="dispatch.overhead_s_finite_number",
                params={"overhead_s": repr(self.overhead_s)},
            )
        # The band (the service's transit floor and ceiling) is the gate's to judge: only sanity here.
        if not (math.isfinite(self.alt_m) and self.alt_m > 0):
            raise PlanningError(
                f"alt_m must be a finite height above home, got {self.alt_m!r}",
                code="dispatch.alt_m_finite_height",
                params={"alt_m": repr(self.alt_m)},
            )


@dataclass(frozen=True, slots=True)
class CandidateEstimate:
    """One vehicle's estimated arrival and energy budget for a request; ``reason`` says why it was refused."""

    vehicle_id: int
    name: str
    activity: Activity
    feasible: bool
    reason: str
    eta_s: float
    takeoff_s: float
    climb_s: float
    transit_s: float
    route_m: float
    to_scene_wh: float
    overhead_wh: float
    return_wh: float
    reserve_wh: float
    available_wh: float
    preempts_patrol_run: int | None = None
    route_latlon: tuple[tuple[float, float], ...] = ()

    @property
    def required_wh(self) -> float:
        return self.to_scene_wh + self.overhead_wh + self.return_wh + self.reserve_wh

    @property
    def margin_wh(self) -> float:
        return self.available_wh - self.required_wh


@dataclass(frozen=True, slots=True)
class DispatchDecision:
    """The ranked candidates (feasible first, by ETA) and the one chosen, with a sentence that explains it."""

    chosen: CandidateEstimate | None
    candidates: tuple[CandidateEstimate, ...]
    explanation: str


def _refused(v: VehicleState, reason: str, available_wh: float) -> CandidateEstimate:
    return CandidateEstimate(
        vehicle_id=v.vehicle_id,
        name=v.name,
        activity=v.activity,
        feasible=False,
        reason=reason,
        eta_s=math.inf,
        takeoff_s=0.0,
        climb_s=0.0,
        transit_s=0.0,
        route_m=0.0,
        to_scene_wh=0.0,
        overhead_wh=0.0,
        return_wh=0.0,
        reserve_wh=v.perf.reserve_wh,
        available_wh=available_wh,
    )


def estimate(
    vehicle: VehicleState, request: DispatchRequest, *, airspace: Airspace, wind: Wind = CALM
) -> CandidateEstimate:
    """ETA and energy budget of one vehicle for ``request``; infeasible with a reason when it cannot serve."""
    v, perf = vehicle, vehicle.perf
    available_wh = max(0.0, min(100.0, v.battery_pct)) / 100.0 * perf.battery_wh
    if not v.link_up:
        return _refused(v, "link down", available_wh)
    if v.activity in (Activity.INCIDENT, Activity.UNAVAILABLE):
        return _refused(v, f"busy ({v.activity.value})", available_wh)
    if v.activity is Activity.PATROL and not request.allow_preempt:
        return _refused(v, "on patrol and the request does not allow pulling patrols", available_wh)
    missing = request.required_capabilities - v.capabilities
    if missing:
        return _refused(v, f"lacks {', '.join(sorted(missing))}", available_wh)
    scene = (request.lat, request.lon)
    try:
        out_route = airspace.route((v.lat, v.lon), scene)
        back_route = airspace.route(scene, (v.home_lat, v.home_lon))
    except PlanningError as exc:
        return _refused(v, f"no route: {exc}", available_wh)
    if v.airborne:
        takeoff_s = 0.0
        up = climb(request.alt_m - v.alt_rel_m, perf)
    else:
        takeoff_s = perf.takeoff_s
        up = climb(request.alt_m, perf)
    out = cruise(out_route.points_xy, perf, wind=wind)
    back = cruise(back_route.points_xy, perf, wind=wind)
    stay = hover(request.overhead_s, perf)
    land = climb(-request.alt_m, perf)
    takeoff_wh = perf.hover_power_w * takeoff_s / 3600.0 * 0.5
    to_scene_wh = takeoff_wh + up.energy_wh + out.energy_wh
    return_wh = back.energy_wh + land.energy_wh
    eta_s = takeoff_s + up.time_s + out.time_s
    est = CandidateEstimate(
        vehicle_id=v.vehicle_id,
        name=v.name,
        activity=v.activity,
        feasible=True,
        reason="",
        eta_s=eta_s,
        takeoff_s=takeoff_s,
        climb_s=up.time_s,
        transit_s=out.time_s,
        route_m=out_route.length_m,
        to_scene_wh=to_scene_wh,
        overhead_wh=stay.energy_wh,
        return_wh=return_wh,
        reserve_wh=perf.reserve_wh,
        available_wh=available_wh,
        preempts_patrol_run=v.patrol_run_id if v.activity is Activity.PATROL else None,
        route_latlon=tuple(airspace.to_latlon(out_route)),
    )
    if not math.isfinite(eta_s) or not math.isfinite(return_wh):
        return _with(
            est, feasible=False, reason=f"wind {wind.speed_m_s:.0f} m/s is stronger than cruise speed"
        )
    if (
        est.margin_wh < 0
        and request.min_overhead_s is not None
        and request.min_overhead_s < request.overhead_s
    ):
        spare_wh = available_wh - to_scene_wh - return_wh - perf.reserve_wh
        stay_s = perf.hover_s_for(spare_wh)
        # Only an overwatch longer than a full battery allows is rotated; a shorter one needs a vehicle
        # that can stay for all of it.
        full_stay_s = perf.hover_s_for(perf.battery_wh - to_scene_wh - return_wh - perf.reserve_wh)
        if full_stay_s < request.overhead_s and stay_s >= request.min_overhead_s:
            return replace(
                est,
                overhead_wh=spare_wh,
                reason=f"stays {stay_s:.0f} s of the {request.overhead_s:.0f} s asked; a relief takes over",
            )
    if est.margin_wh < 0:
        return _with(
            est,
            feasible=False,
            reason=(
                f"battery too low: needs {est.required_wh:.0f} Wh (to scene {to_scene_wh:.0f} + overhead "
                f"{stay.energy_wh:.0f} + return {return_wh:.0f} + reserve {perf.reserve_wh:.0f}), "
                f"has {available_wh:.0f} Wh"
            ),
        )
    return est


def _with(est: CandidateEstimate, *, feasible: bool, reason: str) -> CandidateEstimate:
    return replace(est, feasible=feasible, reason=reason)


def rank(
    vehicles: Iterable[VehicleState],
    request: DispatchRequest,
    *,
    airspace: Airspace,
    wind: Wind = CALM,
) -> DispatchDecision:
    """Rank every vehicle for ``request``: feasible ones by ETA (then battery margin), refused ones after."""
    zone = airspace.zone_at(airspace.frame.point_to_local(request.lat, request.lon))
    estimates = [estimate(v, request, airspace=airspace, wind=wind) for v in vehicles]
    estimates.sort(key=lambda e: (not e.feasible, e.eta_s, -e.margin_wh if e.feasible else 0.0, e.vehicle_id))
    ranked = tuple(estimates)
    chosen = ranked[0] if ranked and ranked[0].feasible else None
    return DispatchDecision(chosen=chosen, candidates=ranked, explanation=_explain(chosen, ranked, zone))


def _explain(chosen: CandidateEstimate | None, ranked: Sequence[CandidateEstimate], zone: str | None) -> str:
    if zone is not None:
        return f"the scene is inside no-fly zone {zone!r}: no vehicle may fly there"
    if not ranked:
        return "no vehicles are registered"
    if chosen is None:
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in ranked)
        return f"no vehicle can serve: {reasons}"
    how = "already airborne" if chosen.activity is not Activity.DOCKED else "from its dock"
    text = (
        f"{chosen.name} arrives first ({how}) in {chosen.eta_s:.0f} s over {chosen.route_m:.0f} m, "
        f"using {chosen.to_scene_wh + chosen.overhead_wh + chosen.return_wh:.0f} Wh of "
        f"{chosen.available_wh:.0f} Wh with {chosen.reserve_wh:.0f} Wh reserve"
    )
    if chosen.preempts_patrol_run is not None:
        text += f"; it leaves patrol run {chosen.preempts_patrol_run}"
    runner_up = next((c for c in ranked[1:] if c.feasible), None)
    if runner_up is not None:
        text += f"; next is {runner_up.name} at {runner_up.eta_s:.0f} s"
    return text


def nearest_docked(
    vehicles: Iterable[VehicleState], request: DispatchRequest, *, airspace: Airspace, wind: Wind = CALM
) -> CandidateEstimate | None:
    """The baseline policy: the feasible docked vehicle whose dock is closest in a straight line."""
    scene = airspace.frame.point_to_local(request.lat, request.lon)
    docked = [v for v in vehicles if v.activity is Activity.DOCKED]
    docked.sort(key=lambda v: math.dist(airspace.frame.point_to_local(v.home_lat, v.home_lon), scene))
    for v in docked:
        est = estimate(v, request, airspace=airspace, wind=wind)
        if est.feasible:
            return est
    return None


def route_for(vehicle: VehicleState, request: DispatchRequest, *, airspace: Airspace) -> Route:
    """The route ``vehicle`` would fly to the scene (metres in the airspace's frame)."""
    return airspace.route((vehicle.lat, vehicle.lon), (request.lat, request.lon))
