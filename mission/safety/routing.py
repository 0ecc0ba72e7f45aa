"""Flyable routes for dispatch: WGS84 in, routes around the active no-fly zones out.

The geometry is flightplans.routing's (visibility graph around zones grown by a clearance). What dispatch
adds: zones are named; a vehicle that has drifted into a clearance margin first leaves it by the shortest
way; a scene inside a margin (not the zone itself) is watched from the margin's edge.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.routing import Obstacles, shortest_path
from mission.safety.rules import route_clearance_m

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
    """No-fly zones in one local frame, ready to route around many times.

    >>> from shapely.geometry import box
    >>> frame = LocalFrame(39.82, 109.98)
    >>> zone = NoFlyZone("block", frame.to_wgs84(box(-100, -100, 100, 100)))
    >>> space = Airspace(frame, [zone], margin_m=20)
    >>> route = space.route_xy((-500, 0), (500, 0))
    >>> route.length_m > 1000
    True
    """

    def __init__(self, frame: LocalFrame, zones: Sequence[NoFlyZone], *, margin_m: float = 30.0) -> None:
        if not (math.isfinite(margin_m) and margin_m >= 0):
            raise PlanningError(
                f"margin_m must be a finite number >= 0, got {margin_m!r}",
                code="safety.margin_m_finite_number",
                params={"margin_m": repr(margin_m)},
            )
        self.frame = frame
        self.zones = tuple(zones)
        self.margin_m = margin_m
        self._zone_xy: list[tuple[str, Polygon]] = []
        for zone in self.zones:
            local = frame.to_local(zone.polygon_lonlat)
            if not isinstance(local, Polygon) or not local.is_valid or local.area <= 0:
                raise PlanningError(
                    f"no-fly zone {zone.name!r} is not a valid polygon",
                    code="safety.fly_zone_valid_polygon",
                    params={"name": repr(zone.name)},
                )
            self._zone_xy.append((zone.name, local))
        self.obstacles = Obstacles.build([p for _, p in self._zone_xy], clearance_m=margin_m)

    @property
    def zones_xy(self) -> list[tuple[str, Polygon]]:
        """(name, polygon in metres) of every zone, without the margin."""
        return list(self._zone_xy)

    def zone_at(self, p: XY) -> str | None:
        """The name of the no-fly zone (without margin) that contains ``p``, if any."""
        pt = Point(p)
        return next((name for name, poly in self._zone_xy if poly.contains(pt)), None)

    def in_margin(self, p: XY) -> bool:
        """Whether ``p`` is inside a zone grown by the margin."""
        return self.obstacles.blocking_zone(p) is not None

    def leg_clear(self, a: XY, b: XY) -> bool:
        """True when the straight leg a -> b stays out of every zone grown by the margin."""
        return bool(self.obstacles.visible(_arr(a), _arr(b)[None, :])[0])

    def leg_violations(self, a: XY, b: XY) -> list[str]:
        """Names of the zones (without margin) that the leg a -> b enters."""
        geom = LineString([a, b]) if a != b else Point(a)
        return [
            name
            for name, poly in self._zone_xy
            if poly.intersection(geom).length > 0.01 or poly.contains(geom)
        ]

    def _escape(self, p: XY) -> XY:
        """The nearest point just outside the grown zone containing ``p``."""
        index = self.obstacles.blocking_zone(p)
        if index is None:
            return p
        grown = self.obstacles.grown[index]
        edge = nearest_points(grown.exterior, Point(p))[0]
        dx, dy = edge.x - p[0], edge.y - p[1]
        d = math.hypot(dx, dy) or 1.0
        out = (edge.x + dx / d * 0.5, edge.y + dy / d * 0.5)
        return out if self.obstacles.blocking_zone(out) is None else self._escape(out)

    def route_xy(self, start: XY, goal: XY) -> Route:
        """The shortest route start -> goal avoiding every zone; PlanningError if the goal is in a zone."""
        zone = self.zone_at(goal)
        if zone is not None:
            raise PlanningError(
                f"destination is inside no-fly zone {zone!r}",
                where=goal,
                code="safety.destination_inside_fly_zone",
                params={"zone": repr(zone)},
            )
        return _route(self, start, goal)

    def route(self, start_latlon: tuple[float, float], goal_latlon: tuple[float, float]) -> Route:
        """The shortest route between two WGS84 (lat, lon) points, in this frame's metres."""
        return self.route_xy(
            self.frame.point_to_local(*start_latlon), self.frame.point_to_local(*goal_latlon)
        )

    def to_latlon(self, route: Route) -> list[tuple[float, float]]:
        """The route's points as WGS84 (lat, lon)."""
        return [self.frame.point_to_wgs84(x, y) for x, y in route.points_xy]


def _arr(p: XY) -> np.ndarray:
    return np.asarray(p, dtype=float)


def _route(space: Airspace, start: XY, goal: XY) -> Route:
    head: list[XY] = [start]
    a = space._escape(start)
    if a != start:
        head.append(a)
    b = space._escape(goal)
    line = shortest_path(a, b, nofly=space.obstacles) if a != b else LineString([a, b])
    points = [*head, *[(float(x), float(y)) for x, y in list(line.coords)[1:]]]
    deduped: list[XY] = [points[0]]
    for p in points[1:]:
        if p != deduped[-1]:
            deduped.append(p)
    if len(deduped) == 1:
        deduped.append(deduped[0])
    length = sum(math.dist(p, q) for p, q in itertools.pairwise(deduped))
    return Route(tuple(deduped), length)


class Volume(Protocol):
    """A restricted volume: a lon/lat area between two heights (a Restriction, or planning's NoFly)."""

    @property
    def name(self) -> str: ...
    @property
    def geometry(self) -> BaseGeometry: ...
    @property
    def floor_m(self) -> float: ...
    @property
    def ceiling_m(self) -> float: ...


def airspace_at(
    restrictions: Sequence[Volume], *, alt_m: float, around: tuple[float, float], clearance_m: float
) -> Airspace:
    """The restrictions whose floor..ceiling band holds ``alt_m``, ready to route around at ``clearance_m``.

    Routes keep ``route_clearance_m(clearance_m)``, a little more than the gate judges them by.
    """
    zones = [
        NoFlyZone(r.name, r.geometry)
        for r in restrictions
        if r.floor_m <= alt_m <= r.ceiling_m and r.geometry.geom_type == "Polygon"
    ]
    return Airspace(LocalFrame(*around), zones, margin_m=route_clearance_m(clearance_m))
