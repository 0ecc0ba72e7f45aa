"""Plan requests -> flightplans -> a preview: the path, its metrics, every violation and the mission items.

Used by POST /plans/preview and by mission creation/validation (the safety gate). Geometry arrives as
WGS84 GeoJSON; all planning happens in one local metric frame (flightplans.geodesy) and the results are
converted back once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry import LineString, MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from flightplans.compile import Action, Actuate, Hold, compile_mission
from flightplans.coverage import sweep
from flightplans.energy import RoutePoint
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
from mission.missions.codec import geofence_to_json, items_to_json
from mission.safety.rules import (
    Battery,
    NoFly,
    PathLimits,
    Refusal,
    energy_model,
    path_refusals,
    route_clearance_m,
)

PlanKind = Literal["sweep", "perimeter", "corridor", "orbit", "rings", "route", "custom"]
XY = tuple[float, float]


class PlanRequest(BaseModel):
    """Body of POST /plans/preview and the ``plan`` of a mission."""

    model_config = ConfigDict(extra="forbid")

    kind: PlanKind
    geometry: dict[str, Any] = Field(description="GeoJSON geometry, WGS84 [lon, lat]")
    params: dict[str, Any] = Field(default_factory=dict)


class ViolationOut(BaseModel):
    """One broken rule, with where it happens; ``code`` is stable for translations."""

    kind: str
    message: str
    where: Any = None
    code: str | None = None

    @classmethod
    def from_refusal(cls, refusal: Refusal) -> ViolationOut:
        body = refusal.as_json()
        return cls(kind=body["kind"], message=refusal.message, where=body.get("where"), code=refusal.code)


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
class PlanContext:
    """Everything outside the request that decides whether a plan may fly."""

    nofly: tuple[NoFly, ...] = ()
    home: tuple[float, float] | None = None  # (lat, lon) where the vehicle takes off and returns
    cruise_speed_m_s: float = 10.0
    battery_wh: float | None = None
    battery_pct: float | None = None  # current charge; None = assume full (a preview without a vehicle)
    endurance_s: float | None = None
    reserve_pct: float = 20.0
    actuators: dict[str, int] = field(default_factory=dict)
    fence_margin_m: float = 150.0
    max_alt_m: float | None = None  # ceiling above home (AGL); None = no ceiling
    return_alt_m: float | None = None  # the vehicle's RTL return altitude; None = returns at mission altitude
    clearance_floor_m: float = 0.0  # the service's clearance: a plan may ask for more, never less
    wind_east_m_s: float = 0.0
    wind_north_m_s: float = 0.0

    def limits(self, *, clearance_m: float) -> PathLimits:
        """The limits a path planned in this context is judged by."""
        return PathLimits(
            clearance_m=max(clearance_m, self.clearance_floor_m),
            max_alt_m=self.max_alt_m,
            return_alt_m=self.return_alt_m,
            reserve_pct=self.reserve_pct,
            wind_east_m_s=self.wind_east_m_s,
            wind_north_m_s=self.wind_north_m_s,
        )


def parse_params(kind: str, params: dict[str, Any]) -> _Common:
    """The typed parameters of ``kind``; PlanningError names each bad or unknown parameter."""
    try:
        return _PARAMS[kind].model_validate(params)
    except ValidationError as err:
        problems = "; ".join(f"params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise PlanningError(
            f"bad {kind} parameters: {problems}",
            where="params",
            code="planning.bad_parameters",
            params={"kind": kind, "problems": problems},
        ) from None


def _parse_geometry(kind: str, geojson: dict[str, Any]) -> BaseGeometry:
    geom = geometry_from_geojson(geojson)
    allowed = _GEOMETRY[kind]
    if geom.geom_type not in allowed:
        raise PlanningError(
            f"a {kind} plan needs a {' or '.join(allowed)} geometry, got {geom.geom_type}",
            where="geometry",
            code="planning.plan_needs_geometry",
            params={"kind": kind, "allowed": " or ".join(allowed), "geom_type": geom.geom_type},
        )
    if geom.is_empty:
        raise PlanningError("geometry is empty", where="geometry", code="planning.geometry_empty")
    return geom


def _points(geom: BaseGeometry) -> list[XY]:
    if isinstance(geom, LineString):
        return [(float(x), float(y)) for x, y in geom.coords]
    if isinstance(geom, MultiPoint):
        return [(float(p.x), float(p.y)) for p in geom.geoms]
    raise PlanningError(
        f"expected a line or points, got {geom.geom_type}",
        where="geometry",
        code="planning.expected_line_points",
        params={"geom_type": geom.geom_type},
    )


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
            raise PlanningError(
                "the sweep area lies entirely inside no-fly zones",
                where="geometry",
                code="planning.sweep_area_lies_entirely",
            )
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
                code="planning.drone_index_out_range",
                params={"drone_index": p.drone_index, "n_assignments": len(rplan.assignments)},
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
    if not nofly_local or not LineString([a, b]).intersects(unary_union(nofly_local).buffer(clearance_m)):
        return [a, b]
    path = shortest_path(a, b, nofly=nofly_local, clearance_m=clearance_m)
    return [(float(x), float(y)) for x, y in path.coords]


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """A plan turned into a route and mission items, not yet judged.

    ``points`` are in ``frame`` metres at heights above home, from the first waypoint after take-off to
    the last before the way home; ``clearance_m`` is what the route must be judged with (the plan's
    own, never below the service's floor).
    """

    frame: LocalFrame
    home_xy: XY | None
    points: tuple[RoutePoint, ...]
    clearance_m: float
    speed_m_s: float
    items: tuple[MissionItem, ...]
    fence: Geofence
    path_wgs: BaseGeometry
    metrics: dict[str, Any]


def compile_plan(request: PlanRequest, *, context: PlanContext) -> CompiledPlan:
    """Plan ``request`` in ``context`` around the zones active at its altitude: route, items and fence."""
    params = parse_params(request.kind, request.params)
    geom = _parse_geometry(request.kind, request.geometry)
    clearance = max(params.clearance_m, context.clearance_floor_m)
    # Routes keep a little more than the clearance they are judged by (rules.route_clearance_m).
    planned = params.model_copy(update={"clearance_m": route_clearance_m(clearance)})
    frame = LocalFrame.for_geometry(geom)
    local = frame.to_local(geom)
    zones = [z for z in context.nofly if _applies(z, params.alt_m)]
    nofly_local = [frame.to_local(z.geometry) for z in zones]
    speed = params.speed_m_s or context.cruise_speed_m_s
    pattern, metrics = _pattern_waypoints(request.kind, local, planned, nofly_local, speed_m_s=speed)
    if not pattern:
        raise PlanningError(
            f"the {request.kind} plan produced no waypoints",
            where="geometry",
            code="planning.plan_produced_waypoints",
            params={"kind": request.kind},
        )
    route: list[XY] = list(pattern)
    home_xy: XY | None = None
    if context.home is not None:
        home_xy = frame.point_to_local(*context.home)
        transit_out = _safe_leg(home_xy, pattern[0], nofly_local, planned.clearance_m)
        transit_back = _safe_leg(pattern[-1], home_xy, nofly_local, planned.clearance_m)
        route = transit_out[1:-1] + route + transit_back[1:-1]
    hold_s = getattr(params, "hold_s", 0.0) or 0.0
    points = tuple(RoutePoint(x, y, params.alt_m, loiter_s=hold_s) for x, y in route)
    items = _compile(route, frame=frame, params=params, speed_m_s=speed, context=context)
    full = [home_xy, *route, home_xy] if home_xy is not None else route
    path_local = LineString(full) if len(full) > 1 else LineString([full[0], full[0]])
    path_wgs = frame.to_wgs84(path_local)
    metrics.update(
        {
            "length_m": round(path_local.length, 1),
            "pattern_length_m": round(LineString(pattern).length, 1) if len(pattern) > 1 else 0.0,
            "waypoints": len(route),
            "alt_m": params.alt_m,
            "speed_m_s": speed,
            "clearance_m": clearance,
        }
    )
    fence = build_geofence(
        path_wgs=path_wgs,
        home=context.home,
        frame=frame,
        zones=context.nofly,
        margin_m=context.fence_margin_m,
    )
    return CompiledPlan(
        frame=frame,
        home_xy=home_xy,
        points=points,
        clearance_m=clearance,
        speed_m_s=speed,
        items=tuple(items),
        fence=fence,
        path_wgs=path_wgs,
        metrics=metrics,
    )


def judge_compiled(
    compiled: CompiledPlan, *, context: PlanContext, battery: Battery | None
) -> tuple[list[Refusal], float]:
    """The safety rules on a compiled plan flown from home and back: refusals and flight time (s)."""
    home = compiled.home_xy if compiled.home_xy is not None else compiled.points[0].xy
    return path_refusals(
        compiled.points,
        frame=compiled.frame,
        home=home,
        zones=context.nofly,
        limits=context.limits(clearance_m=compiled.clearance_m),
        battery=battery,
        returns_home=compiled.home_xy is not None,
        speed_m_s=compiled.speed_m_s,
    )


def context_battery(context: PlanContext) -> Battery | None:
    """The battery a preview judges by: the context's charge, full when unknown; None without a pack."""
    if context.battery_wh is None:
        return None
    return Battery(
        battery_wh=context.battery_wh,
        endurance_s=context.endurance_s,
        charge_pct=100.0 if context.battery_pct is None else context.battery_pct,
        cruise_speed_m_s=context.cruise_speed_m_s,
    )


def to_preview(
    compiled: CompiledPlan,
    *,
    refusals: list[Refusal],
    flight_time_s: float,
    battery: Battery | None,
    reserve_pct: float,
) -> PlanPreview:
    """What the API shows of a judged plan."""
    metrics = {
        **compiled.metrics,
        "flight_time_s": round(flight_time_s, 1),
        "energy_wh": None,
        "usable_wh": None,
    }
    if battery is not None:
        if battery.charge_pct is not None:
            usable = battery.battery_wh * max(0.0, battery.charge_pct - reserve_pct) / 100.0
            metrics["usable_wh"] = round(usable, 1)
        # What the whole flight costs (from a full pack, so the figure exists even below the reserve).
        model = energy_model(
            replace(battery, charge_pct=100.0), reserve_pct=0.0, speed_m_s=compiled.speed_m_s
        )
        if model is not None:
            home = compiled.home_xy if compiled.home_xy is not None else compiled.points[0].xy
            est = model.estimate(list(compiled.points), home=home, return_home=compiled.home_xy is not None)
            metrics["energy_wh"] = round(est.needed_wh, 1)
    return PlanPreview(
        path=geometry_to_geojson(compiled.path_wgs),
        metrics=metrics,
        violations=[ViolationOut.from_refusal(r) for r in refusals],
        items=items_to_json(list(compiled.items)),
        geofence=geofence_to_json(compiled.fence),
    )


def preview(request: PlanRequest, *, context: PlanContext) -> PlanPreview:
    """Plan ``request`` in ``context``: path, metrics, EVERY violation, and the items to upload."""
    compiled = compile_plan(request, context=context)
    battery = context_battery(context)
    refusals, time_s = judge_compiled(compiled, context=context, battery=battery)
    return to_preview(
        compiled, refusals=refusals, flight_time_s=time_s, battery=battery, reserve_pct=context.reserve_pct
    )


def _safe_leg(a: XY, b: XY, nofly_local: list[Polygon], clearance_m: float) -> list[XY]:
    try:
        return _route_leg(a, b, nofly_local, clearance_m=clearance_m)
    except PlanningError:
        return [a, b]  # no detour exists: fly straight and let the safety check say why it cannot


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
                code="planning.payload_has_actuator_vehicle",
                params={"name": repr(name), "carried": carried},
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
    "CompiledPlan",
    "FenceCircle",
    "NoFly",
    "PlanContext",
    "PlanPreview",
    "PlanRequest",
    "ViolationOut",
    "build_geofence",
    "compile_plan",
    "context_battery",
    "judge_compiled",
    "parse_params",
    "preview",
    "to_preview",
]
