"""Shortest transit paths around no-fly zones, in a local metric frame (metres).

A visibility graph over the vertices of the no-fly zones grown by the clearance, searched with A* and
built lazily: only the vertices A* expands get their sight lines tested, in one vectorised GEOS query.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import shapely
from shapely.geometry import LinearRing, LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import nearest_points
from shapely.strtree import STRtree

from flightplans.errors import PlanningError
from flightplans.validate import check_finite_point, validate_area

# Buffer arcs are drawn with this many segments per quarter circle. Their chords sag inside the true
# clearance circle (GEOS rounds a fillet to whole segments, so a chord can span up to 1.5x the nominal
# angle) and GEOS simplifies the input a little: _grow measures the result and grows it until every
# point of its boundary keeps the clearance.
_QUAD_SEGS = 3
# A start/goal this close to a grown zone's boundary counts as on it, not inside (float noise).
_ON_EDGE_M = 1e-6


PointLike: TypeAlias = Point | tuple[float, float] | Sequence[float]


def as_xy(name: str, point: PointLike) -> tuple[float, float]:
    """(x, y) floats of a shapely Point or an (x, y) pair, checked finite."""
    if isinstance(point, Point):
        if point.is_empty:
            raise PlanningError(
                f"{name} is an empty point", code="plan.routing.empty_point", params={"name": name}
            )
        return check_finite_point(name, point.x, point.y)
    if isinstance(point, BaseGeometry):
        raise PlanningError(
            f"{name} must be a point, got {point.geom_type}",
            code="plan.routing.point",
            params={"name": name, "geom_type": point.geom_type},
        )
    try:
        x, y = point
    except (TypeError, ValueError) as exc:
        raise PlanningError(
            f"{name} must be an (x, y) pair, got {point!r}",
            code="plan.routing.x_y_pair",
            params={"name": name, "point": repr(point)},
        ) from exc
    return check_finite_point(name, x, y)


def check_zones(nofly: Sequence[Polygon], *, name: str = "nofly") -> list[Polygon]:
    """Validate no-fly polygons (metres); a MultiPolygon is split into its parts."""
    if isinstance(nofly, BaseGeometry):
        raise PlanningError(
            f"{name} must be a list of polygons, got a single {nofly.geom_type}",
            code="plan.routing.list_polygons_single",
            params={"name": name, "geom_type": nofly.geom_type},
        )
    if isinstance(nofly, str) or not isinstance(nofly, Iterable):
        raise PlanningError(
            f"{name} must be a list of polygons, got {type(nofly).__name__}",
            code="plan.routing.list_polygons",
            params={"name": name, "name2": type(nofly).__name__},
        )
    zones: list[Polygon] = []
    for i, zone in enumerate(nofly):
        parts = list(zone.geoms) if isinstance(zone, MultiPolygon) else [zone]
        for j, part in enumerate(parts):
            label = f"{name}[{i}]" if len(parts) == 1 else f"{name}[{i}] part {j}"
            # Planning is 2-D: a zone's z (if it came from 3-D GeoJSON) is dropped.
            zones.append(shapely.force_2d(validate_area(part, name=label, max_area_m2=math.inf)))
    return zones


@dataclass(frozen=True, slots=True)
class Obstacles:
    """No-fly zones grown by a clearance, merged, ready for repeated routing queries."""

    grown: tuple[Polygon, ...]
    clearance_m: float
    tree: STRtree
    zones: tuple[Polygon, ...]  # as given (boundary holes last), for "inside zone i" and escapes
    vertices: np.ndarray  # (n, 2) corners a shortest path can bend around
    neighbours: np.ndarray  # (n, 2, 2) each corner's previous and next ring vertex
    boundary: Polygon | None

    @classmethod
    def build(
        cls,
        nofly: Sequence[Polygon],
        *,
        clearance_m: float = 10.0,
        boundary: Polygon | None = None,
    ) -> Obstacles:
        """Grow, merge and index the zones once; reuse for many shortest_path calls."""
        if not (isinstance(clearance_m, int | float) and math.isfinite(clearance_m)) or clearance_m < 0:
            raise PlanningError(
                f"clearance_m must be a finite number >= 0, got {clearance_m!r}",
                code="plan.routing.clearance_m_finite_number",
                params={"clearance_m": repr(clearance_m)},
            )
        zones = check_zones(nofly)
        if boundary is not None:
            boundary = shapely.force_2d(validate_area(boundary, name="boundary", max_area_m2=math.inf))
            # The boundary's holes are no-fly zones too.
            zones.extend(Polygon(ring) for ring in boundary.interiors)
            boundary = Polygon(boundary.exterior)
        inflated: list[Polygon] = []
        if zones:
            # Sub-micrometre clearances are below float noise at these coordinates: treat them as none.
            inflated = [_grow(z, clearance_m) for z in zones] if clearance_m > 1e-6 else list(zones)
        return cls._index(inflated, clearance_m=float(clearance_m), zones=tuple(zones), boundary=boundary)

    def with_obstacle(self, extra: Polygon) -> Obstacles:
        """These obstacles plus one more (already grown, trusted) polygon, e.g. a routing constraint."""
        return self._index(
            [*self.grown, extra], clearance_m=self.clearance_m, zones=self.zones, boundary=self.boundary
        )

    @classmethod
    def _index(
        cls,
        inflated: list[Polygon],
        *,
        clearance_m: float,
        zones: tuple[Polygon, ...],
        boundary: Polygon | None,
    ) -> Obstacles:
        grown: list[Polygon] = []
        if inflated:
            merged = shapely.union_all(inflated)
            # Degenerate overlaps can leave slivers of lines or points in the union: keep the areas.
            grown = [g for g in shapely.get_parts(merged) if isinstance(g, Polygon) and g.area > 0]
        corners: list[np.ndarray] = []
        for poly in grown:
            poly = orient(poly, sign=1.0)
            for ring in (poly.exterior, *poly.interiors):
                corners.append(_ring_corners(ring, free_inside=False))
        if boundary is not None:
            corners.append(_ring_corners(orient(boundary, sign=1.0).exterior, free_inside=True))
        table = np.concatenate(corners) if corners else np.empty((0, 3, 2))
        if boundary is not None and len(table):
            # Corners of grown zones that stick out of the boundary can never be used.
            table = table[shapely.covers(boundary, shapely.points(table[:, 0]))]
        return cls(
            grown=tuple(grown),
            clearance_m=clearance_m,
            tree=STRtree(grown),
            zones=zones,
            vertices=table[:, 0],
            neighbours=table[:, 1:],
            boundary=boundary,
        )

    def inside_zone(self, xy: tuple[float, float]) -> int | None:
        """Index of the (un-grown) no-fly zone containing ``xy`` in its interior, or None."""
        p = Point(xy)
        for i, zone in enumerate(self.zones):
            if zone.contains_properly(p) and zone.exterior.distance(p) > _ON_EDGE_M:
                return i
        return None

    def escape(self, xy: tuple[float, float]) -> tuple[float, float]:
        """Nearest point just outside the grown zone containing ``xy`` (``xy`` itself when outside all)."""
        zone = self.blocking_zone(xy)
        if zone is None:
            return xy
        edge, _ = nearest_points(self.grown[zone].boundary, Point(xy))
        dx, dy = edge.x - xy[0], edge.y - xy[1]
        d = math.hypot(dx, dy)
        # Step a millimetre past the edge so the point is unambiguously outside.
        out = (edge.x + dx / d * 1e-3, edge.y + dy / d * 1e-3) if d > 0 else (edge.x, edge.y)
        return out if self.blocking_zone(out) is None else xy

    def blocking_zone(self, xy: tuple[float, float]) -> int | None:
        """Index of the grown zone strictly containing ``xy``, or None."""
        p = Point(xy)
        for i in self.tree.query(p, predicate="intersects"):
            zone = self.grown[int(i)]
            if (
                zone.contains_properly(p)
                and zone.exterior.distance(p) > _ON_EDGE_M
                and not any(Polygon(hole).covers(p) for hole in zone.interiors)
            ):
                return int(i)
        return None

    def visible(self, origin: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Boolean mask: which straight legs origin -> targets[i] stay out of every grown zone."""
        n = len(targets)
        if n == 0:
            return np.zeros(0, dtype=bool)
        coords = np.empty((n, 2, 2))
        coords[:, 0, :] = origin
        coords[:, 1, :] = targets
        degenerate = np.all(coords[:, 0, :] == coords[:, 1, :], axis=1)
        lines = shapely.linestrings(coords)
        ok = np.ones(n, dtype=bool)
        if len(self.grown):
            # A leg enters a zone's interior iff it crosses the zone or lies within it; legs that run
            # along an edge or touch a corner are fine.
            for predicate in ("crosses", "within"):
                hits = self.tree.query(lines, predicate=predicate)
                ok[hits[0]] = False
        if self.boundary is not None:
            ok &= shapely.covered_by(lines, self.boundary)
        ok[degenerate] = True
        return ok


