"""Patrol patterns in a local metric frame: perimeter loops, corridor sweeps and orbits of a point.

Every pattern returns a frozen plan with the same fields as the coverage planner's SweepPlan: ``path``
(a LineString in metres), ``waypoints`` ((x, y) tuples), ``length_m``, ``turns`` and ``flight_time_s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import linemerge, substring

from flightplans.errors import PlanningError
from flightplans.routing import PointLike, as_xy
from flightplans.validate import check_positive, validate_area

XY = tuple[float, float]

# A heading change above this at a waypoint counts as a turn (the vehicle slows down for it).
TURN_MIN_DEG = 45.0


@dataclass(frozen=True, slots=True)
class PatrolPlan:
    """A flyable path in metres with its waypoints and metrics."""

    path: LineString
    waypoints: tuple[XY, ...]
    length_m: float
    turns: int
    flight_time_s: float


@dataclass(frozen=True, slots=True)
class PerimeterPlan(PatrolPlan):
    """A closed loop ``inset_m`` inside an area's boundary, flown ``laps`` times."""

    inset_m: float
    laps: int


@dataclass(frozen=True, slots=True)
class CorridorPlan(PatrolPlan):
    """Back-and-forth passes along a line; ``offsets_m`` left (+) / right (-) of it, in flight order."""

    passes: int
    offsets_m: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class OrbitPlan(PatrolPlan):
    """Circles of ``radius_m`` around ``center`` for ``dwell_s`` seconds."""

    center: XY
    radius_m: float
    laps: float
    clockwise: bool


def count_turns(coords: np.ndarray, *, min_deg: float = TURN_MIN_DEG) -> int:
    """Number of interior vertices where the heading changes by more than ``min_deg`` degrees."""
    if len(coords) < 3:
        return 0
    d = np.diff(coords, axis=0)
    d = d[np.hypot(*d.T) > 1e-9]
    if len(d) < 2:
        return 0
    heading = np.arctan2(d[:, 1], d[:, 0])
    change = np.abs((np.diff(heading) + math.pi) % (2 * math.pi) - math.pi)
    return int(np.count_nonzero(change > math.radians(min_deg)))


def dedupe(coords: np.ndarray, *, tol_m: float = 1e-6) -> np.ndarray:
    """Coordinates without consecutive repeats."""
    if len(coords) == 0:
        return coords
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = np.hypot(*np.diff(coords, axis=0).T) > tol_m
    return coords[keep]


def metrics(
    coords: np.ndarray, *, speed_m_s: float, turn_s: float = 0.0
) -> tuple[LineString, tuple[XY, ...], float, int, float]:
    """(path, waypoints, length_m, turns, flight_time_s) of a polyline flown at ``speed_m_s``, each turn
    costing ``turn_s`` extra (as the coverage planner counts it)."""
    coords = dedupe(np.asarray(coords, dtype=float))
    if len(coords) < 2:
        raise PlanningError(
            "the pattern has fewer than two distinct waypoints", code="plan.patterns.pattern_has_fewer_two"
        )
    path = LineString(coords)
    length = float(path.length)
    waypoints = tuple((float(x), float(y)) for x, y in coords)
    turns = count_turns(coords)
    return path, waypoints, length, turns, length / speed_m_s + turns * turn_s


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number >= 0, else raise PlanningError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanningError(
            f"{name} must be a number, got {value!r}",
            code="plan.patterns.number",
            params={"name": name, "value": repr(value)},
        )
    if not math.isfinite(value):
        raise PlanningError(
            f"{name} must be finite, got {value!r}",
            code="plan.patterns.finite",
            params={"name": name, "value": repr(value)},
        )
    if value < 0:
        raise PlanningError(
            f"{name} must be >= 0, got {value!r}",
            code="plan.patterns.failed",
            params={"name": name, "value": repr(value)},
        )
    return float(value)


