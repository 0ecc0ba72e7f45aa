"""Plan requests -> flightplans -> a preview: the path, its metrics, every violation and the mission items.

Used by POST /plans/preview and by mission creation/validation (the safety gate). Geometry arrives as
WGS84 GeoJSON; all planning happens in one local metric frame (flightplans.geodesy) and the results are
converted back once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry import LineString, MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from flightplans.compile import Action, Actuate, Hold, compile_mission
from flightplans.coverage import sweep
from flightplans.energy import EnergyModel, RoutePoint
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame, geometry_from_geojson, geometry_to_geojson
from flightplans.items import (
    FenceCircle,
    FencePolygon,
    FenceShape,
    Geofence,
    MissionItem,
)
from flightplans.patterns import corridor, orbit, perimeter
from flightplans.rings import rings
from flightplans.routing import shortest_path
from flightplans.safety import NoFlyZone, check_plan
from mission.missions.codec import geofence_to_json, items_to_json

PlanKind = Literal["sweep", "perimeter", "corridor", "orbit", "rings", "route", "custom"]
XY = tuple[float, float]


class PlanRequest(BaseModel):
    """Body of POST /plans/preview and the ``plan`` of a mission."""

    model_config = ConfigDict(extra="forbid")

    kind: PlanKind
    geometry: dict[str, Any] = Field(description="GeoJSON geometry, WGS84 [lon, lat]")
    params: dict[str, Any] = Field(default_factory=dict)


class ViolationOut(BaseModel):
    """One broken rule, with where it happens."""

    kind: str
    message: str
    where: Any = None


class PlanPreview(BaseModel):
    """What a plan would fly and whether it may."""

    path: dict[str, Any]
    metrics: dict[str, Any]
    violations: list[ViolationOut]
    items: list[dict[str, Any]]
    geofence: dict[str, Any] | None = None


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alt_m: float = Field(default=60.0, gt=2, le=500, description="flight altitude above home")
    speed_m_s: float | None = Field(default=None, gt=0, le=30)
    clearance_m: float = Field(default=20.0, ge=0, le=1000, description="distance kept from no-fly zones")
    payload_on: list[str] = Field(
        default_factory=list, description="payloads (speaker, spotlight) on while flying"
    )


class SweepParams(_Common):
    swath_m: float = Field(default=40.0, gt=0, le=1000)
    angle_deg: float | None = Field(default=None, ge=-360, le=360)


class PerimeterParams(_Common):
    inset_m: float = Field(default=10.0, ge=0, le=1000)


class CorridorParams(_Common):
    width_m: float = Field(default=60.0, gt=0, le=2000)
    swath_m: float = Field(default=40.0, gt=0, le=1000)


class OrbitParams(_Common):
    radius_m: float = Field(default=100.0, gt=0, le=5000)
    dwell_s: float = Field(default=60.0, gt=0, le=7200, description="time spent circling")
    clockwise: bool = True


class RingsParams(_Common):
    radii_m: list[float] = Field(default_factory=lambda: [300.0], min_length=1, max_length=10)
    drones: int = Field(default=1, ge=1, le=50)
    revisit_s: float = Field(default=600.0, gt=0)
    drone_index: int = Field(default=0, ge=0)


class RouteParams(_Common):
    pass


class CustomParams(_Common):
    hold_s: float = Field(default=0.0, ge=0, le=3600)


_PARAMS: dict[str, type[_Common]] = {
    "sweep": SweepParams,
    "perimeter": PerimeterParams,
    "corridor": CorridorParams,
    "orbit": OrbitParams,
    "rings": RingsParams,
    "route": RouteParams,
    "custom": CustomParams,
}
_GEOMETRY: dict[str, tuple[str, ...]] = {
    "sweep": ("Polygon",),
    "perimeter": ("Polygon",),
    "corridor": ("LineString",),
    "orbit": ("Point",),
    "rings": ("Point",),
    "route": ("LineString", "MultiPoint"),
    "custom": ("LineString", "MultiPoint"),
}


@dataclass(frozen=True, slots=True)
class NoFly:
    """An airspace restriction as planning sees it: a lon/lat area between two heights above ground."""

    name: str
    geometry: BaseGeometry
    floor_m: float
    ceiling_m: float
    fence: FenceShape


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Everything outside the request that decides whether a plan may fly."""

    nofly: tuple[NoFly, ...] = ()
    home: tuple[float, float] | None = None  # (lat, lon) where the vehicle takes off and returns
    cruise_speed_m_s: float = 10.0
    battery_wh: float | None = None
    battery_pct: float | None = None  # current charge; None = assume full
    endurance_s: float | None = None
    reserve_pct: float = 20.0
    actuators: dict[str, int] = field(default_factory=dict)
    fence_margin_m: float = 150.0
    max_alt_m: float | None = None  # ceiling above home (AGL); None = no ceiling
    return_alt_m: float | None = None  # the vehicle's RTL return altitude; None = returns at mission altitude