def _grow(zone: Polygon, clearance_m: float) -> Polygon:
    """The zone buffered so that its boundary is at least ``clearance_m`` from the zone everywhere."""
    distance = clearance_m * 1.02
    for _ in range(5):
        grown = zone.buffer(distance, quad_segs=_QUAD_SEGS, join_style="round")
        kept = grown.boundary.distance(zone)
        if kept >= clearance_m:
            return grown
        distance *= clearance_m / kept * 1.0001 if kept > 0 else 2.0
    return zone.buffer(clearance_m * 1.25, quad_segs=4 * _QUAD_SEGS, join_style="round")


def _ring_corners(ring: LinearRing, *, free_inside: bool) -> np.ndarray:
    """(k, 3, 2) [corner, previous, next] of the ring vertices that free space wraps around.

    Rings come from orient(sign=1): the polygon lies on the left of the traversal, so a left turn is a
    corner of the polygon. A shortest path only bends at corners of obstacles that point into free
    space: obstacle corners (left turns) or, for the boundary, its reflex corners (right turns).
    """
    xy = np.asarray(ring.coords)[:-1]
    prev_xy = np.roll(xy, 1, axis=0)
    next_xy = np.roll(xy, -1, axis=0)
    turn = _cross(xy - prev_xy, next_xy - xy)
    keep = turn < 0 if free_inside else turn > 0
    return np.stack([xy[keep], prev_xy[keep], next_xy[keep]], axis=1)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def shortest_path(
    start: PointLike,
    goal: PointLike,
    *,
    nofly: Sequence[Polygon] | Obstacles = (),
    clearance_m: float = 10.0,
    boundary: Polygon | None = None,
) -> LineString:
    """Shortest path (metres) from start to goal keeping ``clearance_m`` from every no-fly zone.

    A start or goal within a zone's clearance (but outside the zone) first leaves the margin by the
    shortest way out. Raises PlanningError when start or goal lies inside a zone or outside the boundary,
    or no path exists. Pass a prebuilt ``Obstacles`` as ``nofly`` to reuse it across many calls.

    >>> from shapely.geometry import box
    >>> path = shortest_path((0, 0), (100, 0), nofly=[box(40, -10, 60, 10)], clearance_m=0)
    >>> round(path.length, 1)
    102.5
    """
    obstacles = (
        nofly
        if isinstance(nofly, Obstacles)
        else Obstacles.build(nofly, clearance_m=clearance_m, boundary=boundary)
    )
    start_xy = as_xy("start", start)
    goal_xy = as_xy("goal", goal)
    ends_xy = []
    for label, xy in (("start", start_xy), ("goal", goal_xy)):
        zone = obstacles.inside_zone(xy)
        if zone is not None:
            raise PlanningError(
                f"{label} ({xy[0]:.1f}, {xy[1]:.1f}) is inside no-fly zone {zone}",
                where=xy,
                code="plan.routing.inside_fly_zone",
                params={"label": label, "xy": f"{xy[0]:.1f}", "xy2": f"{xy[1]:.1f}", "zone": zone},
            )
        if obstacles.boundary is not None and not obstacles.boundary.covers(Point(xy)):
            raise PlanningError(
                f"{label} ({xy[0]:.1f}, {xy[1]:.1f}) is outside the boundary",
                where=xy,
                code="plan.routing.outside_boundary",
                params={"label": label, "xy": f"{xy[0]:.1f}", "xy2": f"{xy[1]:.1f}"},
            )
        # Within a zone's clearance (but outside the zone) the path first leaves the clearance margin
        # by the shortest way out (a vehicle already there must be able to get away).
        out = obstacles.escape(xy)
        leg = LineString([xy, out])
        if (
            obstacles.blocking_zone(out) is not None
            or (obstacles.boundary is not None and not obstacles.boundary.covers(Point(out)))
            or any(zone.relate_pattern(leg, "T********") for zone in obstacles.zones if out != xy)
        ):
            raise PlanningError(
                f"{label} ({xy[0]:.1f}, {xy[1]:.1f}) is within the {obstacles.clearance_m:g} m clearance "
                "of the no-fly zones with no way out",
                where=xy,
                code="plan.routing.within_m_clearance_fly",
                params={
                    "label": label,
                    "xy": f"{xy[0]:.1f}",
                    "xy2": f"{xy[1]:.1f}",
                    "clearance_m": f"{obstacles.clearance_m:g}",
                },
            )
        ends_xy.append(out)
    a, b = ends_xy
    middle = _route(a, b, obstacles)
    coords = [start_xy, *middle, goal_xy]
    # Drop the escape legs' duplicates when start/goal were already clear.
    deduped = [coords[0]] + [c for prev, c in itertools.pairwise(coords) if c != prev]
    if len(deduped) == 1:
        deduped.append(deduped[0])
    return LineString(deduped)