def _check_count(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PlanningError(
            f"{name} must be an integer >= {minimum}, got {value!r}",
            code="plan.patterns.integer",
            params={"name": name, "minimum": minimum, "value": repr(value)},
        )
    return value


def perimeter(
    area: Polygon,
    *,
    inset_m: float,
    speed_m_s: float = 8.0,
    turn_s: float = 3.0,
    laps: int = 1,
    clockwise: bool = False,
    start: PointLike | None = None,
) -> PerimeterPlan:
    """A closed patrol loop ``inset_m`` inside the area's outer boundary (keeping clear of its holes too).

    >>> from shapely.geometry import box
    >>> plan = perimeter(box(0, 0, 100, 50), inset_m=10, speed_m_s=5, turn_s=2)
    >>> plan.length_m, plan.turns, plan.flight_time_s, plan.waypoints[0] == plan.waypoints[-1]
    (220.0, 3, 50.0, True)
    """
    area = shapely.force_2d(validate_area(area, name="area"))
    inset = check_nonnegative("inset_m", inset_m)
    speed = check_positive("speed_m_s", speed_m_s)
    turn = check_nonnegative("turn_s", turn_s)
    laps = _check_count("laps", laps)
    # Near-coincident vertices make GEOS's offsetting divide by zero (numpy warns); the result is still
    # checked below.
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = area.buffer(-inset, join_style="mitre") if inset > 0 else area
    if inner.is_empty or inner.area <= 0:
        width = 2 * _max_inscribed_radius(area)
        raise PlanningError(
            f"inset_m {inset:g} leaves nothing of the area (it is at most {width:.1f} m across)",
            code="plan.patterns.inset_m_leaves_nothing",
            params={"inset": f"{inset:g}", "width": f"{width:.1f}"},
        )
    if inner.geom_type != "Polygon":
        parts = len(getattr(inner, "geoms", []))
        raise PlanningError(
            f"inset_m {inset:g} splits the area into {parts} separate loops; reduce inset_m "
            "or patrol each part separately",
            code="plan.patterns.inset_m_splits_area",
            params={"inset": f"{inset:g}", "parts": parts},
        )
    loop = dedupe(np.asarray(orient(inner, sign=-1.0 if clockwise else 1.0).exterior.coords))[:-1]
    if len(loop) > 1 and math.dist(loop[0], loop[-1]) <= 1e-6:
        loop = loop[:-1]  # a near-duplicate of the start would be merged away on closing
    if start is not None:
        sx, sy = as_xy("start", start)
        first = int(np.argmin(np.hypot(loop[:, 0] - sx, loop[:, 1] - sy)))
        loop = np.roll(loop, -first, axis=0)
    coords = np.vstack([np.tile(loop, (laps, 1)), loop[:1]])
    path, waypoints, length, turns, time_s = metrics(coords, speed_m_s=speed, turn_s=turn)
    return PerimeterPlan(path, waypoints, length, turns, time_s, inset_m=inset, laps=laps)


def _max_inscribed_radius(area: Polygon) -> float:
    circle = shapely.maximum_inscribed_circle(area, tolerance=0.01)
    return float(circle.length)


def _offset_coords(line: LineString, offset_m: float) -> np.ndarray:
    """Coordinates of the line offset left (+) or right (-), in the line's direction."""
    if abs(offset_m) < 1e-9:
        return np.asarray(line.coords)
    curve = line.offset_curve(offset_m, quad_segs=8, join_style="round")
    if isinstance(curve, MultiLineString):
        merged = linemerge(curve)
        parts = list(merged.geoms) if isinstance(merged, MultiLineString) else [merged]
        # Keep the pieces in the order they run along the original line.
        parts.sort(key=lambda part: line.project(Point(part.coords[0])))
        return np.vstack([np.asarray(p.coords) for p in parts])
    if curve.is_empty:
        raise PlanningError(
            f"the corridor line cannot be offset by {offset_m:g} m (it folds onto itself)",
            code="plan.patterns.corridor_line_cannot_offset",
            params={"offset_m": f"{offset_m:g}"},
        )
    return np.asarray(curve.coords)


def _check_line(line: object, *, name: str) -> LineString:
    if not isinstance(line, LineString):
        raise PlanningError(
            f"{name} must be a shapely LineString, got {type(line).__name__}",
            code="plan.patterns.shapely_linestring",
            params={"name": name, "name2": type(line).__name__},
        )
    if line.is_empty:
        raise PlanningError(f"{name} is empty", code="plan.patterns.empty", params={"name": name})
    coords = np.asarray(line.coords)
    if not np.isfinite(coords).all():
        raise PlanningError(
            f"{name} has a non-finite (NaN/inf) coordinate",
            code="plan.patterns.has_non_finite_nan",
            params={"name": name},
        )
    if len(dedupe(coords[:, :2])) < 2 or line.length <= 0:
        raise PlanningError(
            f"{name} needs at least two distinct points",
            code="plan.patterns.needs_least_two_distinct",
            params={"name": name},
        )
    return LineString(coords[:, :2])


def corridor(
    line: LineString,
    *,
    width_m: float,
    swath_m: float,
    speed_m_s: float = 8.0,
    turn_s: float = 3.0,
) -> CorridorPlan:
    """Boustrophedon passes along a line (road, river, fence), enough of them to cover ``width_m``.

    Passes are spaced ``width_m / passes`` apart and centred on the line; the first runs along the line's
    direction on its right-hand edge, the next comes back, and so on.

    >>> plan = corridor(LineString([(0, 0), (100, 0)]), width_m=40, swath_m=20, speed_m_s=10, turn_s=3)
    >>> plan.passes, plan.offsets_m, plan.length_m, plan.turns, plan.flight_time_s
    (2, (-10.0, 10.0), 220.0, 2, 28.0)
    """
    line = _check_line(line, name="line")
    width = check_positive("width_m", width_m)
    swath = check_positive("swath_m", swath_m)
    speed = check_positive("speed_m_s", speed_m_s)
    turn = check_nonnegative("turn_s", turn_s)
    passes = max(1, math.ceil(width / swath - 1e-9))
    spacing = width / passes
    # Symmetric about the line so an odd pass count flies the line itself (offset exactly 0).
    offsets = tuple((i - (passes - 1) / 2) * spacing for i in range(passes))
    legs = []
    for i, offset in enumerate(offsets):
        coords = _offset_coords(line, offset)
        legs.append(coords if i % 2 == 0 else coords[::-1])
    path, waypoints, length, turns, time_s = metrics(np.vstack(legs), speed_m_s=speed, turn_s=turn)
    return CorridorPlan(path, waypoints, length, turns, time_s, passes=passes, offsets_m=offsets)


def circle_coords(
    center: XY, radius_m: float, *, points: int, clockwise: bool, start_bearing_deg: float = 0.0
) -> np.ndarray:
    """``points`` vertices on a circle (closed: the first repeated at the end), from a compass bearing."""
    step = 2 * math.pi / points * (1 if clockwise else -1)
    bearings = math.radians(start_bearing_deg) + step * np.arange(points + 1)
    xs = center[0] + radius_m * np.sin(bearings)
    ys = center[1] + radius_m * np.cos(bearings)
    xy = np.column_stack([xs, ys])
    xy[-1] = xy[0]
    return xy


def orbit(
    center: PointLike,
    *,
    radius_m: float,
    dwell_s: float,
    clockwise: bool = True,
    speed_m_s: float = 5.0,
    points: int = 24,
    start_bearing_deg: float = 0.0,
) -> OrbitPlan:
    """Overwatch of a point: circle it at ``radius_m`` for ``dwell_s`` seconds at ``speed_m_s``.

    The path starts on the circle at ``start_bearing_deg`` (0 = north of the centre) and is cut where the
    dwell time runs out, so ``flight_time_s == dwell_s``.

    >>> plan = orbit((0, 0), radius_m=50, dwell_s=120, speed_m_s=5)
    >>> plan.flight_time_s, round(plan.laps, 2)
    (120.0, 1.92)
    """
    cx, cy = as_xy("center", center)
    radius = check_positive("radius_m", radius_m)
    dwell = check_positive("dwell_s", dwell_s)
    speed = check_positive("speed_m_s", speed_m_s)
    points = _check_count("points", points, minimum=6)
    if (
        isinstance(start_bearing_deg, bool)
        or not isinstance(start_bearing_deg, int | float)
        or not math.isfinite(start_bearing_deg)
    ):
        raise PlanningError(
            f"start_bearing_deg must be a finite number, got {start_bearing_deg!r}",
            code="plan.patterns.start_bearing_deg_finite",
            params={"start_bearing_deg": repr(start_bearing_deg)},
        )
    ring = circle_coords(
        (cx, cy), radius, points=points, clockwise=clockwise, start_bearing_deg=start_bearing_deg
    )
    lap_m = float(LineString(ring).length)
    total_m = speed * dwell
    laps = total_m / lap_m
    whole = math.ceil(laps)
    coords = np.vstack([ring[:-1]] * whole + [ring[:1]])
    path = LineString(coords)
    if total_m < whole * lap_m:
        path = substring(path, 0.0, total_m)
    path_coords = np.asarray(path.coords)
    _, waypoints, length, turns, _ = metrics(path_coords, speed_m_s=speed)
    return OrbitPlan(
        LineString(dedupe(path_coords)),
        waypoints,
        length,
        turns,
        dwell,
        center=(cx, cy),
        radius_m=radius,
        laps=laps,
        clockwise=clockwise,
    )


def closed_loop_coords(waypoints: Sequence[XY]) -> np.ndarray:
    """The waypoints as an array, closed (first point repeated at the end) if it is not already."""
    xy = np.asarray(waypoints, dtype=float)
    if len(xy) and not np.allclose(xy[0], xy[-1]):
        xy = np.vstack([xy, xy[:1]])
    return xy
