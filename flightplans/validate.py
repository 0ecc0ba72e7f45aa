"""Input checks for planning: every bad area or parameter becomes a PlanningError that names the problem.

Areas here are shapely polygons in a local metric frame (metres); holes are no-fly zones.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient
from shapely.validation import explain_validity

from flightplans.errors import PlanningError

MAX_AREA_M2 = 100e6


def _fmt(x: float, y: float) -> str:
    return f"({x:.2f}, {y:.2f})"


def _where_from_reason(reason: str) -> tuple[float, float] | None:
    """Parse the ``[x y]`` location that explain_validity appends to its reason."""
    if "[" not in reason or not reason.endswith("]"):
        return None
    try:
        xs, ys = reason[reason.rindex("[") + 1 : -1].split()
        return float(xs), float(ys)
    except ValueError:
        return None


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise PlanningError.

    >>> check_positive("swath_m", 30)
    30.0
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise PlanningError(
            f"{name} must be a number, got {value!r}",
            code="plan.validate.number",
            params={"name": name, "value": repr(value)},
        )
    v = float(value)
    if not math.isfinite(v):
        raise PlanningError(
            f"{name} must be finite, got {v!r}",
            code="plan.validate.finite",
            params={"name": name, "v": repr(v)},
        )
    if v <= 0:
        raise PlanningError(
            f"{name} must be positive, got {v!r}",
            code="plan.validate.positive",
            params={"name": name, "v": repr(v)},
        )
    return v


def check_finite_point(name: str, x: object, y: object) -> tuple[float, float]:
    """Return ``(x, y)`` as floats if both are finite numbers, else raise PlanningError.

    >>> check_finite_point("start", 1, 2.5)
    (1.0, 2.5)
    """
    out = []
    for axis, v in (("x", x), ("y", y)):
        if isinstance(v, bool) or not isinstance(v, Real):
            raise PlanningError(
                f"{name}: {axis} must be a number, got {v!r}",
                code="plan.validate.number_2",
                params={"name": name, "axis": axis, "v": repr(v)},
            )
        if not math.isfinite(float(v)):
            raise PlanningError(
                f"{name}: {axis} must be finite, got {v!r}",
                code="plan.validate.finite_2",
                params={"name": name, "axis": axis, "v": repr(v)},
            )
        out.append(float(v))
    return out[0], out[1]


def check_latlon(lat: object, lon: object) -> tuple[float, float]:
    """Return ``(lat, lon)`` as floats if they are finite WGS84 degrees in range, else raise PlanningError.

    >>> check_latlon(39.82, 109.98)
    (39.82, 109.98)
    """
    lat_f, lon_f = check_finite_point("lat/lon", lat, lon)
    if not -90.0 <= lat_f <= 90.0:
        raise PlanningError(
            f"latitude {lat_f} is outside [-90, 90] (are lat and lon swapped?)",
            code="plan.validate.latitude_outside_lat_lon",
            params={"lat_f": lat_f},
        )
    if not -180.0 <= lon_f <= 180.0:
        raise PlanningError(
            f"longitude {lon_f} is outside [-180, 180]",
            code="plan.validate.longitude_outside",
            params={"lon_f": lon_f},
        )
    return lat_f, lon_f


def validate_area(
    area: object,
    *,
    name: str = "area",
    max_area_m2: float = MAX_AREA_M2,
    min_size_m: float | None = None,
) -> Polygon:
    """Check a metric planning polygon and return it oriented (shell CCW, holes CW), or raise PlanningError.

    Rejected, each with a message naming the problem: not a Polygon, empty, NaN/inf coordinates, invalid
    geometry (self-intersection etc., with where), holes outside, crossing or touching the exterior, zero
    area, area over ``max_area_m2``, and (when ``min_size_m`` is given, usually the swath) an area whose
    whole extent fits inside ``min_size_m``.

    >>> from shapely.geometry import box
    >>> validate_area(box(0, 0, 100, 50)).area
    5000.0
    >>> validate_area(Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]))
    Traceback (most recent call last):
    ...
    flightplans.errors.PlanningError: area is invalid: self-intersection at (5.00, 5.00)
    """
    if not isinstance(area, Polygon):
        kind = type(area).__name__
        hint = " (split a MultiPolygon and plan each part)" if kind == "MultiPolygon" else ""
        raise PlanningError(
            f"{name} must be a shapely Polygon, got {kind}{hint}",
            code="plan.validate.shapely_polygon",
            params={"name": name, "kind": kind, "hint": hint},
        )
    if area.is_empty:
        raise PlanningError(f"{name} is empty", code="plan.validate.empty", params={"name": name})
    coords = shapely.get_coordinates(area)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        x, y = coords[bad][0]
        raise PlanningError(
            f"{name} has a non-finite (NaN/inf) coordinate: ({x}, {y})",
            where=(x, y),
            code="plan.validate.has_non_finite_nan",
            params={"name": name, "x": x, "y": y},
        )
    if len(area.exterior.coords) < 4:
        raise PlanningError(
            f"{name} exterior needs at least 3 distinct points",
            code="plan.validate.exterior_needs_least_distinct",
            params={"name": name},
        )
    shell = Polygon(area.exterior)
    for i, ring in enumerate(area.interiors):
        hole = Polygon(ring)
        if not hole.is_valid:
            reason = explain_validity(hole)
            where = _where_from_reason(reason)
            at = f" at {_fmt(*where)}" if where else ""
            raise PlanningError(
                f"{name} hole {i} is invalid: {reason.split('[')[0].lower()}{at}",
                where=where,
                code="plan.validate.hole_invalid",
                params={"name": name, "i": i, "lower": reason.split("[")[0].lower(), "at": at},
            )
        if not shell.is_valid:
            break  # the shell's own problem is reported below
        if not shell.contains(hole):
            outside = hole.difference(shell).representative_point()
            kind = "lies outside" if not shell.intersects(hole) else "crosses"
            raise PlanningError(
                f"{name} hole {i} {kind} the exterior (no-fly zones must be inside the area), "
                f"e.g. at {_fmt(outside.x, outside.y)}",
                where=(outside.x, outside.y),
                code="plan.validate.hole_exterior_fly_zones",
                params={"name": name, "i": i, "kind": kind, "fmt": _fmt(outside.x, outside.y)},
            )
        touch = area.exterior.intersection(ring)
        if not touch.is_empty:
            p = touch.representative_point()
            raise PlanningError(
                f"{name} hole {i} touches the exterior at {_fmt(p.x, p.y)}; "
                "shrink the no-fly zone or cut it out of the boundary",
                where=(p.x, p.y),
                code="plan.validate.hole_touches_exterior_shrink",
                params={"name": name, "i": i, "fmt": _fmt(p.x, p.y)},
            )
    if not area.is_valid:
        holes = [Polygon(r) for r in area.interiors]
        if len(holes) <= 200:
            for i in range(len(holes)):
                for j in range(i + 1, len(holes)):
                    if holes[i].intersects(holes[j]) and not holes[i].touches(holes[j]):
                        p = holes[i].intersection(holes[j]).representative_point()
                        raise PlanningError(
                            f"{name} holes {i} and {j} overlap at {_fmt(p.x, p.y)}; merge them into one",
                            where=(p.x, p.y),
                            code="plan.validate.holes_overlap_merge_them",
                            params={"name": name, "i": i, "j": j, "fmt": _fmt(p.x, p.y)},
                        )
        reason = explain_validity(area)
        where = _where_from_reason(reason)
        at = f" at {_fmt(*where)}" if where else ""
        raise PlanningError(
            f"{name} is invalid: {reason.split('[')[0].lower()}{at}",
            where=where,
            code="plan.validate.invalid",
            params={"name": name, "lower": reason.split("[")[0].lower(), "at": at},
        )
    if area.area <= 0.0:
        raise PlanningError(
            f"{name} has zero area", code="plan.validate.has_zero_area", params={"name": name}
        )
    if area.area > max_area_m2:
        raise PlanningError(
            f"{name} is {area.area / 1e6:.1f} km^2, over the {max_area_m2 / 1e6:.0f} km^2 limit "
            "(is it in metres, not degrees? split it into smaller areas)",
            code="plan.validate.km_over_km_limit",
            params={
                "name": name,
                "area": f"{area.area / 1e6:.1f}",
                "max_area_m2": f"{max_area_m2 / 1e6:.0f}",
            },
        )
    if min_size_m is not None:
        size = check_positive("min_size_m", min_size_m)
        rect = area.minimum_rotated_rectangle
        xy = np.asarray(rect.exterior.coords)
        sides = np.hypot(*np.diff(xy[:3], axis=0).T) if len(xy) >= 3 else np.zeros(2)
        if float(sides.max(initial=0.0)) < size:
            raise PlanningError(
                f"{name} is smaller than the swath: it spans {float(sides.max(initial=0.0)):.1f} m, "
                f"less than {size:g} m; one photo or hover point covers it",
                code="plan.validate.smaller_swath_spans_m",
                params={"name": name, "max": f"{float(sides.max(initial=0.0)):.1f}", "size": f"{size:g}"},
            )
    return orient(area, sign=1.0)