def _route(a: tuple[float, float], b: tuple[float, float], obstacles: Obstacles) -> list[tuple[float, float]]:
    """Shortest path between two points outside every grown zone, as a list of vertices."""
    if a == b:
        return [a]
    ends = np.array([a, b])
    if obstacles.visible(ends[0], ends[1:2])[0]:
        return [a, b]
    nodes = np.vstack([ends, obstacles.vertices])
    # Start and goal have no ring neighbours: give them themselves so every line is "tangent" to them.
    neighbours = np.concatenate([np.stack([ends, ends], axis=1), obstacles.neighbours])
    path = _astar(nodes, neighbours, obstacles)
    if path is None:
        raise PlanningError(
            f"no path from ({a[0]:.1f}, {a[1]:.1f}) to ({b[0]:.1f}, {b[1]:.1f}) "
            f"around the no-fly zones with {obstacles.clearance_m:g} m clearance",
            where=b,
            code="plan.routing.path_around_fly_zones",
            params={
                "a": f"{a[0]:.1f}",
                "a2": f"{a[1]:.1f}",
                "b": f"{b[0]:.1f}",
                "b2": f"{b[1]:.1f}",
                "clearance_m": f"{obstacles.clearance_m:g}",
            },
        )
    return [(float(x), float(y)) for x, y in nodes[path]]