def parse_params(kind: str, params: dict[str, Any]) -> _Common:
    """The typed parameters of ``kind``; PlanningError names each bad or unknown parameter."""
    try:
        return _PARAMS[kind].model_validate(params)
    except ValidationError as err:
        problems = "; ".join(f"params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise PlanningError(f"bad {kind} parameters: {problems}", where="params") from None


def _parse_geometry(kind: str, geojson: dict[str, Any]) -> BaseGeometry:
    geom = geometry_from_geojson(geojson)
    allowed = _GEOMETRY[kind]
    if geom.geom_type not in allowed:
        raise PlanningError(
            f"a {kind} plan needs a {' or '.join(allowed)} geometry, got {geom.geom_type}", where="geometry"
        )
    if geom.is_empty:
        raise PlanningError("geometry is empty", where="geometry")
    return geom


def _points(geom: BaseGeometry) -> list[XY]:
    if isinstance(geom, LineString):
        return [(float(x), float(y)) for x, y in geom.coords]
    if isinstance(geom, MultiPoint):
        return [(float(p.x), float(p.y)) for p in geom.geoms]
    raise PlanningError(f"expected a line or points, got {geom.geom_type}", where="geometry")


def _applies(zone: NoFly, alt_m: float) -> bool:
    return zone.floor_m <= alt_m <= zone.ceiling_m


def _pattern_waypoints(
    kind: str, geom_local: BaseGeometry, p: _Common, nofly_local: list[Polygon], *, speed_m_s: float
) -> tuple[list[XY], dict[str, Any]]:
    """The pattern's own waypoints (metres) and its metrics."""
    metrics: dict[str, Any] = {}
    if isinstance(p, SweepParams):
        area = geom_local
        if nofly_local:
            # Sweep what is left once the zones, grown by the clearance, are cut out as holes.
            area = area.difference(unary_union(nofly_local).buffer(p.clearance_m, quad_segs=8))
        parts = [area] if isinstance(area, Polygon) else list(getattr(area, "geoms", []))
        parts = [a for a in parts if isinstance(a, Polygon) and a.area > p.swath_m**2]
        if not parts:
            raise PlanningError("the sweep area lies entirely inside no-fly zones", where="geometry")
        wps: list[XY] = []
        covered = 0.0
        for part in sorted(parts, key=lambda a: -a.area):
            start = wps[-1] if wps else None
            plan = sweep(part, swath_m=p.swath_m, angle_deg=p.angle_deg, speed_m_s=speed_m_s, start=start)
            pts = [(float(x), float(y)) for x, y in plan.waypoints]
            if wps:
                pts = _route_leg(wps[-1], pts[0], nofly_local, clearance_m=p.clearance_m)[1:-1] + pts
            wps.extend(pts)
            covered += float(plan.coverage) * part.area
        metrics["coverage"] = round(covered / geom_local.area, 4) if geom_local.area else 0.0
        metrics["area_m2"] = round(geom_local.area, 1)
        metrics["swath_m"] = p.swath_m
        return wps, metrics
    if isinstance(p, PerimeterParams):
        pplan = perimeter(geom_local, inset_m=p.inset_m, speed_m_s=speed_m_s)
        return [(float(x), float(y)) for x, y in pplan.waypoints], metrics
    if isinstance(p, CorridorParams):
        cplan = corridor(geom_local, width_m=p.width_m, swath_m=p.swath_m, speed_m_s=speed_m_s)
        metrics["passes"] = cplan.passes
        return [(float(x), float(y)) for x, y in cplan.waypoints], metrics
    if isinstance(p, OrbitParams):
        c = geom_local.centroid
        oplan = orbit(
            (c.x, c.y), radius_m=p.radius_m, dwell_s=p.dwell_s, clockwise=p.clockwise, speed_m_s=speed_m_s
        )
        metrics["laps"] = round(oplan.laps, 2)
        return [(float(x), float(y)) for x, y in oplan.waypoints], metrics
    if isinstance(p, RingsParams):
        c = geom_local.centroid
        rplan = rings(
            (c.x, c.y),
            radii_m=p.radii_m,
            drones=p.drones,
            revisit_s=p.revisit_s,
            speed_m_s=speed_m_s,
            nofly=nofly_local,
            clearance_m=p.clearance_m,
        )
        if p.drone_index >= len(rplan.assignments):
            raise PlanningError(
                f"drone_index {p.drone_index} is out of range: the plan has"
                f" {len(rplan.assignments)} drone loops",
                where="params.drone_index",
            )
        loop = rplan.assignments[p.drone_index]
        metrics.update(
            {
                "feasible": rplan.feasible,
                "reason": rplan.reason,
                "worst_gap_s": round(rplan.worst_gap_s, 1),
                "min_drones": rplan.min_drones,
            }
        )
        return [(float(x), float(y)) for x, y in loop.waypoints], metrics
    if isinstance(p, RouteParams):
        stops = _points(geom_local)
        wps = [stops[0]]
        for a, b in itertools.pairwise(stops):
            wps.extend(_route_leg(a, b, nofly_local, clearance_m=p.clearance_m)[1:])
        return wps, metrics
    # custom: flown exactly as drawn; the safety check judges it.
    return _points(geom_local), metrics


def _route_leg(a: XY, b: XY, nofly_local: list[Polygon], *, clearance_m: float) -> list[XY]:
    if not nofly_local or not LineString([a, b]).intersects(
        unary_union(nofly_local).buffer(clearance_m * 0.5)
    ):
        return [a, b]
    path = shortest_path(a, b, nofly=nofly_local, clearance_m=clearance_m)
    return [(float(x), float(y)) for x, y in path.coords]


def preview(request: PlanRequest, *, context: PlanContext) -> PlanPreview:
    """Plan ``request`` in ``context``: path, metrics, EVERY violation, and the items to upload."""
    params = parse_params(request.kind, request.params)
    geom = _parse_geometry(request.kind, request.geometry)
    frame = LocalFrame.for_geometry(geom)
    local = frame.to_local(geom)
    zones = [z for z in context.nofly if _applies(z, params.alt_m)]
    nofly_local = [frame.to_local(z.geometry) for z in zones]
    speed = params.speed_m_s or context.cruise_speed_m_s
    pattern, metrics = _pattern_waypoints(request.kind, local, params, nofly_local, speed_m_s=speed)
    if not pattern:
        raise PlanningError(f"the {request.kind} plan produced no waypoints", where="geometry")
    route: list[XY] = list(pattern)
    home_xy: XY | None = None
    if context.home is not None:
        home_xy = frame.point_to_local(*context.home)
        transit_out = _safe_leg(home_xy, pattern[0], nofly_local, params.clearance_m)
        transit_back = _safe_leg(pattern[-1], home_xy, nofly_local, params.clearance_m)
        route = transit_out[1:-1] + route + transit_back[1:-1]
    hold_s = getattr(params, "hold_s", 0.0) or 0.0
    points = [RoutePoint(x, y, params.alt_m, loiter_s=hold_s) for x, y in route]
    violations, energy = _check(points=points, home_xy=home_xy, frame=frame, params=params, context=context)
    items = _compile(route, frame=frame, params=params, speed_m_s=speed, context=context)
    full = [home_xy, *route, home_xy] if home_xy is not None else route
    path_local = LineString(full) if len(full) > 1 else LineString([full[0], full[0]])
    path_wgs = frame.to_wgs84(path_local)
    metrics.update(
        {
            "length_m": round(path_local.length, 1),
            "pattern_length_m": round(LineString(pattern).length, 1) if len(pattern) > 1 else 0.0,
            "waypoints": len(route),
            "flight_time_s": round(energy.time_s if energy else path_local.length / speed, 1),
            "energy_wh": round(energy.needed_wh, 1) if energy else None,
            "usable_wh": round(energy.usable_wh, 1) if energy else None,
            "alt_m": params.alt_m,
            "speed_m_s": speed,
        }
    )
    fence = build_geofence(
        path_wgs=path_wgs,
        home=context.home,
        frame=frame,
        zones=context.nofly,
        margin_m=context.fence_margin_m,
    )
    return PlanPreview(
        path=geometry_to_geojson(path_wgs),
        metrics=metrics,
        violations=violations,
        items=items_to_json(items),
        geofence=geofence_to_json(fence),
    )


def _safe_leg(a: XY, b: XY, nofly_local: list[Polygon], clearance_m: float) -> list[XY]:
    try:
        return _route_leg(a, b, nofly_local, clearance_m=clearance_m)
    except PlanningError:
        return [a, b]  # no detour exists: fly straight and let the safety check say why it cannot


def energy_model(context: PlanContext, *, speed_m_s: float) -> EnergyModel | None:
    """The vehicle's energy model at its current charge, or None without a battery to judge."""
    if context.battery_wh is None:
        return None
    # Power from the registry's own figures: a full battery lasts the rated endurance.
    cruise_w = context.battery_wh * 3600.0 / context.endurance_s if context.endurance_s else 200.0
    charge = 100.0 if context.battery_pct is None else max(0.0, min(100.0, context.battery_pct))
    if charge <= context.reserve_pct:
        return None
    # The reserve is a share of the full pack; re-express it as a share of what is left.
    return EnergyModel(
        cruise_speed_m_s=speed_m_s,
        max_airspeed_m_s=max(15.0, speed_m_s),
        cruise_power_w=cruise_w,
        hover_power_w=cruise_w * 0.95,
        climb_power_w=cruise_w * 1.4,
        battery_wh=context.battery_wh * charge / 100.0,
        reserve_pct=min(99.0, context.reserve_pct * 100.0 / charge),
    )


def _where_json(frame: LocalFrame, where: Any) -> dict[str, Any]:
    lat, lon = frame.point_to_wgs84(*where.xy)
    return {
        "leg": where.kind,
        "index": where.index,
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "alt_m": where.alt_m,
    }


def _check(
    *,
    points: list[RoutePoint],
    home_xy: XY | None,
    frame: LocalFrame,
    params: _Common,
    context: PlanContext,
) -> tuple[list[ViolationOut], Any]:
    """Every rule the route breaks (flightplans.safety over the active restrictions and the battery)."""
    out: list[ViolationOut] = []
    speed = params.speed_m_s or context.cruise_speed_m_s
    model = energy_model(context, speed_m_s=speed)
    charge = 100.0 if context.battery_pct is None else context.battery_pct
    if context.battery_wh is not None and model is None:
        out.append(
            ViolationOut(
                kind="energy",
                message=f"battery {charge:.0f}% is at or below the {context.reserve_pct:g}% reserve",
                where={"battery_pct": charge},
            )
        )
    zones = [
        NoFlyZone(polygon=frame.to_local(z.geometry), floor_m=z.floor_m, ceiling_m=z.ceiling_m, name=z.name)
        for z in context.nofly
    ]
    home = home_xy if home_xy is not None else points[0].xy
    found = check_plan(
        points,
        home=home,
        nofly=zones,
        clearance_m=params.clearance_m * 0.5,  # routes keep the full clearance; allow for rounding
        energy=model,
        return_home=home_xy is not None,
        max_alt_m=context.max_alt_m,
        return_alt_m=context.return_alt_m,
    )
    out.extend(ViolationOut(kind=v.kind, message=v.message, where=_where_json(frame, v.where)) for v in found)
    estimate = (
        model.estimate(points, home=home, return_alt_m=context.return_alt_m) if model is not None else None
    )
    if context.endurance_s is not None and estimate is not None and estimate.time_s > context.endurance_s:
        out.append(
            ViolationOut(
                kind="endurance",
                message=f"plan takes {estimate.time_s:.0f} s, over the vehicle's"
                f" {context.endurance_s:.0f} s endurance",
            )
        )
    return out, estimate


def _compile(
    route: list[XY], *, frame: LocalFrame, params: _Common, speed_m_s: float, context: PlanContext
) -> list[MissionItem]:
    """Takeoff, cruise speed, the waypoints (payloads on at the first, off after the last), return home."""
    indexes = []
    for name in params.payload_on:
        if name not in context.actuators:
            carried = ", ".join(sorted(context.actuators)) or "none"
            raise PlanningError(
                f"payload {name!r} has no actuator on this vehicle (payloads: {carried})",
                where="params.payload_on",
            )
        indexes.append(context.actuators[name])
    hold_s = getattr(params, "hold_s", 0.0) or 0.0
    last = len(route) - 1
    actions: list[Action] = [Actuate(at=0, index=i, value=1.0) for i in indexes]
    actions += [Actuate(at=last, index=i, value=-1.0) for i in indexes]
    if hold_s > 0:
        actions += [Hold(at=n, seconds=hold_s) for n in range(len(route))]
    return list(compile_mission(route, frame=frame, alt_m=params.alt_m, speed_m_s=speed_m_s, actions=actions))


def build_geofence(
    *,
    path_wgs: BaseGeometry,
    home: tuple[float, float] | None,
    frame: LocalFrame,
    zones: Sequence[NoFly],
    margin_m: float,
) -> Geofence:
    """The operating area (the path and home, grown by ``margin_m``) and every no-fly zone that touches it."""
    local = frame.to_local(path_wgs)
    geoms: list[BaseGeometry] = [local]
    if home is not None:
        geoms.append(Point(frame.point_to_local(*home)))
    area = unary_union(geoms).convex_hull.buffer(margin_m, quad_segs=2).simplify(5.0)
    ring = frame.to_wgs84(Polygon(area.exterior.coords))
    points = tuple((round(lat, 7), round(lon, 7)) for lon, lat in list(ring.exterior.coords)[:-1])
    shapes: list[FenceShape] = [FencePolygon(points=points, inclusion=True)]
    area_wgs = frame.to_wgs84(area)
    shapes.extend(z.fence for z in zones if z.geometry.intersects(area_wgs))
    return Geofence(shapes=tuple(shapes))


__all__ = [
    "FenceCircle",
    "NoFly",
    "PlanContext",
    "PlanPreview",
    "PlanRequest",
    "ViolationOut",
    "build_geofence",
    "parse_params",
    "preview",
]
