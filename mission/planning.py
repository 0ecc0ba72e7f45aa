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

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame, geometry_from_geojson, geometry_to_geojson
from flightplans.items import FenceCircle, FencePolygon, FenceShape, Geofence, MissionItem, SetActuator
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
    dwell_s: float = Field(default=60.0, ge=0, le=7200)
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
    kind: str, geom_local: BaseGeometry, p: _Common, nofly_local: list[Polygon]
) -> tuple[list[XY], dict[str, Any]]:
    """The pattern's own waypoints (metres) and its metrics."""
    metrics: dict[str, Any] = {}
    if kind == "sweep":
        from flightplans.coverage import sweep

        assert isinstance(p, SweepParams)
        area = geom_local
        if nofly_local:
            area = area.difference(unary_union(nofly_local))
        parts = [area] if isinstance(area, Polygon) else list(getattr(area, "geoms", []))
        parts = [a for a in parts if isinstance(a, Polygon) and a.area > 1.0]
        if not parts:
            raise PlanningError("the sweep area lies entirely inside no-fly zones", where="geometry")
        wps: list[XY] = []
        covered = 0.0
        for part in sorted(parts, key=lambda a: -a.area):
            plan = sweep(part, swath_m=p.swath_m, angle_deg=p.angle_deg, speed_m_s=p.speed_m_s or 10.0)
            wps.extend((float(x), float(y)) for x, y in plan.waypoints)
            covered += float(plan.coverage) * part.area
        metrics["coverage"] = round(covered / geom_local.area, 4) if geom_local.area else 0.0
        metrics["area_m2"] = round(geom_local.area, 1)
        return wps, metrics
    if kind == "perimeter":
        from flightplans.patterns import perimeter

        assert isinstance(p, PerimeterParams)
        plan = perimeter(geom_local, inset_m=p.inset_m)
        return [(float(x), float(y)) for x, y in plan.waypoints], metrics
    if kind == "corridor":
        from flightplans.patterns import corridor

        assert isinstance(p, CorridorParams)
        plan = corridor(geom_local, width_m=p.width_m, swath_m=p.swath_m)
        return [(float(x), float(y)) for x, y in plan.waypoints], metrics
    if kind == "orbit":
        from flightplans.patterns import orbit

        assert isinstance(p, OrbitParams)
        plan = orbit(
            geom_local,
            radius_m=p.radius_m,
            dwell_s=p.dwell_s,
            clockwise=p.clockwise,
            speed_m_s=p.speed_m_s or 10.0,
        )
        return [(float(x), float(y)) for x, y in plan.waypoints], metrics
    if kind == "rings":
        from flightplans.rings import rings

        assert isinstance(p, RingsParams)
        plan = rings(
            geom_local,
            radii_m=p.radii_m,
            drones=p.drones,
            revisit_s=p.revisit_s,
            speed_m_s=p.speed_m_s or 10.0,
            nofly=nofly_local,
        )
        metrics["feasible"] = bool(getattr(plan, "feasible", True))
        metrics["revisit_gap_s"] = getattr(plan, "worst_gap_s", None)
        return [(float(x), float(y)) for x, y in plan.waypoints], metrics
    if kind == "route":
        stops = _points(geom_local)
        wps = [stops[0]]
        for a, b in itertools.pairwise(stops):
            wps.extend(_route_leg(a, b, nofly_local, clearance_m=p.clearance_m)[1:])
        return wps, metrics
    # custom: flown exactly as drawn; the safety check judges it.
    return _points(geom_local), metrics