def _astar(nodes: np.ndarray, neighbours: np.ndarray, obstacles: Obstacles) -> list[int] | None:
    n = len(nodes)
    heuristic = np.hypot(*(nodes - nodes[1]).T)
    cost = np.full(n, np.inf)
    cost[0] = 0.0
    parent = np.full(n, -1, dtype=np.int64)
    closed = np.zeros(n, dtype=bool)
    queue: list[tuple[float, int]] = [(heuristic[0], 0)]
    while queue:
        _, u = heapq.heappop(queue)
        if closed[u]:
            continue
        if u == 1:
            path = [1]
            while path[-1] != 0:
                path.append(int(parent[path[-1]]))
            return path[::-1]
        closed[u] = True
        candidates = np.flatnonzero(~closed)
        step = np.hypot(*(nodes[candidates] - nodes[u]).T)
        # Only test sight lines that could improve a node's cost and that graze their corner (a path
        # that would cut into the obstacle at the corner never bends there).
        ray = nodes[candidates] - nodes[u]
        side_prev = _cross(ray, neighbours[candidates, 0] - nodes[candidates])
        side_next = _cross(ray, neighbours[candidates, 1] - nodes[candidates])
        useful = (cost[u] + step < cost[candidates]) & (side_prev * side_next >= 0)
        candidates, step = candidates[useful], step[useful]
        seen = obstacles.visible(nodes[u], nodes[candidates])
        for v, d in zip(candidates[seen], step[seen], strict=True):
            new_cost = cost[u] + d
            if new_cost < cost[v]:
                cost[v] = new_cost
                parent[v] = u
                heapq.heappush(queue, (new_cost + heuristic[v], int(v)))
    return None
