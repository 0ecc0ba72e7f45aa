"""The way home and the rest of a mission, checked against the airspace of now and of the flight ahead.

PX4's RTL flies straight home at its return altitude and does not route around fences; when that straight
line crosses a restriction the vehicle is first flown along a routed detour (uploaded as a short mission
ending in RTL). ``remaining_problems`` is the safety gate for resuming a mission from where the vehicle is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import LineString
from shapely.ops import unary_union

from flightplans.energy import RoutePoint
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.items import LoiterTime, MissionItem, ReturnToLaunch, Takeoff, Waypoint
from flightplans.routing import shortest_path
from flightplans.safety import NoFlyZone, check_plan, route_from_mission
from mission.airspace.service import Restriction
from mission.link.types import TelemetrySnapshot, VehicleLink
from mission.missions.gate import GateConfig
from mission.planning import PlanContext, energy_model

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class HomeRoute:
    """How a vehicle gets home: the detour corners (empty = straight RTL is clear) at ``alt_m``."""

    via: tuple[LatLon, ...]
    alt_m: float


def _zones(frame: LocalFrame, restrictions: Sequence[Restriction], *, alt_m: float) -> list[NoFlyZone]:
    return [
        NoFlyZone(polygon=frame.to_local(r.geometry), floor_m=r.floor_m, ceiling_m=r.ceiling_m, name=r.name)
        for r in restrictions
        if r.floor_m <= alt_m <= r.ceiling_m
    ]


def home_route(
    *,
    here: LatLon,
    home: LatLon,
    alt_m: float,
    restrictions: Sequence[Restriction],
    config: GateConfig,
) -> HomeRoute:
    """The detour home around restrictions at the return altitude (PlanningError when none exists)."""
    return_alt = min(config.max_alt_m, max(alt_m, config.return_alt_m))
    frame = LocalFrame(*home)
    zones = [z.polygon for z in _zones(frame, restrictions, alt_m=return_alt)]
    a, b = frame.point_to_local(*here), frame.point_to_local(*home)
    if not zones or LineString([a, b]).distance(unary_union(zones)) >= config.clearance_m * 0.5:
        return HomeRoute(via=(), alt_m=return_alt)
    path = shortest_path(a, b, nofly=zones, clearance_m=config.clearance_m)
    corners = list(path.coords)[1:-1]
    return HomeRoute(via=tuple(frame.point_to_wgs84(x, y) for x, y in corners), alt_m=return_alt)


async def fly_home(*, link: VehicleLink, route: HomeRoute, snapshot: TelemetrySnapshot | None) -> None:
    """RTL, first along ``route``'s detour (as a mission ending in RTL) when the straight way is blocked."""
    if not route.via or snapshot is None or not snapshot.in_air:
        await link.return_to_launch()
        return
    items: list[MissionItem] = [Waypoint(lat=lat, lon=lon, alt_m=route.alt_m) for lat, lon in route.via]
    items.append(ReturnToLaunch())
    await link.hold()
    await link.upload_mission(items)
    await link.start_mission()


def remaining_problems(
    *,
    items: Sequence[MissionItem],
    current: int,
    snapshot: TelemetrySnapshot,
    home: LatLon,
    restrictions: Sequence[Restriction],
    context: PlanContext,
    config: GateConfig,
) -> list[str]:
    """Why the rest of a mission (from item ``current``, flown from where the vehicle is) may not fly."""
    assert snapshot.lat is not None and snapshot.lon is not None
    frame = LocalFrame(*home)
    alt = snapshot.alt_rel_m or 0.0
    here = RoutePoint(*frame.point_to_local(snapshot.lat, snapshot.lon), alt)
    rest = [i for i in items[max(0, current) :] if not isinstance(i, Takeoff)]
    flies = any(isinstance(i, Waypoint | LoiterTime) for i in rest)
    points = [here]
    return_home = True
    if flies:
        route = route_from_mission(rest, frame=frame, home_lat=home[0], home_lon=home[1])
        points += list(route.points)
        return_home = route.return_home
    home_xy = frame.point_to_local(*home)
    zones = [
        NoFlyZone(polygon=frame.to_local(r.geometry), floor_m=r.floor_m, ceiling_m=r.ceiling_m, name=r.name)
        for r in restrictions
    ]
    found = check_plan(
        points,
        home=home_xy,
        nofly=zones,
        clearance_m=config.clearance_m * 0.5,
        max_alt_m=config.max_alt_m,
        return_home=return_home,
        return_alt_m=config.return_alt_m,
    )
    # The outbound legs (home up to where the vehicle is now) have been flown already.
    problems = [v.message for v in found if v.where.kind != "outbound"]
    model = energy_model(context, speed_m_s=context.cruise_speed_m_s)
    if context.battery_wh is not None and model is None:
        problems.append(
            f"battery {context.battery_pct:.0f}% is at or below the {context.reserve_pct:g}% reserve"
        )
    elif model is not None:
        est = model.estimate(
            points[1:] or points,
            home=home_xy,
            start=here,
            return_home=True,
            return_alt_m=config.return_alt_m,
        )
        if est.needed_wh > est.usable_wh:
            problems.append(
                f"the rest of the mission and the flight home need {est.needed_wh:.1f} Wh, but only"
                f" {est.usable_wh:.1f} Wh are usable above the {context.reserve_pct:g}% reserve"
            )
    return problems


__all__ = ["HomeRoute", "PlanningError", "fly_home", "home_route", "remaining_problems"]
