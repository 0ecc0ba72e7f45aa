"""Checkpoint rings: concentric patrol loops around a venue, shared by phase-offset drones.

A ring flown at ``speed_m_s`` takes ``lap_s = length / speed``; ``n`` drones spread evenly along it pass
every point of it every ``lap_s / n`` seconds. Drones are allocated to rings to keep the worst of those
gaps as small as possible. Rings that cross a no-fly zone detour around it (shortest path with the
clearance), and the detour lengthens the lap and so the gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon
from shapely.ops import linemerge, substring

from flightplans.errors import PlanningError
from flightplans.patterns import XY, PatrolPlan, circle_coords, metrics
from flightplans.routing import Obstacles, PointLike, as_xy, shortest_path
from flightplans.validate import check_positive

# Rings are cut this far outside the grown no-fly zones so the detour's ends are clear of them.
_CUT_MARGIN_M = 0.05


@dataclass(frozen=True, slots=True)
class RingLoop(PatrolPlan):
    """One ring: its closed loop (with detours), the drones on it and the revisit gap they achieve."""

    radius_m: float
    drones: int
    lap_s: float
    gap_s: float  # worst time between two passes over any point of the ring; inf with no drone
    detour_m: float  # how much longer the loop is than the plain circle because of no-fly zones


@dataclass(frozen=True, slots=True)
class DroneLoop(PatrolPlan):
    """What one drone flies: one lap of its ring starting ``start_offset_m`` along the ring's loop.

    All drones start their laps at the same moment and repeat them; ``path`` is closed.
    """

    drone: int
    ring: int
    start_offset_m: float


@dataclass(frozen=True, slots=True)
class RingsPlan:
    """All rings and drone assignments, with the worst revisit gap and whether it meets ``revisit_s``."""

    path: MultiLineString  # every ring's loop
    waypoints: tuple[XY, ...]  # every ring's waypoints, ring after ring; drones fly ``assignments``
    length_m: float  # sum of the ring loops
    turns: int
    flight_time_s: float  # the longest lap
    rings: tuple[RingLoop, ...]
    assignments: tuple[DroneLoop, ...]
    revisit_s: float
    worst_gap_s: float
    feasible: bool
    reason: str
    min_drones: int  # fewest drones that meet revisit_s on every ring


def rings(
    center: PointLike,
    *,
    radii_m: Sequence[float],
    drones: int,
    revisit_s: float,
    speed_m_s: float = 8.0,
    nofly: Sequence[Polygon] | Obstacles = (),
    clearance_m: float = 10.0,
    points_per_ring: int = 36,
) -> RingsPlan:
    """Concentric checkpoint rings around ``center`` shared by ``drones`` drones, phase-offset.

    Each ring's loop detours around ``nofly`` (kept ``clearance_m`` away; a prebuilt ``Obstacles`` brings
    its own clearance). ``feasible`` says whether every ring is revisited within ``revisit_s``; ``reason``
    says why not and ``min_drones`` how many would do. Each of ``assignments`` is one drone's lap.

    >>> plan = rings((0, 0), radii_m=[100, 300], drones=4, revisit_s=70, speed_m_s=10)
    >>> [r.drones for r in plan.rings], plan.feasible, round(plan.worst_gap_s, 1)
    ([1, 3], True, 62.8)
    """
    cx, cy = as_xy("center", center)
    radii = _check_radii(radii_m)
    if isinstance(drones, bool) or not isinstance(drones, int) or drones < 1:
        raise PlanningError(
            f"drones must be an integer >= 1, got {drones!r}",
            code="plan.rings.drones_integer",
            params={"drones": repr(drones)},
        )
    revisit = check_positive("revisit_s", revisit_s)
    speed = check_positive("speed_m_s", speed_m_s)
    if isinstance(points_per_ring, bool) or not isinstance(points_per_ring, int) or points_per_ring < 8:
        raise PlanningError(
            f"points_per_ring must be an integer >= 8, got {points_per_ring!r}",
            code="plan.rings.points_per_ring_integer",
            params={"points_per_ring": repr(points_per_ring)},
        )
    obstacles = nofly if isinstance(nofly, Obstacles) else Obstacles.build(nofly, clearance_m=clearance_m)

    loops = []
    for i, radius in enumerate(radii):
        circle = circle_coords((cx, cy), radius, points=points_per_ring, clockwise=True)
        loops.append(
            (
                _detour(circle, obstacles, center=(cx, cy), ring=i, radius_m=radius),
                float(LineString(circle).length),
            )
        )
    lap_s = [float(LineString(loop).length) / speed for loop, _ in loops]
    need = [_drones_needed(lap, revisit) for lap in lap_s]
    min_drones = sum(need)
    counts = _allocate(lap_s, drones)
    gaps = [lap / n if n else math.inf for lap, n in zip(lap_s, counts, strict=True)]
    worst = max(gaps)
    feasible = worst <= revisit
    if feasible:
        reason = (
            f"{drones} drones revisit every ring within {worst:.1f} s "
            f"(target {revisit:g} s, {min_drones} needed)"
        )
    else:
        per_ring = ", ".join(
            f"ring {i} ({radii[i]:g} m, lap {lap_s[i]:.0f} s) needs {need[i]}" for i in range(len(radii))
        )
        unserved = [i for i, n in enumerate(counts) if n == 0]
        shortfall = f"; rings {unserved} get no drone" if unserved else ""
        reason = (
            f"{drones} drones cannot revisit every ring within {revisit:g} s: at least {min_drones} needed "
            f"({per_ring}); the best split leaves a worst gap of {worst:.1f} s{shortfall}"
        )

    ring_plans = []
    assignments = []
    drone = 0
    for i, ((loop, circle_m), n) in enumerate(zip(loops, counts, strict=True)):
        path, waypoints, length, turns, time_s = metrics(loop, speed_m_s=speed)
        ring_plans.append(
            RingLoop(
                path,
                waypoints,
                length,
                turns,
                time_s,
                radius_m=radii[i],
                drones=n,
                lap_s=lap_s[i],
                gap_s=gaps[i],
                detour_m=max(0.0, length - circle_m),
            )
        )
        for k in range(n):
            offset = length * k / n
            coords = _rotate_loop(path, offset)
            d_path, d_waypoints, d_length, d_turns, d_time = metrics(coords, speed_m_s=speed)
            assignments.append(
                DroneLoop(
                    d_path,
                    d_waypoints,
                    d_length,
                    d_turns,
                    d_time,
                    drone=drone,
                    ring=i,
                    start_offset_m=offset,
                )
            )
            drone += 1
    return RingsPlan(
        path=MultiLineString([r.path for r in ring_plans]),
        waypoints=tuple(w for r in ring_plans for w in r.waypoints),
        length_m=sum(r.length_m for r in ring_plans),
        turns=sum(r.turns for r in ring_plans),
        flight_time_s=max(r.flight_time_s for r in ring_plans),
        rings=tuple(ring_plans),
        assignments=tuple(assignments),
        revisit_s=revisit,
        worst_gap_s=worst,
        feasible=feasible,
        reason=reason,
        min_drones=min_drones,
    )


def _check_radii(radii_m: Sequence[float]) -> list[float]:
    if isinstance(radii_m, str) or not isinstance(radii_m, Sequence):
        raise PlanningError(
            f"radii_m must be a list of radii in metres, got {radii_m!r}",
            code="plan.rings.radii_m_list_radii",
            params={"radii_m": repr(radii_m)},
        )
    if not radii_m:
        raise PlanningError(
            "radii_m is empty: give at least one ring radius", code="plan.rings.radii_m_empty_give"
        )
    radii = [check_positive(f"radii_m[{i}]", r) for i, r in enumerate(radii_m)]
    if len(set(radii)) != len(radii):
        raise PlanningError(
            f"radii_m has a repeated radius: {radii}",
            code="plan.rings.radii_m_has_repeated",
            params={"radii": radii},
        )
    return radii


def _drones_needed(lap_s: float, revisit_s: float) -> int:
    n = max(1, math.ceil(lap_s / revisit_s))
    while lap_s / n > revisit_s:  # guard against float rounding in the ceil
        n += 1
    return n


def _allocate(lap_s: Sequence[float], drones: int) -> list[int]:
    """Drones per ring minimising the worst gap lap/n: give each next drone to the worst-served ring.

    Greedy is optimal for a min-max of per-ring gaps that only shrink as a ring gets more drones.
    """
    counts = [0] * len(lap_s)
    for _ in range(drones):
        worst = max(
            range(len(lap_s)),
            key=lambda i: (lap_s[i] / counts[i] if counts[i] else math.inf, lap_s[i]),
        )
        counts[worst] += 1
    return counts


def _detour(
    circle: np.ndarray, obstacles: Obstacles, *, center: XY, ring: int, radius_m: float
) -> np.ndarray:
    """The circle's coordinates with every stretch inside a (grown) no-fly zone replaced by a detour."""
    if not obstacles.grown:
        return circle
    line = LineString(circle)
    cut = shapely.union_all([zone.buffer(_CUT_MARGIN_M) for zone in obstacles.grown])
    if not line.intersects(cut):
        return circle
    outside = line.difference(cut)
    if outside.is_empty:
        raise PlanningError(
            f"ring {ring} ({radius_m:g} m) lies entirely inside a no-fly zone (with its "
            f"{obstacles.clearance_m:g} m clearance)",
            code="plan.rings.ring_m_lies_entirely",
            params={"ring": ring, "radius_m": f"{radius_m:g}", "clearance_m": f"{obstacles.clearance_m:g}"},
        )
    merged = linemerge(outside) if isinstance(outside, MultiLineString) else outside
    pieces = list(merged.geoms) if isinstance(merged, MultiLineString) else [merged]
    if len(pieces) == 1 and pieces[0].is_closed:
        return np.asarray(pieces[0].coords)
    pieces.sort(key=lambda p: line.project(Point(p.coords[0])))
    coords: list[np.ndarray] = []
    for i, piece in enumerate(pieces):
        coords.append(np.asarray(piece.coords))
        following = pieces[(i + 1) % len(pieces)]
        a, b = piece.coords[-1], following.coords[0]
        # The detour must pass the zone on the ring's side of the venue, not cut round the far side of
        # the centre: a keyhole (a small disc on the centre and a ray away from the gap) forbids that.
        space = obstacles.with_obstacle(_keyhole(center, a, b, radius_m=radius_m, obstacles=obstacles))
        try:
            bridge = shortest_path(a, b, nofly=space)
        except PlanningError as exc:
            raise PlanningError(
                f"ring {ring} ({radius_m:g} m) cannot detour around the no-fly zones and still circle the "
                f"venue (with {obstacles.clearance_m:g} m clearance): {exc}",
                where=exc.where,
                code="plan.rings.ring_m_cannot_detour_2",
                params={
                    "ring": ring,
                    "radius_m": f"{radius_m:g}",
                    "clearance_m": f"{obstacles.clearance_m:g}",
                    "exc": exc,
                },
            ) from exc
        coords.append(np.asarray(bridge.coords)[1:-1])
    coords.append(np.asarray(pieces[0].coords[:1]))
    loop = np.vstack([c for c in coords if len(c)])
    if abs(_winding(loop, np.asarray(center))) != 1:
        raise PlanningError(
            f"ring {ring} ({radius_m:g} m) cannot detour around the no-fly zones and still circle the venue "
            f"(with {obstacles.clearance_m:g} m clearance)",
            code="plan.rings.ring_m_cannot_detour",
            params={"ring": ring, "radius_m": f"{radius_m:g}", "clearance_m": f"{obstacles.clearance_m:g}"},
        )
    return loop


