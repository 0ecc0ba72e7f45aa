"""Whole-plan safety check: every violation of no-fly zones, the operating area, altitude limits and energy.

Everything is in a local metric frame. A route is a sequence of RoutePoints flown from home; segment i
runs from point i to point i+1, the outbound leg from home to point 0 and the return leg from the last
point home. Each problem found is reported, not just the first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from flightplans.energy import EnergyModel, RoutePoint
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.items import (
    ChangeSpeed,
    Land,
    LoiterTime,
    MissionItem,
    ReturnToLaunch,
    SetActuator,
    Takeoff,
    Waypoint,
)
from flightplans.routing import as_xy
from flightplans.validate import validate_area

XY = tuple[float, float]
ViolationKind = Literal["nofly", "outside_area", "too_low", "too_high", "energy", "wind"]


@dataclass(frozen=True, slots=True)
class NoFlyZone:
    """A no-fly polygon in metres, closed from ``floor_m`` to ``ceiling_m`` above home."""

    polygon: Polygon
    floor_m: float = 0.0
    ceiling_m: float = math.inf
    name: str = ""


@dataclass(frozen=True, slots=True)
class Where:
    """Where a violation is: a route point or a leg, and a representative location on it.

    ``kind`` "point" is route point ``index``; "segment" runs from point ``index`` to ``index + 1``;
    "outbound" is home -> point 0; "return" is the last point -> home.
    """

    kind: Literal["point", "segment", "outbound", "return"]
    index: int
    xy: XY
    alt_m: float

    def describe(self) -> str:
        """Human wording, e.g. 'segment 3 (point 3 -> 4) at (120.0, -40.5) m, 60 m up'."""
        at = f"at ({self.xy[0]:.1f}, {self.xy[1]:.1f}) m, {self.alt_m:.0f} m up"
        if self.kind == "point":
            return f"point {self.index} {at}"
        if self.kind == "segment":
            return f"segment {self.index} (point {self.index} -> {self.index + 1}) {at}"
        if self.kind == "outbound":
            return f"the leg from home to point 0 {at}"
        return f"the return leg home from point {self.index} {at}"


@dataclass(frozen=True, slots=True)
class Violation:
    """One safety problem with a plan."""

    kind: ViolationKind
    message: str
    where: Where
    zone: str = ""  # the no-fly zone's name, for "nofly"


@dataclass(frozen=True, slots=True)
class _Leg:
    kind: Literal["segment", "outbound", "return"]
    index: int
    a: RoutePoint
    b: RoutePoint


def check_plan(
    points: Sequence[RoutePoint],
    *,
    home: XY,
    nofly: Sequence[NoFlyZone | Polygon] = (),
    area: Polygon | None = None,
    clearance_m: float = 10.0,
    min_alt_m: float | None = None,
    max_alt_m: float | None = None,
    energy: EnergyModel | None = None,
    return_home: bool = True,
    return_alt_m: float | None = None,
) -> tuple[Violation, ...]:
    """Every safety violation of a route flown from ``home`` (empty tuple: the plan is safe).

    Checks each leg and loiter circle against the no-fly zones grown by ``clearance_m`` (where the leg's
    altitude overlaps the zone's floor..ceiling), that everything stays inside ``area``, each point's
    altitude against ``min_alt_m``/``max_alt_m``, and with an ``energy`` model whether the plan plus the
    flight home fits above the battery reserve.

    >>> from shapely.geometry import box
    >>> route = [RoutePoint(0, 0, 50), RoutePoint(200, 0, 50)]
    >>> [(v.kind, v.where.kind) for v in check_plan(route, home=(0, 0), nofly=[box(90, -10, 110, 10)])]
    [('nofly', 'segment'), ('nofly', 'return')]
    """
    points = _check_points(points)
    hx, hy = as_xy("home", home)
    if not (isinstance(clearance_m, int | float) and math.isfinite(clearance_m)) or clearance_m < 0:
        raise PlanningError(
            f"clearance_m must be a finite number >= 0, got {clearance_m!r}",
            code="plan.safety.clearance_m_finite_number",
            params={"clearance_m": repr(clearance_m)},
        )
    zones = _check_zones(nofly)
    if area is not None:
        area = validate_area(area, name="area", max_area_m2=math.inf)
    for name, limit in (("min_alt_m", min_alt_m), ("max_alt_m", max_alt_m), ("return_alt_m", return_alt_m)):
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit)
        ):
            raise PlanningError(
                f"{name} must be a finite number, got {limit!r}",
                code="plan.safety.finite_number",
                params={"name": name, "limit": repr(limit)},
            )
    if min_alt_m is not None and max_alt_m is not None and min_alt_m > max_alt_m:
        raise PlanningError(
            f"min_alt_m {min_alt_m:g} is above max_alt_m {max_alt_m:g}",
            code="plan.safety.min_alt_m_above",
            params={"min_alt_m": f"{min_alt_m:g}", "max_alt_m": f"{max_alt_m:g}"},
        )

    legs = _legs(points, home=(hx, hy), return_home=return_home, return_alt_m=return_alt_m)
    violations: list[Violation] = []
    grown = [z.polygon.buffer(clearance_m, quad_segs=16) if clearance_m > 0 else z.polygon for z in zones]
    for zone, shape in zip(zones, grown, strict=True):
        label = f"no-fly zone {zone.name!r}" if zone.name else "a no-fly zone"
        reported: set[tuple[str, int]] = set()
        for leg in legs:
            if (leg.kind, leg.index) in reported:
                continue  # the outbound and return legs are several moves: one report each
            hit = _leg_in_zone(leg, shape, zone, clearance_m)
            if hit is not None:
                reported.add((leg.kind, leg.index))
                where = Where(leg.kind, leg.index, hit[0], hit[1])
                violations.append(
                    Violation(
                        "nofly",
                        f"{where.describe()} enters {label} "
                        f"({zone.floor_m:g}-{zone.ceiling_m:g} m, {clearance_m:g} m clearance)",
                        where,
                        zone.name,
                    )
                )
        for i, p in enumerate(points):
            circling = p.loiter_s > 0 and p.loiter_radius_m > 0 and zone.floor_m <= p.alt_m <= zone.ceiling_m
            # Exact: the circle comes within the clearance iff its centre is within radius + clearance.
            if circling and Point(p.xy).distance(zone.polygon) < p.loiter_radius_m + clearance_m:
                where = Where("point", i, p.xy, p.alt_m)
                violations.append(
                    Violation(
                        "nofly",
                        f"the {p.loiter_radius_m:g} m loiter circle at {where.describe()} enters {label}",
                        where,
                        zone.name,
                    )
                )
    if area is not None:
        violations.extend(_outside_area(points, legs, area))
    for i, p in enumerate(points):
        where = Where("point", i, p.xy, p.alt_m)
        if min_alt_m is not None and p.alt_m < min_alt_m:
            violations.append(
                Violation("too_low", f"{where.describe()} is below the {min_alt_m:g} m floor", where)
            )
        if max_alt_m is not None and p.alt_m > max_alt_m:
            violations.append(
                Violation("too_high", f"{where.describe()} is above the {max_alt_m:g} m ceiling", where)
            )
    if return_home and return_alt_m is not None and max_alt_m is not None and return_alt_m > max_alt_m:
        last = points[-1]
        where = Where("return", len(points) - 1, last.xy, return_alt_m)
        violations.append(
            Violation(
                "too_high", f"{where.describe()}: return altitude above the {max_alt_m:g} m ceiling", where
            )
        )
    if energy is not None:
        violations.extend(
            _energy(points, legs, energy, home=(hx, hy), return_home=return_home, return_alt_m=return_alt_m)
        )
    return tuple(violations)


def _check_points(points: Sequence[RoutePoint]) -> list[RoutePoint]:
    if isinstance(points, str) or not isinstance(points, Sequence):
        raise PlanningError(
            f"the route must be a list of RoutePoint, got {type(points).__name__}",
            code="plan.safety.route_list_routepoint",
            params={"name": type(points).__name__},
        )
    if not points:
        raise PlanningError("the route is empty", code="plan.safety.route_empty")
    for i, p in enumerate(points):
        if not isinstance(p, RoutePoint):
            raise PlanningError(
                f"route point {i} must be a RoutePoint, got {type(p).__name__}",
                code="plan.safety.route_point_routepoint",
                params={"i": i, "name": type(p).__name__},
            )
    return list(points)


def _check_zones(nofly: Sequence[NoFlyZone | Polygon]) -> list[NoFlyZone]:
    if isinstance(nofly, BaseGeometry):
        raise PlanningError(
            f"nofly must be a list of zones, got a single {nofly.geom_type}",
            code="plan.safety.nofly_list_zones_single",
            params={"geom_type": nofly.geom_type},
        )
    if isinstance(nofly, str) or not isinstance(nofly, Iterable):
        raise PlanningError(
            f"nofly must be a list of zones, got {type(nofly).__name__}",
            code="plan.safety.nofly_list_zones",
            params={"name": type(nofly).__name__},
        )
    zones = []
    for i, zone in enumerate(nofly):
        z = zone if isinstance(zone, NoFlyZone) else NoFlyZone(zone)
        label = f"nofly[{i}]" + (f" ({z.name})" if z.name else "")
        polygon = validate_area(z.polygon, name=label, max_area_m2=math.inf)
        for attr in ("floor_m", "ceiling_m"):
            value = getattr(z, attr)
            if not isinstance(value, int | float) or math.isnan(value):
                raise PlanningError(
                    f"{label} {attr} must be a number, got {value!r}",
                    code="plan.safety.number",
                    params={"label": label, "attr": attr, "value": repr(value)},
                )
        if z.floor_m > z.ceiling_m:
            raise PlanningError(
                f"{label} floor_m {z.floor_m:g} is above its ceiling_m {z.ceiling_m:g}",
                code="plan.safety.floor_m_above_ceiling",
                params={"label": label, "floor_m": f"{z.floor_m:g}", "ceiling_m": f"{z.ceiling_m:g}"},
            )
        zones.append(NoFlyZone(polygon, z.floor_m, z.ceiling_m, z.name))
    return zones


def _legs(points: list[RoutePoint], *, home: XY, return_home: bool, return_alt_m: float | None) -> list[_Leg]:
    first = points[0]
    # Take-off climbs vertically over home, then flies to point 0 at that point's altitude.
    legs = [
        _Leg("outbound", 0, RoutePoint(home[0], home[1], 0.0), RoutePoint(home[0], home[1], first.alt_m)),
        _Leg("outbound", 0, RoutePoint(home[0], home[1], first.alt_m), first),
    ]
    legs.extend(_Leg("segment", i, a, b) for i, (a, b) in enumerate(itertools.pairwise(points)))
    if return_home:
        # As PX4's RTL: climb to the return altitude, fly home, land.
        last = points[-1]
        alt = last.alt_m if return_alt_m is None else max(last.alt_m, return_alt_m)
        n = len(points) - 1
        legs.extend(
            [
                _Leg("return", n, last, RoutePoint(last.x, last.y, alt)),
                _Leg("return", n, RoutePoint(last.x, last.y, alt), RoutePoint(home[0], home[1], alt)),
                _Leg("return", n, RoutePoint(home[0], home[1], alt), RoutePoint(home[0], home[1], 0.0)),
            ]
        )
    return legs


def _too_close(geom: BaseGeometry, zone: Polygon, clearance_m: float) -> bool:
    """Exactly: is ``geom`` nearer than the clearance to the zone (or, with none, inside it)?"""
    if clearance_m > 0:
        return bool(geom.distance(zone) < clearance_m)
    return bool(zone.relate_pattern(geom, "T********"))


def _leg_in_zone(leg: _Leg, shape: Polygon, zone: NoFlyZone, clearance_m: float) -> tuple[XY, float] | None:
    """First (xy, alt) where the leg is within the zone's clearance and altitude band, else None.

    Whether the leg comes too close is decided exactly (distance to the zone); ``shape``, the zone
    buffered by the clearance, only locates the stretch that does.
    """
    a, b = leg.a, leg.b
    band = _altitude_band(a.alt_m, b.alt_m, zone)
    if a.xy == b.xy:
        if (
            band[0] <= band[1]
            and band[1] >= 0
            and band[0] <= 1
            and _too_close(Point(a.xy), zone.polygon, clearance_m)
        ):
            f = min(max(band[0], 0.0), 1.0)
            return a.xy, a.alt_m + (b.alt_m - a.alt_m) * f
        return None
    segment = LineString([a.xy, b.xy])
    if not _too_close(segment, zone.polygon, clearance_m):
        return None
    length = segment.length
    for piece in shapely.get_parts(segment.intersection(shape)):
        if piece.geom_type != "LineString" or piece.length <= 1e-9:
            continue
        ends = np.asarray(piece.coords)[[0, -1]]
        fractions = sorted(segment.project(Point(c)) / length for c in ends)
        lo, hi = max(fractions[0], band[0]), min(fractions[1], band[1])
        if lo <= hi:
            return _at(a, b, lo)
    # The buffer's chords sag a few millimetres inside the true clearance: a leg that only grazes there
    # is located at its point nearest the zone.
    near, _ = nearest_points(segment, zone.polygon)
    f = segment.project(near) / length
    if band[0] <= f <= band[1]:
        return _at(a, b, f)
    return None


def _at(a: RoutePoint, b: RoutePoint, f: float) -> tuple[XY, float]:
    x = a.x + (b.x - a.x) * f
    y = a.y + (b.y - a.y) * f
    return (float(x), float(y)), a.alt_m + (b.alt_m - a.alt_m) * f


def _altitude_band(alt_a: float, alt_b: float, zone: NoFlyZone) -> tuple[float, float]:
    """The fractions along a leg from alt_a to alt_b at which it is within the zone's floor..ceiling."""
    if alt_a == alt_b:
        return (0.0, 1.0) if zone.floor_m <= alt_a <= zone.ceiling_m else (1.0, 0.0)
    climb = alt_b - alt_a
    t_floor = (zone.floor_m - alt_a) / climb
    t_ceiling = (
        (zone.ceiling_m - alt_a) / climb if math.isfinite(zone.ceiling_m) else math.copysign(math.inf, climb)
    )
    return min(t_floor, t_ceiling), max(t_floor, t_ceiling)


def _outside_area(points: list[RoutePoint], legs: list[_Leg], area: Polygon) -> list[Violation]:
    out = []
    for i, p in enumerate(points):
        shape: BaseGeometry = Point(p.xy)
        if p.loiter_s > 0 and p.loiter_radius_m > 0:
            shape = shape.buffer(p.loiter_radius_m, quad_segs=16)
        if not area.covers(shape):
            where = Where("point", i, p.xy, p.alt_m)
            what = "the loiter circle at " if shape.geom_type == "Polygon" else ""
            out.append(
                Violation("outside_area", f"{what}{where.describe()} leaves the operating area", where)
            )
    for leg in legs:
        if leg.a.xy == leg.b.xy:
            continue
        segment = LineString([leg.a.xy, leg.b.xy])
        if area.covers(segment):
            continue
        outside = segment.difference(area)
        # The first outside point along the leg, for the operator to find it.
        first = min((Point(c) for c in shapely.get_coordinates(outside)), key=lambda p: segment.project(p))
        f = segment.project(first) / segment.length
        where = Where(leg.kind, leg.index, (first.x, first.y), leg.a.alt_m + (leg.b.alt_m - leg.a.alt_m) * f)
        out.append(Violation("outside_area", f"{where.describe()} leaves the operating area", where))
    return out


def _energy(
    points: list[RoutePoint],
    legs: list[_Leg],
    model: EnergyModel,
    *,
    home: XY,
    return_home: bool,
    return_alt_m: float | None,
) -> list[Violation]:
    # The battery must always bring the vehicle home unless the route itself ends on the ground.
    must_return = return_home or points[-1].alt_m > 0
    est = model.estimate(points, home=home, return_home=must_return, return_alt_m=return_alt_m)
    out = []
    if est.unflyable_leg is not None:
        i = est.unflyable_leg
        if i == 0:
            where = Where("outbound", 0, points[0].xy, points[0].alt_m)
        elif i < len(points):
            where = Where("segment", i - 1, points[i - 1].xy, points[i - 1].alt_m)
        else:
            where = Where("return", len(points) - 1, points[-1].xy, points[-1].alt_m)
        wind = math.hypot(model.wind_east_m_s, model.wind_north_m_s)
        out.append(
            Violation(
                "wind",
                f"{where.describe()} cannot be flown against a {wind:.1f} m/s wind "
                f"with {model.max_airspeed_m_s:g} m/s maximum airspeed",
                where,
            )
        )
    elif est.needed_wh > est.usable_wh:
        i = est.first_unsafe_index if est.first_unsafe_index is not None else len(points) - 1
        where = Where("point", i, points[i].xy, points[i].alt_m)
        out.append(
            Violation(
                "energy",
                f"the plan needs {est.needed_wh:.1f} Wh including the flight home, but only "
                f"{est.usable_wh:.1f} Wh of the {est.battery_wh:g} Wh battery are usable above the "
                f"{model.reserve_pct:g}% reserve; the reserve is reached after {where.describe()}",
                where,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class MissionRoute:
    """A compiled mission as a route in metres: its points, home, and whether it ends with a return."""

    points: tuple[RoutePoint, ...]
    home: XY
    return_home: bool
    item_index: tuple[int, ...]  # which mission item each route point came from


def route_from_mission(
    items: Sequence[MissionItem], *, frame: LocalFrame, home_lat: float, home_lon: float
) -> MissionRoute:
    """The route a vehicle flies for compiled mission items (take-off over home, speeds, loiters, RTL)."""
    home = frame.point_to_local(home_lat, home_lon)
    points: list[RoutePoint] = []
    origin: list[int] = []
    speed: float | None = None
    alt = 0.0
    return_home = False
    for n, item in enumerate(items):
        match item:
            case Takeoff(alt_m=alt_m):
                alt = alt_m
                points.append(RoutePoint(home[0], home[1], alt_m, speed_m_s=speed))
                origin.append(n)
            case Waypoint(lat=lat, lon=lon, alt_m=alt_m, hold_s=hold_s):
                x, y = frame.point_to_local(lat, lon)
                alt = alt_m
                points.append(RoutePoint(x, y, alt_m, loiter_s=hold_s, speed_m_s=speed))
                origin.append(n)
            case LoiterTime(lat=lat, lon=lon, alt_m=alt_m, seconds=seconds, radius_m=radius_m):
                x, y = frame.point_to_local(lat, lon)
                alt = alt_m
                points.append(
                    RoutePoint(x, y, alt_m, loiter_s=seconds, loiter_radius_m=abs(radius_m), speed_m_s=speed)
                )
                origin.append(n)
            case ChangeSpeed(speed_m_s=speed_m_s):
                speed = speed_m_s
            case Land(lat=lat, lon=lon):
                x, y = frame.point_to_local(lat, lon)
                points.append(RoutePoint(x, y, alt, speed_m_s=speed))
                points.append(RoutePoint(x, y, 0.0))
                origin.extend([n, n])
                return_home = False
                break
            case ReturnToLaunch():
                return_home = True
                break
            case SetActuator():
                pass
            case _:
                raise PlanningError(
                    f"mission item {n} is not a mission item: {item!r}",
                    code="plan.safety.mission_item_mission_item",
                    params={"n": n, "item": repr(item)},
                )
    if not points:
        raise PlanningError(
            "the mission has no item that flies anywhere", code="plan.safety.mission_has_item_flies"
        )
    return MissionRoute(tuple(points), home, return_home, tuple(origin))


def check_mission(
    items: Sequence[MissionItem],
    *,
    frame: LocalFrame,
    home_lat: float,
    home_lon: float,
    nofly: Sequence[NoFlyZone | Polygon] = (),
    area: Polygon | None = None,
    clearance_m: float = 10.0,
    min_alt_m: float | None = None,
    max_alt_m: float | None = None,
    energy: EnergyModel | None = None,
    return_alt_m: float | None = None,
) -> tuple[Violation, ...]:
    """check_plan over compiled mission items; zones and area in ``frame``'s metres.

    Violations name route points; ``route_from_mission(...).item_index`` maps them back to mission items.
    """
    route = route_from_mission(items, frame=frame, home_lat=home_lat, home_lon=home_lon)
    return check_plan(
        route.points,
        home=route.home,
        nofly=nofly,
        area=area,
        clearance_m=clearance_m,
        min_alt_m=min_alt_m,
        max_alt_m=max_alt_m,
        energy=energy,
        return_home=route.return_home,
        return_alt_m=return_alt_m,
    )
