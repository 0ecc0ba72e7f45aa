"""Cordon planning: ring radii from a flee model, stations where roads cross the rings, and a min-max
assignment of drones to stations (control the points, seal the lines, close the ring).

Pure geometry in a local metric frame (metres east, north of the scene). Imports nothing of ours but
flightplans.

>>> inner, middle, outer = cordon_radii(flee_speed_m_s=2.0, elapsed_s=150.0)
>>> round(inner), round(middle), round(outer)
(300, 480, 750)
>>> st = ring_stations((0.0, 0.0), 300.0, roads=(), count=4)
>>> [(round(s.x), round(s.y), s.source) for s in st]
[(0, 300, 'even'), (300, 0, 'even'), (0, -300, 'even'), (-300, 0, 'even')]
>>> minmax_assignment([[10.0, 50.0], [20.0, 30.0]])
({0: 0, 1: 1}, 30.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from flightplans.errors import PlanningError

XY = tuple[float, float]
RING_FACTORS = (1.0, 1.6, 2.5)  # middle and outer ring radii as multiples of the inner one


@dataclass(frozen=True, slots=True)
class Station:
    """A point of a ring to hold: where a road crosses it (``source`` "road") or evenly spaced ("even").

    ``look_deg`` is the heading (clockwise from north) a drone holding there faces: along the road, out
    of the ring (where a suspect leaving the scene comes from), or outward when no road is known.
    """

    ring: int
    index: int
    x: float
    y: float
    look_deg: float
    source: str


@dataclass(frozen=True, slots=True)
class DroppedStation:
    """A station that could not be placed, and why."""

    ring: int
    x: float
    y: float
    reason: str


def cordon_radii(
    *,
    flee_speed_m_s: float,
    elapsed_s: float,
    min_inner_m: float = 150.0,
    factors: Sequence[float] = RING_FACTORS,
) -> tuple[float, ...]:
    """Inner, middle and outer radii: how far a suspect may have got (speed x time) and rings beyond it.

    The radii grow with ``elapsed_s``: a cordon started later is wider.
    """
    if not (math.isfinite(flee_speed_m_s) and flee_speed_m_s > 0):
        raise PlanningError(
            f"flee_speed_m_s must be a positive number, got {flee_speed_m_s!r}",
            code="plan.cordon.flee_speed_m_s",
            params={"flee_speed_m_s": repr(flee_speed_m_s)},
        )
    if not (math.isfinite(elapsed_s) and elapsed_s >= 0):
        raise PlanningError(
            f"elapsed_s must be a number >= 0, got {elapsed_s!r}",
            code="plan.cordon.elapsed_s_number",
            params={"elapsed_s": repr(elapsed_s)},
        )
    inner = max(min_inner_m, flee_speed_m_s * elapsed_s)
    return tuple(inner * f for f in factors)


def _bearing(dx: float, dy: float) -> float:
    return math.degrees(math.atan2(dx, dy)) % 360.0


def ring_stations(
    center: XY,
    radius_m: float,
    *,
    roads: Sequence[LineString],
    count: int,
    ring: int = 0,
    nofly: Sequence[Polygon] = (),
    clearance_m: float = 30.0,
    merge_m: float = 60.0,
) -> list[Station]:
    """Stations on the circle of ``radius_m`` around ``center``; see ``place_stations`` for dropped ones."""
    return place_stations(
        center,
        radius_m,
        roads=roads,
        count=count,
        ring=ring,
        nofly=nofly,
        clearance_m=clearance_m,
        merge_m=merge_m,
    )[0]


def place_stations(
    center: XY,
    radius_m: float,
    *,
    roads: Sequence[LineString],
    count: int,
    ring: int = 0,
    nofly: Sequence[Polygon] = (),
    clearance_m: float = 30.0,
    merge_m: float = 60.0,
) -> tuple[list[Station], list[DroppedStation]]:
    """Stations where ``roads`` cross the ring (crossings closer than ``merge_m`` become one), else
    ``count`` evenly spaced ones starting north, clockwise. A station inside a no-fly zone (grown by
    ``clearance_m``) slides along the ring to the nearest clear point within 15 degrees, else is dropped.
    """
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise PlanningError(
            f"radius_m must be positive, got {radius_m!r}",
            code="plan.cordon.radius_m_positive",
            params={"radius_m": repr(radius_m)},
        )
    cx, cy = center
    circle = Point(cx, cy).buffer(radius_m, quad_segs=64).exterior
    blocked = unary_union([z.buffer(clearance_m) for z in nofly]) if nofly else Polygon()
    raw: list[tuple[float, float, float, str]] = []
    for road in roads:
        hit = road.intersection(circle)
        points = [hit] if isinstance(hit, Point) else list(getattr(hit, "geoms", []))
        for p in points:
            if not isinstance(p, Point):
                continue
            along = road.project(p)
            a = road.interpolate(max(0.0, along - 5.0))
            b = road.interpolate(min(road.length, along + 5.0))
            road_deg = _bearing(b.x - a.x, b.y - a.y)
            outward = _bearing(p.x - cx, p.y - cy)
            # Of the road's two directions, face the one leading out of the ring.
            diff = abs((road_deg - outward + 180.0) % 360.0 - 180.0)
            look = road_deg if diff <= 90.0 else (road_deg + 180.0) % 360.0
            raw.append((p.x, p.y, look, "road"))
    merged: list[tuple[float, float, float, str]] = []
    for x, y, look, source in sorted(raw, key=lambda r: _bearing(r[0] - cx, r[1] - cy)):
        if any(math.hypot(x - mx, y - my) < merge_m for mx, my, _, _ in merged):
            continue
        merged.append((x, y, look, source))
    if not merged:
        if count < 1:
            raise PlanningError(
                f"count must be >= 1 without roads, got {count!r}",
                code="plan.cordon.count_without_roads",
                params={"count": repr(count)},
            )
        for k in range(count):
            theta = 2 * math.pi * k / count
            x, y = cx + radius_m * math.sin(theta), cy + radius_m * math.cos(theta)
            merged.append((x, y, _bearing(x - cx, y - cy), "even"))
    out: list[Station] = []
    dropped: list[DroppedStation] = []
    for x, y, look, source in merged:
        if not blocked.is_empty and blocked.contains(Point(x, y)):
            moved = _slide(center, radius_m, (x, y), blocked)
            if moved is None:
                dropped.append(
                    DroppedStation(ring, x, y, "inside a no-fly zone (with clearance), no clear point near")
                )
                continue
            x, y = moved
        out.append(Station(ring, len(out), x, y, look, source))
    return out, dropped


def _slide(center: XY, radius_m: float, p: XY, blocked: object) -> XY | None:
    cx, cy = center
    theta0 = math.atan2(p[0] - cx, p[1] - cy)
    for step in range(1, 31):
        for sign in (1, -1):
            theta = theta0 + sign * math.radians(step * 0.5)
            q = (cx + radius_m * math.sin(theta), cy + radius_m * math.cos(theta))
            if not blocked.contains(Point(q)):  # type: ignore[attr-defined]
                return q
    return None


def _max_matching(allowed: list[list[int]], n_right: int) -> dict[int, int]:
    """Maximum bipartite matching (augmenting paths): left i -> right j."""
    match_right: list[int | None] = [None] * n_right

    def augment(i: int, seen: list[bool]) -> bool:
        for j in allowed[i]:
            if seen[j]:
                continue
            seen[j] = True
            if match_right[j] is None or augment(match_right[j], seen):  # type: ignore[arg-type]
                match_right[j] = i
                return True
        return False

    for i in range(len(allowed)):
        augment(i, [False] * n_right)
    return {i: j for j, i in enumerate(match_right) if i is not None}


def minmax_assignment(eta_s: Sequence[Sequence[float]]) -> tuple[dict[int, int], float]:
    """Drones (rows) to stations (columns) manning as many stations as possible, and among those the
    assignment whose latest arrival is earliest (a bottleneck assignment); ``inf`` ETAs are not allowed.

    Returns {drone: station} and the latest ETA (0 with nothing assigned).
    """
    rows = [list(map(float, r)) for r in eta_s]
    if not rows:
        return {}, 0.0
    n_right = len(rows[0])
    if any(len(r) != n_right for r in rows):
        raise PlanningError(
            "eta_s must be a rectangular matrix (drones x stations)",
            code="plan.cordon.eta_s_rectangular_matrix",
        )

    def allowed(limit: float) -> list[list[int]]:
        return [[j for j, t in enumerate(r) if t <= limit] for r in rows]

    finite = sorted({t for r in rows for t in r if math.isfinite(t)})
    if not finite:
        return {}, 0.0
    best = len(_max_matching(allowed(math.inf), n_right))
    lo, hi = 0, len(finite) - 1
    while lo < hi:  # the smallest threshold that still mans ``best`` stations
        mid = (lo + hi) // 2
        if len(_max_matching(allowed(finite[mid]), n_right)) >= best:
            hi = mid
        else:
            lo = mid + 1
    limit = finite[lo]
    matching = _refine(rows, allowed(limit), n_right, best)
    return matching, max((rows[i][j] for i, j in matching.items()), default=0.0)


def _refine(rows: list[list[float]], allowed: list[list[int]], n_right: int, size: int) -> dict[int, int]:
    """Within the bottleneck, prefer quick arrivals: try each drone's edges cheapest first."""
    ordered = [sorted(a, key=rows[i].__getitem__) for i, a in enumerate(allowed)]
    matching = _max_matching(ordered, n_right)
    return matching if len(matching) >= size else _max_matching(allowed, n_right)


