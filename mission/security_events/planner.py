"""The plan set of a large event: pre-opening sweep, ring patrols with a revisit target, overwatch points.

All planning is in a local metric frame centred on the venue. Every leg of every plan is routed around the
active no-fly zones (grown by a clearance) and checked again before the plan set is returned.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import unary_union

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.rings import rings
from flightplans.routing import Obstacles, shortest_path
from mission.safety.routing import NoFlyZone

XY = tuple[float, float]
LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class SweepTask:
    """One drone's share of the venue sweep: boustrophedon lines over a strip of the venue."""

    drone: int
    waypoints: tuple[LatLon, ...]
    length_m: float
    flight_time_s: float


@dataclass(frozen=True, slots=True)
class RingTask:
    """One drone's lap on a ring, started at an offset so the ring's drones are evenly spaced."""

    drone: int
    ring: int
    radius_m: float
    waypoints: tuple[LatLon, ...]
    lap_s: float


@dataclass(frozen=True, slots=True)
class OverwatchPoint:
    """A fixed point to hover over, looking at the venue."""

    index: int
    lat: float
    lon: float
    bearing_deg: float


@dataclass(frozen=True, slots=True)
class EventCoverage:
    """What the plan set achieves: swept share of the venue, ring revisit gaps against the target."""

    sweep_ratio: float
    sweep_time_s: float
    ring_gaps_s: tuple[float, ...]
    worst_ring_gap_s: float
    revisit_target_s: float
    rings_meet_target: bool
    ring_reason: str
    overwatch_points: int
    overwatch_dropped: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EventPlanSet:
    """Every plan for an event, the restricted zone around it, and the coverage they achieve."""

    restricted_lonlat: Polygon
    sweep: tuple[SweepTask, ...]
    rings: tuple[RingTask, ...]
    overwatch: tuple[OverwatchPoint, ...]
    coverage: EventCoverage


def _boustrophedon(strip: Polygon, *, swath_m: float) -> list[XY]:
    """Lines across ``strip`` (north-south), at most ``swath_m`` apart, joined end to end.

    Each line is the middle of a band at most one swath wide and runs the band's whole north-south extent,
    so every point of the strip lies within half a swath of a line (slanted edges included).
    """
    minx, miny, maxx, maxy = strip.bounds
    width = maxx - minx
    n = max(1, math.ceil(width / swath_m - 1e-9))
    step = width / n
    points: list[XY] = []
    up = True
    for i in range(n):
        x = minx + (i + 0.5) * step
        band = strip.intersection(box(x - step / 2, miny - 1, x + step / 2, maxy + 1))
        if band.is_empty:
            continue
        lo, hi = band.bounds[1], band.bounds[3]
        points.extend([(float(x), lo), (float(x), hi)] if up else [(float(x), hi), (float(x), lo)])
        up = not up
    return points


def _strips(area: Polygon, n: int) -> list[Polygon]:
    """``area`` cut west to east into ``n`` strips of about equal area."""
    minx, miny, maxx, maxy = area.bounds
    total = area.area
    cuts = [minx]
    for k in range(1, n):
        lo, hi = cuts[-1], maxx
        target = total * k / n
        for _ in range(40):
            mid = (lo + hi) / 2
            left = area.intersection(
                Polygon([(minx - 1, miny - 1), (mid, miny - 1), (mid, maxy + 1), (minx - 1, maxy + 1)])
            ).area
            lo, hi = (mid, hi) if left < target else (lo, mid)
        cuts.append((lo + hi) / 2)
    cuts.append(maxx)
    out = []
    for a, b in itertools.pairwise(cuts):
        piece = area.intersection(Polygon([(a, miny - 1), (b, miny - 1), (b, maxy + 1), (a, maxy + 1)]))
        polys = [g for g in getattr(piece, "geoms", [piece]) if isinstance(g, Polygon) and g.area > 0]
        if polys:
            out.append(max(polys, key=lambda g: g.area))
    return out