def _keyhole(center: XY, a: XY, b: XY, *, radius_m: float, obstacles: Obstacles) -> Polygon:
    """A disc on the centre plus a thin ray pointing away from the ring's gap from a to b (clockwise)."""
    ang_a = math.atan2(a[1] - center[1], a[0] - center[0])
    ang_b = math.atan2(b[1] - center[1], b[0] - center[0])
    # The ring runs clockwise (decreasing angle): the gap spans from a down to b.
    gap = (ang_a - ang_b) % (2 * math.pi)
    away = ang_a - gap / 2 + math.pi
    min_x, min_y, max_x, max_y = shapely.total_bounds(list(obstacles.grown))
    far = 2 * (radius_m + math.hypot(max_x - min_x, max_y - min_y) + math.dist((min_x, min_y), center))
    tip = (center[0] + far * math.cos(away), center[1] + far * math.sin(away))
    ray = LineString([center, tip]).buffer(0.01, cap_style="flat")
    return shapely.union_all([Point(center).buffer(min(5.0, radius_m / 10), quad_segs=4), ray])


def _winding(loop: np.ndarray, center: np.ndarray) -> int:
    """How many times a closed loop winds around ``center`` (+ counter-clockwise)."""
    rel = loop - center
    angles = np.arctan2(rel[:, 1], rel[:, 0])
    turn = (np.diff(angles) + math.pi) % (2 * math.pi) - math.pi
    return round(float(turn.sum()) / (2 * math.pi))


def _rotate_loop(loop: LineString, offset_m: float) -> np.ndarray:
    """A closed loop's coordinates starting (and ending) ``offset_m`` along it."""
    if offset_m <= 0:
        return np.asarray(loop.coords)
    head = substring(loop, offset_m, loop.length)
    tail = substring(loop, 0.0, offset_m)
    return np.vstack([np.asarray(head.coords), np.asarray(tail.coords)[1:]])
