"""Split a concave area at its reflex corners into parts that are each best swept at their own angle.

A bent corridor or a long L is swept faster along each leg than at any one angle. Cuts start at a reflex
corner of the shell (extending either edge, or splitting the corner's angle) and run to
the boundary; a cut is kept when the estimated flight time of the two parts (each at its best angle, plus a
transit) beats the whole by a margin, and parts are cut again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import split as split_by

MAX_CUTS_TRIED = 20


# A run of concave corners that turns less than this in all (a slight dent) is not worth a cut.
MIN_BEND_DEG = 15.0


def _reflex_corners(poly: Polygon) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(corner, previous, next) for the concave corners of the shell worth cutting at.

    Consecutive concave corners make one bend (an arc bitten out of the area is a run of slight ones):
    a bend is cut at its first, middle and last corner, and only if it turns by ``MIN_BEND_DEG`` or more.
    """
    xy = np.asarray(orient(poly, 1.0).exterior.coords)[:-1]
    n = len(xy)
    a = xy - np.roll(xy, 1, axis=0)
    b = np.roll(xy, -1, axis=0) - xy
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    turn = np.degrees(np.arctan2(-cross, (a * b).sum(axis=1)))  # > 0 at a concave corner
    concave = cross < -1e-9
    if not concave.any():
        return []
    # runs of consecutive concave corners, starting after a convex one (a ring: rotate to start there)
    shift = int(np.argmin(concave)) if not concave.all() else 0
    order = (np.arange(n) + shift) % n
    runs: list[list[int]] = []
    for i in order.tolist():
        if not concave[i]:
            runs.append([])
        elif runs:
            runs[-1].append(i)
        else:
            runs.append([i])
    out = []
    for run in runs:
        if not run or float(turn[run].sum()) < MIN_BEND_DEG:
            continue
        for i in dict.fromkeys([run[0], run[len(run) // 2], run[-1]]):
            out.append((xy[i], xy[i - 1], xy[(i + 1) % n]))
    return out


def _width(poly: Polygon) -> float:
    """The shorter side of the minimum rotated rectangle."""
    xy = np.asarray(poly.minimum_rotated_rectangle.exterior.coords)
    if len(xy) < 4:
        return 0.0
    return float(np.hypot(*np.diff(xy[:3], axis=0).T).min())


def _cut(poly: Polygon, corner: np.ndarray, direction: np.ndarray) -> list[Polygon] | None:
    """Cut ``poly`` from ``corner`` along ``direction`` to the first boundary it meets: two parts, or None."""
    d = direction / np.hypot(*direction)
    x_min, y_min, x_max, y_max = poly.bounds
    reach = 2.0 * float(np.hypot(x_max - x_min, y_max - y_min))
    ray = LineString([corner + d * 1e-6 * reach, corner + d * reach])
    hits = ray.intersection(poly.boundary)
    if hits.is_empty:
        return None
    pts = np.asarray([p.coords[0] for p in getattr(hits, "geoms", [hits]) if isinstance(p, Point)])
    if not len(pts):
        return None
    far = pts[np.argmin(np.hypot(*(pts - corner).T))]
    pad = 1e-6 * reach
    cut = LineString([corner - d * pad, far + d * pad])
    parts = [g for g in split_by(poly, cut).geoms if isinstance(g, Polygon)]
    return parts if len(parts) == 2 else None


def decompose(
    area: Polygon,
    *,
    estimate_s: Callable[[Polygon], float],
    join_s: float,
    min_size_m: float,
    depth: int = 4,
    gain: float = 0.97,
) -> list[Polygon]:
    """Parts of ``area`` worth sweeping separately (``[area]`` when no cut pays off).

    ``estimate_s`` rates a part's flight time; each cut adds ``join_s`` for the transit between parts. A
    single cut may look no better than the whole (a leg that bends twice only gains once both bends are
    cut), so cuts within 3 % are followed down and the whole decomposition is judged at the end.

    >>> l_shape = Polygon([(0, 0), (1000, 0), (1000, 100), (100, 100), (100, 1000), (0, 1000)])
    >>> def rough(p):  # pretend each part is flown along its longer side
    ...     x0, y0, x1, y1 = p.bounds
    ...     return p.area / 30 + 100 * min(x1 - x0, y1 - y0) / 30
    >>> sorted(round(p.area) for p in decompose(l_shape, estimate_s=rough, join_s=10, min_size_m=30))
    [90000, 100000]
    """
    whole = estimate_s(area)
    parts, cost = _best_split(area, whole, estimate_s, join_s, min_size_m, depth)
    return parts if cost < gain * whole else [area]


def _best_split(area, whole, estimate_s, join_s, min_size_m, depth) -> tuple[list[Polygon], float]:
    if depth <= 0 or not np.isfinite(whole):
        return [area], whole
    best: tuple[float, list[Polygon], list[float]] | None = None
    tried = 0
    for corner, prev, nxt in _reflex_corners(area):
        a, b = corner - prev, nxt - corner
        left_a = np.array([-a[1], a[0]]) / np.hypot(*a)  # shell is CCW: interior on the left
        left_b = np.array([-b[1], b[0]]) / np.hypot(*b)
        # extend either edge, or split the corner's angle
        for direction in (a, -b, left_a + left_b):
            if tried >= MAX_CUTS_TRIED or np.hypot(*direction) < 1e-9:
                continue
            parts = _cut(area, corner, direction)
            tried += 1
            if parts is None or any(_width(p) < 2 * min_size_m for p in parts):
                continue  # no clean cut, or a sliver not worth a part of its own
            costs = [estimate_s(p) for p in parts]
            cost = sum(costs) + join_s
            if cost < 1.03 * whole and (best is None or cost < best[0]):
                best = (cost, parts, costs)
    if best is None:
        return [area], whole
    out: list[Polygon] = []
    total = join_s
    for part, part_cost in zip(best[1], best[2], strict=True):
        sub, sub_cost = _best_split(part, part_cost, estimate_s, join_s, min_size_m, depth - 1)
        out += sub
        total += sub_cost
    return (out, total) if total < whole else ([area], whole)