def _routed(points: Sequence[XY], obstacles: Obstacles) -> list[XY]:
    """``points`` with every leg replaced by its shortest path around the obstacles."""
    out: list[XY] = [points[0]]
    for a, b in itertools.pairwise(points):
        if a == b:
            continue
        line = shortest_path(a, b, nofly=obstacles)
        out.extend((float(x), float(y)) for x, y in list(line.coords)[1:])
    return out


def _check_legs(points: Sequence[XY], zones: Sequence[tuple[str, Polygon]], *, what: str) -> None:
    for a, b in itertools.pairwise(points):
        leg = LineString([a, b])
        for name, zone in zones:
            if zone.intersection(leg).length > 0.01:
                raise PlanningError(
                    f"{what}: a leg enters no-fly zone {name!r}",
                    where=a,
                    code="security_events.leg_enters_fly_zone",
                    params={"what": what, "name": repr(name)},
                )


def plan_event(
    venue_lonlat: Polygon,
    *,
    ring_radii_m: Sequence[float],
    drones: int,
    revisit_s: float,
    nofly: Sequence[NoFlyZone] = (),
    sweep_drones: int | None = None,
    swath_m: float = 40.0,
    speed_m_s: float = 10.0,
    overwatch_points: int = 4,
    overwatch_offset_m: float = 60.0,
    clearance_m: float = 30.0,
    restricted_margin_m: float = 100.0,
) -> EventPlanSet:
    """Plan the sweep, rings and overwatch of an event at ``venue_lonlat`` with ``drones`` drones.

    Rings are centred on the venue's centroid at ``ring_radii_m`` (measured from the centroid) and
    shared out to meet ``revisit_s``; the restricted zone covers the venue and the outer ring.
    """
    if not isinstance(venue_lonlat, Polygon) or not venue_lonlat.is_valid or venue_lonlat.is_empty:
        raise PlanningError("venue must be a valid polygon", code="security_events.venue_valid_polygon")
    if isinstance(drones, bool) or not isinstance(drones, int) or drones < 1:
        raise PlanningError(
            f"drones must be an integer >= 1, got {drones!r}",
            code="security_events.drones_integer",
            params={"drones": repr(drones)},
        )
    for name, value in (("swath_m", swath_m), ("speed_m_s", speed_m_s), ("revisit_s", revisit_s)):
        if not (math.isfinite(value) and value > 0):
            raise PlanningError(
                f"{name} must be a positive number, got {value!r}",
                code="security_events.positive_number",
                params={"name": name, "value": repr(value)},
            )
    frame = LocalFrame.for_geometry(venue_lonlat)
    venue = frame.to_local(venue_lonlat)
    zones = [(z.name, frame.to_local(z.polygon_lonlat)) for z in nofly]
    obstacles = Obstacles.build([z for _, z in zones], clearance_m=clearance_m)
    centre = venue.centroid

    # Sweep: the venue less the grown zones, split into strips, one boustrophedon per drone.
    grown = unary_union(list(obstacles.grown)) if obstacles.grown else Polygon()
    free = venue.difference(grown)
    if free.is_empty:
        raise PlanningError(
            "the whole venue lies inside no-fly zones: nothing can be swept",
            code="security_events.whole_venue_lies_inside",
        )
    free_parts = [g for g in getattr(free, "geoms", [free]) if isinstance(g, Polygon)]
    free_main = max(free_parts, key=lambda g: g.area)
    n_sweep = min(sweep_drones or drones, drones)
    sweep_tasks = []
    swept_lines = []
    for i, strip in enumerate(_strips(free_main, n_sweep)):
        pts = _boustrophedon(strip, swath_m=swath_m)
        if len(pts) < 2:
            continue
        pts = _routed(pts, obstacles)
        _check_legs(pts, zones, what=f"sweep {i}")
        length = LineString(pts).length
        swept_lines.append(LineString(pts))
        sweep_tasks.append(
            SweepTask(i, tuple(frame.point_to_wgs84(x, y) for x, y in pts), length, length / speed_m_s)
        )
    swept = unary_union([ln.buffer(swath_m / 2, cap_style="flat") for ln in swept_lines])
    sweep_ratio = float(swept.intersection(venue).area / venue.area) if venue.area else 0.0

    # Rings around the centroid, with detours and drone allocation from flightplans.rings.
    ring_plan = rings(
        (centre.x, centre.y),
        radii_m=list(ring_radii_m),
        drones=drones,
        revisit_s=revisit_s,
        speed_m_s=speed_m_s,
        nofly=obstacles,
    )
    if ring_plan.feasible and ring_plan.min_drones < drones:
        # The rings take only the drones the target needs; the rest man the posts and relieve.
        ring_plan = rings(
            (centre.x, centre.y),
            radii_m=list(ring_radii_m),
            drones=ring_plan.min_drones,
            revisit_s=revisit_s,
            speed_m_s=speed_m_s,
            nofly=obstacles,
        )
    ring_tasks = []
    for a in ring_plan.assignments:
        pts = [(float(x), float(y)) for x, y in a.path.coords]
        _check_legs(pts, zones, what=f"ring {a.ring}")
        ring_tasks.append(
            RingTask(
                a.drone,
                a.ring,
                ring_plan.rings[a.ring].radius_m,
                tuple(frame.point_to_wgs84(x, y) for x, y in pts),
                ring_plan.rings[a.ring].lap_s,
            )
        )

    # Overwatch: evenly spaced bearings, just outside the venue's outline.
    outline = venue.buffer(overwatch_offset_m).exterior
    overwatch: list[OverwatchPoint] = []
    dropped: list[str] = []
    reach = (
        math.hypot(venue.bounds[2] - venue.bounds[0], venue.bounds[3] - venue.bounds[1]) + overwatch_offset_m
    )
    for k in range(overwatch_points):
        bearing = 360.0 * k / max(1, overwatch_points)
        ray = LineString(
            [
                (centre.x, centre.y),
                (
                    centre.x + reach * math.sin(math.radians(bearing)) * 2,
                    centre.y + reach * math.cos(math.radians(bearing)) * 2,
                ),
            ]
        )
        hit = outline.intersection(ray)
        if hit.is_empty:
            dropped.append(f"bearing {bearing:.0f}: no point on the outline")
            continue
        p = (
            hit
            if isinstance(hit, Point)
            else min(
                (g for g in getattr(hit, "geoms", []) if isinstance(g, Point)),
                key=lambda g: g.distance(centre),
                default=None,
            )
        )
        if p is None:
            dropped.append(f"bearing {bearing:.0f}: no point on the outline")
            continue
        if obstacles.blocking_zone((p.x, p.y)) is not None:
            dropped.append(f"bearing {bearing:.0f}: inside a no-fly zone's clearance")
            continue
        lat, lon = frame.point_to_wgs84(p.x, p.y)
        overwatch.append(OverwatchPoint(len(overwatch), lat, lon, bearing))

    outer = max(ring_plan.rings, key=lambda r: r.radius_m)
    restricted = unary_union(
        [
            venue.buffer(restricted_margin_m),
            Point(centre.x, centre.y).buffer(outer.radius_m + restricted_margin_m),
        ]
    )
    restricted_lonlat = frame.to_wgs84(restricted.simplify(2.0))
    coverage = EventCoverage(
        sweep_ratio=sweep_ratio,
        sweep_time_s=max((t.flight_time_s for t in sweep_tasks), default=0.0),
        ring_gaps_s=tuple(r.gap_s for r in ring_plan.rings),
        worst_ring_gap_s=ring_plan.worst_gap_s,
        revisit_target_s=revisit_s,
        rings_meet_target=ring_plan.feasible,
        ring_reason=ring_plan.reason,
        overwatch_points=len(overwatch),
        overwatch_dropped=tuple(dropped),
    )
    assert isinstance(restricted_lonlat, Polygon)
    return EventPlanSet(restricted_lonlat, tuple(sweep_tasks), tuple(ring_tasks), tuple(overwatch), coverage)