def _route_leg(a: XY, b: XY, nofly_local: list[Polygon], *, clearance_m: float) -> list[XY]:
    from flightplans.routing import shortest_path

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
    pattern, metrics = _pattern_waypoints(request.kind, local, params, nofly_local)
    if not pattern:
        raise PlanningError(f"the {request.kind} plan produced no waypoints", where="geometry")
    route: list[XY] = list(pattern)
    home_xy: XY | None = None
    if context.home is not None:
        home_xy = frame.point_to_local(*context.home)
        transit_out = _safe_leg(home_xy, pattern[0], nofly_local, params.clearance_m)
        transit_back = _safe_leg(pattern[-1], home_xy, nofly_local, params.clearance_m)
        route = transit_out[:-1] + route + transit_back[1:]
    speed = params.speed_m_s or context.cruise_speed_m_s
    path_local = LineString(route) if len(route) > 1 else LineString([route[0], route[0]])
    path_wgs = frame.to_wgs84(path_local)
    violations = _check(
        path_local=path_local, frame=frame, zones=zones, params=params, context=context, speed_m_s=speed
    )
    items = _compile(route, frame=frame, params=params, speed_m_s=speed, context=context, home_xy=home_xy)
    hold_s = getattr(params, "dwell_s", 0.0) or 0.0
    flight_time_s = path_local.length / speed + hold_s
    metrics.update(
        {
            "length_m": round(path_local.length, 1),
            "pattern_length_m": round(LineString(pattern).length, 1) if len(pattern) > 1 else 0.0,
            "waypoints": len(route),
            "flight_time_s": round(flight_time_s, 1),
            "energy_wh": round(_energy_wh(flight_time_s), 1),
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


# A ~2 kg quad: ~180 W in hover and about the same cruising; the flightplans energy model refines this.
_CRUISE_POWER_W = 200.0


def _energy_wh(flight_time_s: float) -> float:
    return _CRUISE_POWER_W * flight_time_s / 3600.0


def _check(
    *,
    path_local: LineString,
    frame: LocalFrame,
    zones: Sequence[NoFly],
    params: _Common,
    context: PlanContext,
    speed_m_s: float,
) -> list[ViolationOut]:
    """Every rule the plan breaks: no-fly zones crossed, and energy against the battery and its reserve."""
    out: list[ViolationOut] = []
    coords = list(path_local.coords)
    for zone in zones:
        zl = frame.to_local(zone.geometry)
        for i, (a, b) in enumerate(itertools.pairwise(coords)):
            seg = LineString([a, b]) if a != b else Point(a)
            if seg.intersects(zl):
                hit = seg.intersection(zl)
                lat, lon = frame.point_to_wgs84(hit.centroid.x, hit.centroid.y)
                out.append(
                    ViolationOut(
                        kind="nofly",
                        message=f"leg {i} crosses no-fly zone {zone.name} "
                        f"({zone.floor_m:g}-{zone.ceiling_m:g} m) at {params.alt_m:g} m",
                        where={"segment": i, "lat": round(lat, 6), "lon": round(lon, 6), "zone": zone.name},
                    )
                )
    flight_time_s = path_local.length / speed_m_s + (getattr(params, "dwell_s", 0.0) or 0.0)
    if context.battery_wh is not None:
        needed_wh = _energy_wh(flight_time_s)
        charge = 100.0 if context.battery_pct is None else context.battery_pct
        usable_wh = context.battery_wh * max(0.0, charge - context.reserve_pct) / 100.0
        if needed_wh > usable_wh:
            out.append(
                ViolationOut(
                    kind="energy",
                    message=f"plan needs {needed_wh:.0f} Wh but the battery at {charge:.0f}% has"
                    f" {usable_wh:.0f} Wh "
                    f"above its {context.reserve_pct:g}% reserve",
                    where={"battery_pct": charge},
                )
            )
    if context.endurance_s is not None and flight_time_s > context.endurance_s:
        out.append(
            ViolationOut(
                kind="endurance",
                message=f"plan takes {flight_time_s:.0f} s, over the vehicle's"
                f" {context.endurance_s:.0f} s endurance",
            )
        )
    return out


def _compile(
    route: list[XY],
    *,
    frame: LocalFrame,
    params: _Common,
    speed_m_s: float,
    context: PlanContext,
    home_xy: XY | None,
) -> list[MissionItem]:
    from flightplans.items import ChangeSpeed, LoiterTime, ReturnToLaunch, Takeoff, Waypoint

    items: list[MissionItem] = [Takeoff(alt_m=params.alt_m), ChangeSpeed(speed_m_s=speed_m_s)]
    indexes = []
    for name in params.payload_on:
        if name not in context.actuators:
            raise PlanningError(
                f"payload {name!r} has no actuator on this vehicle", where="params.payload_on"
            )
        indexes.append(context.actuators[name])
    hold_s = getattr(params, "hold_s", 0.0) or 0.0
    points = route[:-1] if home_xy is not None and route and route[-1] == home_xy else route
    for n, (x, y) in enumerate(points):
        lat, lon = frame.point_to_wgs84(x, y)
        items.append(Waypoint(lat=lat, lon=lon, alt_m=params.alt_m, hold_s=hold_s))
        if n == 0:
            items.extend(SetActuator(index=i, value=1.0) for i in indexes)
    dwell = getattr(params, "dwell_s", 0.0) or 0.0
    if dwell and points:
        lat, lon = frame.point_to_wgs84(*points[-1])
        items.append(LoiterTime(lat=lat, lon=lon, alt_m=params.alt_m, seconds=dwell))
    items.extend(SetActuator(index=i, value=-1.0) for i in indexes)
    items.append(ReturnToLaunch())
    return items


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
