"""Shortest flyable routes around no-fly zones, in a local metric frame.

A visibility graph over the corners of the no-fly zones (grown by a safety margin) gives the shortest path
that never enters a zone: with polygonal obstacles the shortest path bends only at obstacle corners.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame

XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class NoFlyZone:
    """A named no-fly polygon in WGS84 (lon, lat) order, as GeoJSON has it."""

    name: str
    polygon_lonlat: Polygon


@dataclass(frozen=True, slots=True)
class Route:
    """A flyable route: ``points_xy`` in the frame's metres, from start to goal."""

    points_xy: tuple[XY, ...]
    length_m: float

    @property
    def legs(self) -> tuple[tuple[XY, XY], ...]:
        """Consecutive (from, to) pairs."""
        return tuple(zip(self.points_xy[:-1], self.points_xy[1:], strict=True))


class Airspace:
    """No-fly zones in one local frame, ready to route around.

    >>> from shapely.geometry import box
    >>> frame = LocalFrame(39.82, 109.98)
    >>> zone = NoFlyZone("block", frame.to_wgs84(box(-100, -100, 100, 100)))
    >>> space = Airspace(frame, [zone], margin_m=20)
    >>> route = space.route_xy((-500, 0), (500, 0))
    >>> route.length_m > 1000
    True
    """

    def __init__(self, frame: LocalFrame, zones: Sequence[NoFlyZone], *, margin_m: float = 30.0) -> None:
        if margin_m < 0 or not math.isfinite(margin_m):
            raise PlanningError(f"margin_m must be a finite number >= 0, got {margin_m!r}")
        self.frame = frame
        self.zones = tuple(zones)
        self.margin_m = margin_m
        self._zone_xy: list[tuple[str, BaseGeometry]] = []
        obstacles: list[BaseGeometry] = []
        corners: list[XY] = []
        for zone in self.zones:
            local = frame.to_local(zone.polygon_lonlat)
            if not local.is_valid or local.area <= 0:
                raise PlanningError(f"no-fly zone {zone.name!r} is not a valid polygon")
            self._zone_xy.append((zone.name, local))
            obstacles.append(local.buffer(margin_m, quad_segs=4))
            # Corners sit a little outside the obstacle so legs between them only graze it.
            grown = local.buffer(margin_m * 1.15 + 2.0, join_style="mitre", mitre_limit=3.0)
            for poly in getattr(grown, "geoms", [grown]):
                corners.extend((float(x), float(y)) for x, y in list(poly.exterior.coords)[:-1])
        self._obstacles = unary_union(obstacles) if obstacles else Polygon()
        shapely.prepare(self._obstacles)
        self._corners = [c for c in corners if not self._inside(c)]
        self._corner_edges: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(self._corners))}
        for i in range(len(self._corners)):
            for j in range(i + 1, len(self._corners)):
                a, b = self._corners[i], self._corners[j]
                if self.leg_clear(a, b):
                    d = math.dist(a, b)
                    self._corner_edges[i].append((j, d))
                    self._corner_edges[j].append((i, d))

    def _inside(self, p: XY) -> bool:
        return bool(self._obstacles.contains(Point(p)))

    def zone_at(self, p: XY) -> str | None:
        """The name of the no-fly zone (without margin) that contains ``p``, if any."""
        pt = Point(p)
        for name, poly in self._zone_xy:
            if poly.contains(pt):
                return name
        return None

    def leg_clear(self, a: XY, b: XY) -> bool:
        """True when the straight leg a -> b stays out of every zone grown by the margin."""
        if self._obstacles.is_empty:
            return True
        if a == b:
            return not self._inside(a)
        line = LineString([a, b])
        if not self._obstacles.intersects(line):
            return True
        # Touching the boundary (grazing a corner) is allowed; entering the interior is not.
        return float(self._obstacles.intersection(line).length) < 0.5

    def leg_violations(self, a: XY, b: XY) -> list[str]:
        """Names of the zones (without margin) that the leg a -> b enters."""
        line = LineString([a, b]) if a != b else Point(a)
        return [
            name
            for name, poly in self._zone_xy
            if poly.intersection(line).length > 0.5 or poly.contains(line)
        ]

    def route_xy(self, start: XY, goal: XY) -> Route:
        """The shortest route start -> goal avoiding every zone; PlanningError if the goal is in one."""
        zone = self.zone_at(goal)
        if zone is not None:
            raise PlanningError(f"destination is inside no-fly zone {zone!r}", where=goal)
        if self.leg_clear(start, goal):
            return Route((start, goal), math.dist(start, goal))
        n = len(self._corners)
        start_id, goal_id = n, n + 1
        points = [*self._corners, start, goal]

        def neighbours(k: int) -> list[tuple[int, float]]:
            if k == start_id:
                # A vehicle that starts inside a margin (it drifted in) may still fly out of it.
                return [
                    (i, math.dist(start, c)) for i, c in enumerate(self._corners) if self._leg_from(start, c)
                ]
            out = list(self._corner_edges[k])
            if self.leg_clear(points[k], goal):
                out.append((goal_id, math.dist(points[k], goal)))
            return out

        dist = {start_id: 0.0}
        prev: dict[int, int] = {}
        heap = [(math.dist(start, goal), 0.0, start_id)]
        while heap:
            _, d, k = heapq.heappop(heap)
            if k == goal_id:
                break
            if d > dist.get(k, math.inf):
                continue
            for j, w in neighbours(k):
                nd = d + w
                if nd < dist.get(j, math.inf):
                    dist[j] = nd
                    prev[j] = k
                    heapq.heappush(heap, (nd + math.dist(points[j], goal), nd, j))
        if goal_id not in dist:
            raise PlanningError("no route around the no-fly zones reaches the destination", where=goal)
        path = [goal_id]
        while path[-1] != start_id:
            path.append(prev[path[-1]])
        pts = tuple(points[k] for k in reversed(path))
        return Route(pts, dist[goal_id])

    def _leg_from(self, start: XY, c: XY) -> bool:
        if self.leg_clear(start, c):
            return True
        if not self._inside(start):
            return False
        # Starting inside the grown margin: only the part of the leg past the margin must be clear.
        line = LineString([start, c])
        outside = line.difference(self._obstacles)
        return (
            float(outside.length) >= line.length - (2 * self.margin_m + 1.0)
            and self._count_entries(line) <= 1
        )

    def _count_entries(self, line: LineString) -> int:
        inter = self._obstacles.intersection(line)
        return len(getattr(inter, "geoms", [inter])) if not inter.is_empty else 0

    def route(self, start_latlon: tuple[float, float], goal_latlon: tuple[float, float]) -> Route:
        """The shortest route between two WGS84 (lat, lon) points, in this frame's metres."""
        return self.route_xy(
            self.frame.point_to_local(*start_latlon), self.frame.point_to_local(*goal_latlon)
        )

    def to_latlon(self, route: Route) -> list[tuple[float, float]]:
        """The route's points as WGS84 (lat, lon)."""
        return [self.frame.point_to_wgs84(x, y) for x, y in route.points_xy]