def greedy_assignment(eta_s: Sequence[Sequence[float]]) -> tuple[dict[int, int], float]:
    """The baseline: each station in turn takes the drone that reaches it first among those still free."""
    rows = [list(map(float, r)) for r in eta_s]
    if not rows:
        return {}, 0.0
    free = set(range(len(rows)))
    out: dict[int, int] = {}
    for j in range(len(rows[0])):
        options = [(rows[i][j], i) for i in free if math.isfinite(rows[i][j])]
        if not options:
            continue
        _, i = min(options)
        out[i] = j
        free.discard(i)
    return out, max((rows[i][j] for i, j in out.items()), default=0.0)


def road_lines(geojson: dict, *, to_local: object) -> list[LineString]:
    """LineStrings (and MultiLineStrings) of a GeoJSON FeatureCollection in the local frame.

    ``to_local`` maps (lat, lon) to local (x, y). Anything else in the collection is an error naming it.
    """
    if not isinstance(geojson, dict) or geojson.get("type") != "FeatureCollection":
        raise PlanningError(
            "the road layer must be a GeoJSON FeatureCollection",
            code="plan.cordon.road_layer_geojson_featurecollection",
        )
    out: list[LineString] = []
    for k, feature in enumerate(geojson.get("features", [])):
        geom = (feature or {}).get("geometry") or {}
        kind = geom.get("type")
        if kind == "LineString":
            parts = [geom.get("coordinates", [])]
        elif kind == "MultiLineString":
            parts = geom.get("coordinates", [])
        else:
            raise PlanningError(
                f"road feature {k} is a {kind}, not a LineString",
                code="plan.cordon.road_feature_linestring",
                params={"k": k, "kind": kind},
            )
        for coords in parts:
            if len(coords) < 2:
                raise PlanningError(
                    f"road feature {k} has fewer than 2 points",
                    code="plan.cordon.road_feature_has_fewer",
                    params={"k": k},
                )
            out.append(LineString([to_local(lat, lon) for lon, lat, *_ in coords]))  # type: ignore[operator]
    return out


__all__ = [
    "DroppedStation",
    "Station",
    "cordon_radii",
    "greedy_assignment",
    "minmax_assignment",
    "place_stations",
    "ring_stations",
    "road_lines",
]
