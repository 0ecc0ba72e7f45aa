"""The metric sweep planner: decompose -> swaths -> order -> connect -> waypoints, and its honest metrics."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import shapely
import shapely.errors
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon
from shapely.ops import nearest_points

from flightplans.coverage.decompose import decompose
from flightplans.coverage.freespace import FreeSpace
from flightplans.coverage.order import Variant, VariantTable, order_cells, turn_penalty
from flightplans.coverage.robust import overlay, swept
from flightplans.coverage.scan import ScanArea, scan_area, uncovered_m2, uncovered_pieces, uncovered_runs
from flightplans.coverage.swaths import (
    Swath,
    band_reach,
    build_cells,
    build_swaths,
    count_cells,
    interval_table,
    interval_widths,
    line_intervals,
    line_positions,
)
from flightplans.errors import PlanningError
from flightplans.validate import check_finite_point, check_positive, validate_area

# A heading change above this counts as a turn (the drone slows down for it).
TURN_THRESHOLD_DEG = 30.0
# Exact geodesic distances for each cell corner's nearest corners; farther pairs use the straight line.
_NEAREST = 10
_MITRE = {"join_style": "mitre", "mitre_limit": 3.0}


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """A lawnmower coverage path over an area (metres), with its metrics.

    ``coverage`` is the fraction of the area within ``swath_m / 2`` of ``path``, from a 6-segment buffer
    of the path, or where that clearly meets the target, measured on scan lines a twelfth of a swath
    apart (exact along each line, within about 0.1 % of the area of the buffer's figure);
    ``flight_time_s`` is ``length_m / speed`` plus ``turn_s`` per turn; ``angle_deg`` is the sweep lines'
    direction, counter-clockwise from +x (east); ``cells`` the boustrophedon cells flown.
    """

    path: LineString
    waypoints: tuple[tuple[float, float], ...]
    length_m: float
    turns: int
    coverage: float
    flight_time_s: float
    angle_deg: float
    cells: int
    swaths: int
    swath_m: float


@dataclass(frozen=True, slots=True)
class _Frame:
    """Rotation taking the sweep direction to +x about ``origin``."""

    angle_deg: float
    ox: float
    oy: float

    def to_rot(self, xy: np.ndarray) -> np.ndarray:
        t = math.radians(self.angle_deg)
        c, s = math.cos(t), math.sin(t)
        x, y = xy[:, 0] - self.ox, xy[:, 1] - self.oy
        return np.column_stack([x * c + y * s, -x * s + y * c])

    def from_rot(self, xy: np.ndarray) -> np.ndarray:
        t = math.radians(self.angle_deg)
        c, s = math.cos(t), math.sin(t)
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([self.ox + x * c - y * s, self.oy + x * s + y * c])


def _rings(geom: Polygon | MultiPolygon) -> list[np.ndarray]:
    polys = [geom] if isinstance(geom, Polygon) else list(geom.geoms)
    return [np.asarray(r.coords) for p in polys for r in [p.exterior, *p.interiors]]


def _edges(rings: list[np.ndarray], frame: _Frame) -> np.ndarray:
    rows = []
    for ring in rings:
        r = frame.to_rot(ring)
        rows.append(np.column_stack([r[:-1], r[1:]]))
    return np.concatenate(rows)


def candidate_angles(area: Polygon, *, limit: int = 6) -> list[float]:
    """Sweep directions worth trying: the longest edge directions of the convex hull and of the area.

    Directions within half a degree count as one, weighted by their total length, and are tried at the
    exact angle of their longest edge (lines parallel to a long edge leave no sliver along it).

    >>> from shapely.geometry import box
    >>> candidate_angles(box(0, 0, 400, 100))
    [0.0, 90.0]
    """
    weights: dict[float, float] = {}
    exact: dict[float, tuple[float, float]] = {}  # bucket -> (longest edge length, its angle)
    for ring in (area.convex_hull.exterior, area.exterior):
        xy = np.asarray(ring.coords)
        d = np.diff(xy, axis=0)
        length = np.hypot(d[:, 0], d[:, 1])
        ang = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 180.0
        for a, w in zip(ang, length, strict=True):
            key = float(np.round(a * 2) / 2 % 180.0)
            weights[key] = weights.get(key, 0.0) + float(w)
            if w > exact.get(key, (0.0, 0.0))[0]:
                exact[key] = (float(w), float(a) % 180.0)
    ranked = sorted(weights, key=weights.__getitem__, reverse=True)
    return [round(exact[key][1], 6) % 180.0 for key in ranked[:limit]]


EXTRA_ANGLES = 12
# Of the spread directions, the quickest few on a rough estimate are laid out and screened.
_EXTRA_ROUTED = 2
# Candidate layouts (quickest first by a straight-link screen) routed in full ...
_ROUTED = 2
# ... when their screened time is within this share of the quickest one's.
_SCREEN_WINDOW = 0.03
# A screen overestimates the routed time by a few percent (its tour is greedy, its links straight).
_SCREEN_SLACK = 0.05
# A convex area: its sweep is searched over this many angles, these line shifts (in swaths, within
# their slack) and each side's end reach; a path flying within _LENGTH_SLACK of the quickest one's time
# is chosen for being shorter. The model on coarse scan lines (_CONVEX_LINES per swath) must meet the
# coverage target with _CONVEX_MARGIN to spare; its best _CONVEX_CHECKED settings are checked on fine ones.
_CONVEX_ANGLES = 5
_SHIFTS = (-0.3, 0.0, 0.3)
_LENGTH_SLACK = 0.015
_CONVEX_MARGIN = 0.97
_CONVEX_CHECKED = 6
_CONVEX_LINES = 6
# Tours price each turn a link makes at half its flying time: the straight link only approximates the
# turns flown, and at full weight the local search settled in worse tours on the benchmark districts.
TURN_WEIGHT = 0.5
# How far the scan lines' uncovered area may be off a 6-segment buffer's, as a share of the area (they
# sample across the lines and see round caps where the buffer has chords): 0.1 % seen at most on the
# benchmark plans, and a margin.
SCAN_ERROR = 0.0015
# Shares of the full reach towards slanted boundaries tried before filling (see Swath.ends).
_REACHES = (0.0, 0.5, 1.0)


def _spread_angles(main: list[float]) -> list[float]:
    """Directions besides the edge ones: their perpendiculars and an even spread (a ring may sweep best
    across its long axis)."""
    extra = [(a + 90.0) % 180.0 for a in main[:2]]
    extra += [180.0 * i / EXTRA_ANGLES for i in range(EXTRA_ANGLES)]
    out: list[float] = []
    for a in extra:
        if all(min(abs(a - b) % 180.0, 180.0 - abs(a - b) % 180.0) > 2.0 for b in [*main, *out]):
            out.append(a)
    return out


def _turns(xy: np.ndarray) -> int:
    if len(xy) < 3:
        return 0
    d = np.diff(xy, axis=0)
    h = np.arctan2(d[:, 1], d[:, 0])
    dh = np.abs((np.diff(h) + np.pi) % (2 * np.pi) - np.pi)
    return int(np.count_nonzero(dh > math.radians(TURN_THRESHOLD_DEG)))


def _dedupe(xy: np.ndarray) -> np.ndarray:
    if len(xy) < 2:
        return xy
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.hypot(*np.diff(xy, axis=0).T) > 1e-6
    return xy[keep]


@dataclass(frozen=True, slots=True)
class _Layout:
    frame: _Frame
    cells: list[list[Swath]]
    estimate_s: float
    edges: np.ndarray  # the free region's edges in the rotated frame
    patches: tuple[list[Swath], ...] = ()


def _patches(layout: _Layout, scan: ScanArea, *, swath_m: float, clearance_m: float) -> list[list[Swath]]:
    """Short extra swaths over what the line grid misses: the bands a hole shadows just above and below it.

    A line cut by a hole leaves up to half a swath uncovered between the neighbouring line and the hole's
    edge; each such piece gets its own swath(s), centred on it, as one more cell to order.
    """
    w = swath_m
    swaths = [s for cell in layout.cells for s in cell]
    if not swaths:
        return []
    ends = np.asarray([(s.x0, s.x1, s.y) for s in swaths])
    # The cusps between two swath ends are small (about w^2 / 10): leave them to the turns and the final
    # check. Larger leftovers (a hole's shadow, a sliver along an edge nearly parallel to the lines) get
    # swaths, each line only as long as the leftover is within its band. Opened a little: cusps whose
    # caps just touch the boundary do not join into one long piece.
    pieces = uncovered_pieces(scan, ends[:, [0, 2]], ends[:, [1, 2]], radius_m=w / 2.0, open_m=0.02 * w)
    tip = 0.05 * clearance_m  # keep swath ends strictly inside the free region
    big = [p for p in pieces if p.area_m2 >= 0.5 * w * w]
    lines = []
    for piece in big:
        _, y_min, _, y_max = piece.bounds()
        # n lines, each in the middle of an equal slice of the leftover's height (slices <= one swath)
        n = max(1, math.ceil((y_max - y_min) / w - 1e-9))
        lines.append(y_min + (y_max - y_min) * (np.arange(n) + 0.5) / n)
    free = line_intervals(layout.edges, np.concatenate(lines)) if lines else []
    out: list[list[Swath]] = []
    first = 0
    for piece, ys in zip(big, lines, strict=True):
        rows: list[list[Swath]] = []
        for y, row in zip(ys.tolist(), free[first : first + len(ys)], strict=True):
            near = np.abs(piece.y - y) <= w / 2.0  # the piece's runs within this line's band
            if not near.any():
                continue
            bx0, bx1 = float(piece.lo[near].min()), float(piece.hi[near].max())
            inset = min(w / 4.0, (bx1 - bx0) / 4.0)
            a, b = bx0 + inset, bx1 - inset
            mine = [
                (max(lo + tip, a), min(hi - tip, b), lo, hi)
                for lo, hi in row
                if min(hi - tip, b) - max(lo + tip, a) > 0
            ]
            rows.append([Swath(len(rows), y, x0, x1, lo, hi) for x0, x1, lo, hi in mine])
        first += len(ys)
        rows = [r for r in rows if r]
        if rows:
            out.extend(build_cells(rows))
    return out


def _layout(
    area: Polygon,
    free_rings: list[np.ndarray],
    angle: float,
    *,
    swath_m: float,
    shrink_m: float,
    clearance_m: float,
    speed: float,
    turn_s: float,
    shift_m: float = 0.0,
) -> _Layout:
    """Lines, swaths and cells at one angle, the lines moved ``shift_m`` off their centred positions."""
    c = area.centroid
    frame = _Frame(angle, c.x, c.y)
    area_rot = frame.to_rot(np.asarray(area.exterior.coords))
    ys = line_positions(float(area_rot[:, 1].min()), float(area_rot[:, 1].max()), swath_m=swath_m) + shift_m
    edges = _edges(free_rings, frame)
    intervals = line_intervals(edges, ys)
    reach = band_reach(edges, ys, intervals, half_band_m=swath_m / 2.0)
    swaths = build_swaths(intervals, ys, shrink_m=shrink_m, reach=reach, min_shrink_m=0.05 * clearance_m)
    cells = build_cells(swaths)
    flown = sum(s.x1 - s.x0 for cell in cells for s in cell)
    n_sw = sum(len(cell) for cell in cells)
    est = (flown + n_sw * swath_m + len(cells) * 2 * swath_m) / speed + (2 * n_sw + 2 * len(cells)) * turn_s
    return _Layout(frame, cells, est, edges)


def _attach(cells: list[list[Swath]], patches: list[list[Swath]], *, swath_m: float):
    """Fly a one-row patch as an extra row of the cell whose top (or bottom) swath it sits just beyond."""
    cells = [list(c) for c in cells]
    left: list[list[Swath]] = []
    for patch in patches:
        if len(patch) != 1:
            left.append(patch)
            continue
        p = patch[0]
        best, where = swath_m + 1e-6, None
        for ci, cell in enumerate(cells):
            top, bottom = cell[-1], cell[0]
            if 0 < p.y - top.y < best and min(p.hi, top.hi) - max(p.lo, top.lo) > 0:
                best, where = p.y - top.y, (ci, True)
            if 0 < bottom.y - p.y < best and min(p.hi, bottom.hi) - max(p.lo, bottom.lo) > 0:
                best, where = bottom.y - p.y, (ci, False)
        if where is None:
            left.append(patch)
        elif where[1]:
            cells[where[0]].append(p)
        else:
            cells[where[0]].insert(0, p)
    return cells, left


def _tours(
    layout: _Layout, fs: FreeSpace, start, *, speed: float, turn_s: float, pen: np.ndarray | None = None
) -> tuple[list[Swath], list[tuple[Swath, bool]]]:
    """The cell tour's swaths, and the swaths in flying order, each with whether it is flown towards +x
    (rotated frame).

    First the cells are ordered (each flown back and forth from one of its four corners), then that tour's
    swaths are reordered one by one: a swath may leave its cell to be flown later, or a line be flown on
    past a hole. Links cost their geodesic length plus half the flying time of the turns they make; both
    tours take their distances from one matrix over all swath ends.
    """
    cells = [*layout.cells, *layout.patches]
    turn_m = TURN_WEIGHT * turn_s * speed
    swaths = [s for cell in cells for s in cell]
    ends_rot = np.asarray([(x, s.y) for s in swaths for x in (s.x0, s.x1)])
    corner = []  # BL, BR, TL, TR of each cell, as indices of swath ends
    first = 0
    for cell in cells:
        last = first + len(cell) - 1
        corner += [2 * first, 2 * first + 1, 2 * last, 2 * last + 1]
        first = last + 1
    idx = np.asarray(corner)
    dist, start_d = _distances(layout.frame.from_rot(ends_rot), fs, start, among=idx)
    out_x = np.tile([-1.0, 1.0], len(swaths))
    out_x[np.repeat([s.x1 - s.x0 < 1e-9 for s in swaths], 2)] = 0.0  # a point swath has no heading
    if pen is None:  # the screen may have priced the same links already
        pen = turn_penalty(ends_rot, out_x, turn_m=turn_m)
    # cells: entered at the bottom or top line, on its left or right end; the exit follows from parity
    variants: list[list[Variant]] = []
    for ci, cell in enumerate(cells):
        odd = len(cell) % 2 == 1
        inner = sum(s.x1 - s.x0 for s in cell) + sum(abs(q.y - p.y) for p, q in itertools.pairwise(cell))
        inner += 2 * turn_m * (len(cell) - 1)
        variants.append(
            [
                Variant(
                    4 * ci + (0 if up else 2) + (0 if left else 1),
                    4 * ci + (2 if up else 0) + (1 if left == odd else 0),
                    inner,
                )
                for up in (True, False)
                for left in (True, False)
            ]
        )
    corner_dist = dist[np.ix_(idx, idx)]
    route = order_cells(
        variants,
        corner_dist + pen[np.ix_(idx, idx)],
        start=None if start_d is None else start_d[idx],
    )
    for (c1, v1), (c2, v2) in itertools.pairwise(route):
        if not np.isfinite(corner_dist[variants[c1][v1].exit, variants[c2][v2].entry]):
            p = layout.frame.from_rot(ends_rot[[idx[variants[c2][v2].entry]]])[0]
            raise PlanningError(
                f"part of the area near ({p[0]:.1f}, {p[1]:.1f}) cannot be reached without leaving it or "
                "crossing a no-fly zone (a passage is narrower than twice the clearance)",
                where=(float(p[0]), float(p[1])),
                code="plan.coverage.part_area_near_cannot",
                params={"p": f"{p[0]:.1f}", "p2": f"{p[1]:.1f}"},
            )
    offsets = np.cumsum([0] + [len(cell) for cell in cells])
    seq: list[int] = []
    for c, v in route:
        mine = list(range(offsets[c], offsets[c + 1]))
        seq += mine if v < 2 else mine[::-1]
    # the swath tour, its swaths numbered in the cell tour's order
    p_ends = np.repeat(2 * np.asarray(seq), 2) + np.tile([0, 1], len(seq))
    order = order_cells(
        VariantTable.segments(np.asarray([swaths[j].x1 - swaths[j].x0 for j in seq])),
        (dist + pen)[np.ix_(p_ends, p_ends)],
        start=None if start_d is None else start_d[p_ends],
        seed=list(range(len(seq))),
    )
    return [swaths[j] for j in seq], [(swaths[seq[i]], v == 0) for i, v in order]


def _flown_ends(table: np.ndarray, forward: np.ndarray, reach: float) -> np.ndarray:
    """The ends (rotated frame) of swaths given as (x0, x1, reach0, reach1, y) rows, in flying order,
    pushed out by ``reach`` of their full reach."""
    x0, x1, r0, r1, y = table.T
    if reach < 1.0:
        x0, x1 = x0 + (1.0 - reach) * r0, x1 - (1.0 - reach) * r1
    first, second = np.where(forward, x0, x1), np.where(forward, x1, x0)
    return np.column_stack([np.column_stack([first, second]).ravel(), np.repeat(y, 2)])


def _screen_s(lay: _Layout, scan: ScanArea, k: _Knobs, budget: float) -> tuple[float, np.ndarray]:
    """A quick guess at a layout's flight time: its swaths toured greedily by straight links (holes and
    all), at the least reach whose scan meets ``budget``, plus the visits still needed; and the turn
    costs of the links between its swath ends (as ``_tours`` prices them)."""
    table = np.asarray([(s.x0, s.x1, s.reach0, s.reach1, s.y) for c in [*lay.cells, *lay.patches] for s in c])
    x0, x1, _, _, y = table.T
    ends = np.column_stack([np.column_stack([x0, x1]).ravel(), np.repeat(y, 2)])  # sweep along x
    dist = np.hypot(ends[:, None, 0] - ends[None, :, 0], ends[:, None, 1] - ends[None, :, 1])
    out_x = np.tile([-1.0, 1.0], len(table))
    out_x[np.repeat(x1 - x0 < 1e-9, 2)] = 0.0
    pen = turn_penalty(ends, out_x, turn_m=TURN_WEIGHT * k.turn_s * k.speed)
    order = np.asarray(order_cells(VariantTable.segments(x1 - x0), dist + pen, local=False, starts=1))
    flown, forward = table[order[:, 0]], order[:, 1] == 0

    def at(reach: float) -> tuple[float, float]:
        xy = _dedupe(_flown_ends(flown, forward, reach))
        return _time_s(xy, k), uncovered_m2(scan, xy, radius_m=k.w / 2.0)

    # full reach first: when even that misses too much, the visits decide and less reach only costs more
    t, missed = at(_REACHES[-1])
    if missed > budget:
        return t + _fill_guess_s(missed - budget, k), pen
    for reach in _REACHES[:-1]:
        t_less, missed = at(reach)
        if missed <= budget:
            return t_less, pen
    return t, pen


def _distances(
    points: np.ndarray, fs: FreeSpace, start, *, among: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Geodesic distances between points, and from ``start`` to each (straight when it is outside).

    Each point's nearest neighbours get the exact geodesic, among all points and, for the points listed
    in ``among``, also among those.
    """
    # single-row cells share corners: plan distances between distinct points only
    rounded = np.round(points, 6)
    # as complex numbers rows sort by x, then y: the order of a row-wise unique, at a fraction of its cost
    keys, inv = np.unique(rounded[:, 0] + 1j * rounded[:, 1], return_inverse=True)
    uniq = np.column_stack([keys.real, keys.imag])
    inv = inv.ravel()
    with_start = start is not None and fs.region.covers(Point(start))
    pts = np.concatenate([uniq, np.asarray([start], dtype=float)]) if with_start else uniq
    pairs = _nearest_pairs(pts, _NEAREST)
    if among is not None:
        sub = np.unique(inv[among])
        i, j = _nearest_pairs(pts[sub], _NEAREST)
        pairs = (np.concatenate([pairs[0], sub[i]]), np.concatenate([pairs[1], sub[j]]))
    d = fs.distance_matrix(pts, pairs=pairs)
    if with_start:
        return d[:-1, :-1][np.ix_(inv, inv)], d[-1, :-1][inv]
    dist = d[np.ix_(inv, inv)]
    if start is None:
        return dist, None
    return dist, np.hypot(*(points - np.asarray(start, dtype=float)).T)


def _nearest_pairs(points: np.ndarray, nearest: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, for each point and its ``nearest`` closest others (all pairs among few points)."""
    n = len(points)
    if n <= nearest + 1:
        return np.triu_indices(n, 1)
    euclid = np.hypot(points[:, None, 0] - points[None, :, 0], points[:, None, 1] - points[None, :, 1])
    near = np.argpartition(euclid, nearest + 1, axis=1)[:, : nearest + 1]
    i, j = np.repeat(np.arange(n), nearest + 1), near.ravel()
    i, j = np.minimum(i, j), np.maximum(i, j)
    key = np.unique((i * n + j)[i < j])
    return key // n, key % n


def _waypoints(
    frame: _Frame, order: list[tuple[Swath, bool]], fs: FreeSpace, *, reaches: tuple[float, ...] = (1.0,)
) -> list[list[tuple[float, float]]]:
    """Waypoints (original frame) flying the swaths in order, ends pushed out by each of ``reaches``,
    transits kept inside: one route per reach, their blocked legs routed together."""
    table = np.asarray([(s.x0, s.x1, s.reach0, s.reach1, s.y) for s, _ in order]).reshape(-1, 5)
    forward = np.asarray([f for _, f in order], dtype=bool)
    routes = [_dedupe(frame.from_rot(_flown_ends(table, forward, reach))) for reach in reaches]
    return _connect(routes, fs)


def _connect(routes: list[np.ndarray], fs: FreeSpace) -> list[list[tuple[float, float]]]:
    """Replace every leg that would leave the free region by the shortest way around (legs shared by
    several routes are routed once)."""
    starts = np.concatenate([pts[:-1] for pts in routes]).reshape(-1, 2)
    ends = np.concatenate([pts[1:] for pts in routes]).reshape(-1, 2)
    blocked = ~fs.visible_pairs(starts, ends)
    legs = np.concatenate([starts[blocked], ends[blocked]], axis=1)
    ways = list(dict.fromkeys(map(tuple, legs.tolist())))
    detours = dict(zip(ways, fs.paths([((x0, y0), (x1, y1)) for x0, y0, x1, y1 in ways]), strict=True))
    out = []
    first = 0
    for pts in routes:
        wps = [tuple(p) for p in pts.tolist()]
        cut = np.flatnonzero(blocked[first : first + len(pts) - 1])
        first += max(len(pts) - 1, 0)
        for i in cut[::-1].tolist():  # from the end, so earlier indices stay valid
            wps[i : i + 2] = detours[(*wps[i], *wps[i + 1])]
        out.append(wps)
    return out


def _metrics(
    area: Polygon, xy: np.ndarray, *, swath_m: float, speed: float, turn_s: float
) -> tuple[LineString, float, int, float]:
    path = LineString(xy) if len(xy) > 1 else LineString([xy[0], xy[0]])
    length = float(path.length)
    turns = _turns(xy)
    return path, length, turns, length / speed + turns * turn_s


def _uncovered(area: Polygon, path: LineString | Point, swath_m: float):
    """The part of the area farther than half a swath from the path."""
    return overlay("difference", area, swept(path, swath_m / 2.0))


def _long_axis(piece) -> tuple[np.ndarray, np.ndarray, float]:
    """Both ends of a piece's long axis (through its minimum rotated rectangle) and its length."""
    xy = np.asarray(piece.minimum_rotated_rectangle.exterior.coords)
    if len(xy) < 5:
        c = np.asarray(piece.centroid.coords[0])
        return c, c, 0.0
    mids = (xy[:4] + xy[1:5]) / 2.0  # side midpoints: 0-2 and 1-3 are opposite
    a = np.hypot(*(mids[0] - mids[2]))
    b = np.hypot(*(mids[1] - mids[3]))
    return (mids[0], mids[2], float(a)) if a >= b else (mids[1], mids[3], float(b))


def _ring_section(ring: LineString, p: np.ndarray, q: np.ndarray) -> list[tuple[float, float]]:
    """The shorter stretch of a closed ring between the points nearest to ``p`` and ``q``."""
    from shapely.ops import substring

    length = ring.length
    a, b = ring.project(Point(p)), ring.project(Point(q))
    lo, hi = min(a, b), max(a, b)
    if hi - lo <= length / 2:
        part = substring(ring, lo, hi)
        return [tuple(c) for c in shapely.get_coordinates(part)]
    first = shapely.get_coordinates(substring(ring, hi, length))
    second = shapely.get_coordinates(substring(ring, 0.0, lo))
    return [tuple(c) for c in np.concatenate([first, second[1:]])]


def _fill(
    fs: FreeSpace,
    inner: Polygon,
    wps: list[tuple[float, float]],
    pieces: Iterable[tuple[float, Polygon, tuple[float, float]]],
    *,
    swath_m: float,
    need_m2: float,
) -> tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]:
    """Add out-and-back visits to the largest uncovered pieces until about ``need_m2`` more is covered.

    ``pieces`` are (area, outline, middle), largest first. A compact piece gets one visit at its middle;
    a sliver longer than a swath (along an edge the lines nearly follow) is flown along the nearby edge of
    the free region, out and back. Returns the new waypoints and each visit's way out (the way back
    retraces it, so it sees nothing new).
    """
    path = LineString(wps)
    inner_parts = [g for g in shapely.get_parts(inner) if isinstance(g, Polygon)]
    rings = [r for g in inner_parts for r in [g.exterior, *g.interiors]]
    gained = 0.0
    visits: list[tuple[float, list[tuple[float, float]]]] = []  # (distance along path, points to fly)
    for area_m2, piece, middle in pieces:
        if gained >= need_m2 or area_m2 < 1e-3 * swath_m * swath_m:
            break
        p0, p1, length = _long_axis(piece)
        if length > swath_m and rings:
            ring = min(rings, key=lambda r: r.distance(piece))
            targets = _ring_section(ring, p0, p1)
            gained += area_m2
        else:
            centre = Point(middle)
            target = centre if inner.covers(centre) else nearest_points(inner, centre)[0]
            targets = [(target.x, target.y)]
            gained += min(area_m2, math.pi * swath_m * swath_m / 4.0)
        visits.append((path.project(Point(targets[0])), targets))
    if not visits:
        return wps, []
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(np.asarray(wps), axis=0).T))])
    out = list(wps)
    ways_out = []
    visits.sort(key=lambda v: -v[0])
    leave = [path.interpolate(along) for along, _ in visits]
    ways = fs.paths([((q.x, q.y), targets[0]) for q, (_, targets) in zip(leave, visits, strict=True)])
    for (along, targets), way in zip(visits, ways, strict=True):
        k = int(np.searchsorted(cum, along, side="right") - 1)
        k = min(max(k, 0), len(wps) - 2)
        there = [*way, *targets[1:]]
        back = [*targets[::-1][1:], *way[::-1][1:]]  # the same way back
        out[k + 1 : k + 1] = [*there, *back]
        ways_out.append(there)
    return out, ways_out


def _scan_fill(free: Polygon, fs: FreeSpace, frame: _Frame, scan: ScanArea, wps, k: _Knobs, budget: float):
    """Waypoints with visits added until the scan lines find at most ``budget`` (m^2) uncovered (at most
    three rounds), and what they find uncovered."""
    inner = free.buffer(-0.25 * k.c, **_MITRE)
    missed = math.inf
    for _ in range(3):
        rot = frame.to_rot(np.asarray(wps, dtype=float))
        if missed < math.inf:  # after visits: most often enough, which the plain measure tells sooner
            missed = uncovered_m2(scan, rot, radius_m=k.w / 2.0)
            if missed <= budget:
                return wps, missed
        legs = (rot[:-1], rot[1:]) if len(rot) > 1 else (rot, rot)
        pieces = uncovered_pieces(scan, *legs, radius_m=k.w / 2.0)
        missed = sum(p.area_m2 for p in pieces)
        if missed <= budget or len(wps) < 2:
            return wps, missed
        outlines = (  # built as the visits need them: the largest few usually do
            (
                p.area_m2,
                shapely.MultiPoint(frame.from_rot(p.outline())).convex_hull,
                tuple(frame.from_rot(np.asarray([p.centroid()]))[0]),
            )
            for p in pieces
        )
        wps, ways_out = _fill(fs, inner, wps, outlines, swath_m=k.w, need_m2=missed - 0.5 * budget)
        if not ways_out:
            return wps, missed
    return wps, uncovered_m2(scan, frame.to_rot(np.asarray(wps, dtype=float)), radius_m=k.w / 2.0)


def _corner_loss_m2(end_m: float, swath_m: float) -> float:
    """Area left between two neighbouring swath ends that stop ``end_m`` short of a square boundary."""
    r = swath_m / 2.0
    e = min(end_m, r)
    return swath_m * e - e * math.sqrt(r * r - e * e) - r * r * math.asin(e / r)


def end_inset(*, swath_m: float, swaths: int, area_m2: float, min_coverage: float) -> float:
    """How far short of the boundary swaths may end: half a swath, less where the corners left between
    swath ends (about one per swath) would use more than 85 % of the allowed uncovered area.

    >>> end_inset(swath_m=30, swaths=20, area_m2=1e6, min_coverage=0.99)
    15.0
    >>> round(end_inset(swath_m=30, swaths=14, area_m2=120_000, min_coverage=0.99), 1)
    14.0
    """
    r = swath_m / 2.0
    budget = 0.85 * (1.0 - min_coverage) * area_m2 / max(swaths, 1)
    if _corner_loss_m2(r, swath_m) <= budget:
        return r
    lo, hi = 0.0, r
    for _ in range(40):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if _corner_loss_m2(mid, swath_m) <= budget else (lo, mid)
    return lo


def sweep(
    area: Polygon,
    *,
    swath_m: float,
    angle_deg: float | None = None,
    start: tuple[float, float] | None = None,
    speed_m_s: float = 10.0,
    turn_s: float = 3.0,
    clearance_m: float | None = None,
    end_inset_m: float | None = None,
    min_coverage: float = 0.99,
    angle_candidates: int = 2,
) -> SweepPlan:
    """Plan a back-and-forth coverage path over ``area`` (metres; holes are no-fly zones).

    The path stays inside the area and at least ``clearance_m`` (default min(2, swath/8) m) from its
    boundary and holes. Lines one swath apart run at ``angle_deg`` (counter-clockwise from +x), else at
    the fastest of the area's main edge directions; a bent or branching area may instead be cut at reflex
    corners and each leg swept at its own angle. Cells are ordered to shorten the transits, which go
    around holes. Swath ends stop ``end_inset_m`` short of the edge (half a swath unless that would lose
    too much coverage); leftovers get extra swaths, then short visits until ``min_coverage`` is met.
    ``start`` (x, y) picks the cell to begin with; the transit to it is not part of the path.

    >>> from shapely.geometry import box
    >>> plan = sweep(box(0, 0, 400, 300), swath_m=30, angle_deg=0)
    >>> plan.swaths, round(plan.length_m), plan.coverage > 0.99
    (10, 3970, True)
    """
    w = check_positive("swath_m", swath_m)
    speed = check_positive("speed_m_s", speed_m_s)
    if (
        isinstance(turn_s, bool)
        or not isinstance(turn_s, int | float)
        or not math.isfinite(turn_s)
        or turn_s < 0
    ):
        raise PlanningError(
            f"turn_s must be a finite number >= 0, got {turn_s!r}",
            code="plan.coverage.turn_s_finite_number",
            params={"turn_s": repr(turn_s)},
        )
    c = min(2.0, w / 8.0) if clearance_m is None else check_positive("clearance_m", clearance_m)
    if c >= w / 2.0:
        raise PlanningError(
            f"clearance_m ({c:g}) must be less than half the swath ({w / 2:g} m)",
            code="plan.coverage.clearance_m_less_half",
            params={"c": f"{c:g}", "w": f"{w / 2:g}"},
        )
    e = None if end_inset_m is None else check_positive("end_inset_m", end_inset_m)
    if not 0.0 < min_coverage <= 1.0:
        raise PlanningError(
            f"min_coverage must be in (0, 1], got {min_coverage!r}",
            code="plan.coverage.min_coverage",
            params={"min_coverage": repr(min_coverage)},
        )
    if angle_deg is not None:
        check_finite_point("angle_deg", angle_deg, 0.0)
    if start is not None:
        start = check_finite_point("start", *start)
    area = shapely.force_2d(validate_area(area, min_size_m=w))  # plans are flat; altitude comes later
    knobs = _Knobs(w, c, e, speed, turn_s, min_coverage, angle_candidates)
    free = _free_region(area, knobs)
    fs = FreeSpace(free, clearance_m=c)
    angles = [float(angle_deg) % 180.0] if angle_deg is not None else candidate_angles(area)
    # around holes the best direction need not follow any edge (a ring is best swept across)
    extra = _spread_angles(angles) if angle_deg is None and area.interiors else []
    if angle_deg is None:
        # a bent or branching area may fly faster leg by leg, each at its own angle
        try:
            multi, gain = _sweep_parts(area, fs, knobs, start)
        except (PlanningError, shapely.errors.GEOSException):
            multi, gain = None, 1.0  # the single sweep stands
        if multi is not None and gain < 0.9 and multi.coverage >= min_coverage:
            return multi  # clearly better on estimate: skip planning it whole
    else:
        multi = None
    if angle_deg is None and not area.interiors and not _has_reflex_corner(area):
        convex = _convex_sweep(area, free, knobs, start)
        if convex is not None:
            return _plan(area, convex[0], convex[2], [convex[1]], knobs)
    # the parts' plan already meets the target: the whole need not be filled once its route alone is slower
    beat_s = multi.flight_time_s if multi is not None and multi.coverage >= min_coverage else None
    whole = _sweep_region(area, free, fs, knobs, angles, start, beat_s=beat_s, extra_angles=extra)
    if whole is None:
        assert multi is not None
        return multi
    wps, lay, uncovered = whole
    plan = _plan(area, wps, uncovered, [lay], knobs)
    if (
        multi is not None
        and multi.flight_time_s < plan.flight_time_s
        and multi.coverage >= min(min_coverage, plan.coverage)
    ):
        return multi
    return plan


@dataclass(frozen=True, slots=True)
class _Knobs:
    w: float
    c: float
    end_inset: float | None
    speed: float
    turn_s: float
    min_coverage: float
    angle_candidates: int


def flyable(area: Polygon, clearance_m: float):
    """The area shrunk by the clearance, without necks much thinner than the clearance itself.

    A neck a few centimetres wide (a no-fly zone almost touching the boundary) is no way to fly through
    and makes shortest paths numerically fragile, so it is opened (removed) here.
    """
    free = area.buffer(-clearance_m, **_MITRE)
    # round growth: mitred corners on both sides of a cut neck would grow back into each other
    return free.buffer(-0.1 * clearance_m, **_MITRE).buffer(0.1 * clearance_m, quad_segs=2)


def _free_region(area: Polygon, k: _Knobs) -> Polygon:
    """The area shrunk by the clearance; refused when that leaves nothing or pieces cut off."""
    free = flyable(area, k.c)
    parts = [p for p in shapely.get_parts(free) if p.area >= 0.25 * k.w * k.w]
    if not parts:
        raise PlanningError(
            f"area leaves no room to fly {k.c:g} m clear of its boundary and no-fly zones",
            code="plan.coverage.area_leaves_room_fly",
            params={"c": f"{k.c:g}"},
        )
    if len(parts) > 1:
        p = parts[1].representative_point()
        raise PlanningError(
            f"area splits into {len(parts)} parts that cannot be reached from one another while keeping "
            f"{k.c:g} m from the boundary and no-fly zones (narrow passage), "
            f"e.g. the part at ({p.x:.1f}, {p.y:.1f})",
            where=(p.x, p.y),
            code="plan.coverage.area_splits_into_parts",
            params={"n_parts": len(parts), "c": f"{k.c:g}", "x": f"{p.x:.1f}", "y": f"{p.y:.1f}"},
        )
    return parts[0]


def _rough_layouts(
    area: Polygon, rings: list[np.ndarray], k: _Knobs, angles: list[float]
) -> list[tuple[float, int, float]]:
    """(rough flight time, swaths, angle) per angle, quickest first: every angle's lines cut against its
    rotated edges in one numpy pass, swaths pulled in by about half a swath, cells counted."""
    if not angles:
        return []
    c = area.centroid
    shell = np.asarray(area.exterior.coords)
    pts = np.concatenate([np.column_stack([r[:-1], r[1:]]) for r in rings]) - [c.x, c.y, c.x, c.y]
    t = np.radians(np.asarray(angles, dtype=float))
    cos, sin = np.cos(t)[:, None], np.sin(t)[:, None]
    shell_y = -(shell[:, 0] - c.x)[None, :] * sin + (shell[:, 1] - c.y)[None, :] * cos
    x0, y0, x1, y1 = pts.T
    edges = np.stack(  # (angles, edges, 4), as _Frame.to_rot rotates them
        [x0 * cos + y0 * sin, -x0 * sin + y0 * cos, x1 * cos + y1 * sin, -x1 * sin + y1 * cos], axis=2
    )
    ys = [line_positions(float(row.min()), float(row.max()), swath_m=k.w) for row in shell_y]
    lines = np.asarray([len(y) for y in ys])
    line, lo, hi = interval_table(edges[np.repeat(np.arange(len(angles)), lines)], np.concatenate(ys))
    shrink = max(k.w / 2.0 - 1.1 * k.c, 0.05 * k.c)
    bounds = np.concatenate([[0], np.cumsum(lines)])
    cut = np.searchsorted(line, bounds)
    flown_all = np.maximum(hi - lo - 2.0 * shrink, 0.0)
    out = []
    for q, angle in enumerate(angles):
        a, b = cut[q], cut[q + 1]
        n_sw = int(b - a)
        flown = float(flown_all[a:b].sum())
        n_cells = count_cells(line[a:b], lo[a:b], hi[a:b])
        est = (flown + n_sw * k.w + n_cells * 2 * k.w) / k.speed + (2 * n_sw + 2 * n_cells) * k.turn_s
        out.append((est, n_sw, angle))
    return sorted(out, key=lambda item: item[0])


def _sweep_region(
    area: Polygon,
    free: Polygon,
    fs: FreeSpace,
    k: _Knobs,
    angles: list[float],
    start,
    *,
    beat_s: float | None = None,
    extra_angles: list[float] | None = None,
    share: float = 1.0,
) -> tuple[list[tuple[float, float]], _Layout, float] | None:
    """Waypoints sweeping one area at the best of ``angles``, its layout and the area left uncovered.

    None when the route, before the visits that fill it (which only add time), is already slower than
    ``beat_s``. A route may leave ``share`` of the allowed uncovered area before visits are added.
    """
    w, c = k.w, k.c
    tip = 0.05 * c
    # Swaths end on a slightly smaller region than the one legs are checked against, so an end where a
    # line grazes the boundary at a shallow angle is still clearly inside.
    rings = _rings(free.buffer(-0.1 * c, **_MITRE))
    rough = _rough_layouts(area, rings, k, angles)[: max(1, k.angle_candidates)]
    if extra_angles:
        rough += _rough_layouts(area, rings, k, extra_angles)[:_EXTRA_ROUTED]
    layouts = []
    for _, n_swaths, angle in rough:
        if k.end_inset is None:
            end = end_inset(swath_m=w, swaths=n_swaths, area_m2=area.area, min_coverage=k.min_coverage)
        else:
            end = k.end_inset
        layouts.append(
            _layout(
                area,
                rings,
                angle,
                shrink_m=max(end - 1.1 * c, tip),  # ends measured from the area, not the inset region
                swath_m=w,
                clearance_m=c,
                speed=k.speed,
                turn_s=k.turn_s,
            )
        )
    # The rough estimates rank angles poorly on rings and holed areas: each candidate is patched and
    # toured quickly (straight links), the best few are routed in full and finished in order of their
    # guessed time.
    budget = share * (1.0 - k.min_coverage) * area.area
    area_rings = _rings(area)
    screened = []
    for lay in layouts:
        scan = _scan(area_rings, lay, w)
        patches = _patches(lay, scan, swath_m=w, clearance_m=c)
        cells, left = _attach(lay.cells, patches, swath_m=w)
        lay = replace(lay, cells=cells, patches=tuple(left))
        alone = len(layouts) == 1 and beat_s is None  # nothing to rank it against
        guess, pen = (0.0, None) if alone else _screen_s(lay, scan, k, budget)
        screened.append((guess, lay, scan, pen))
    screened.sort(key=lambda item: item[0])
    if beat_s is not None and screened[0][0] > (1.0 + _SCREEN_SLACK) * beat_s:
        return None  # even the quickest screen is clearly slower: routing it would not pay
    routed = []
    for guess, lay, scan, pen in screened[:_ROUTED]:
        if guess > (1.0 + _SCREEN_WINDOW) * screened[0][0]:
            break  # clearly slower on the screen: not worth routing
        _, order = _tours(lay, fs, start, speed=k.speed, turn_s=k.turn_s, pen=pen)
        # Ends pulled in from a slanted boundary leave small corners to the transits and the turns: the
        # least reach that meets the coverage target without any visit is flown. The scan lines measure
        # what each reach misses for a fraction of a buffer's cost.
        # full reach first: when even that misses too much, visits are needed whatever the reach
        (full_route,) = _waypoints(lay.frame, order, fs, reaches=_REACHES[-1:])
        full = uncovered_m2(scan, lay.frame.to_rot(np.asarray(full_route)), radius_m=w / 2.0)
        tries: list[tuple[float, float | None, list[tuple[float, float]], float]] = []  # reach None: visits
        less = _waypoints(lay.frame, order, fs, reaches=_REACHES[:-1]) if full <= budget or beat_s else []
        if full <= budget:
            for reach, wps in zip(_REACHES, less, strict=False):
                missed = uncovered_m2(scan, lay.frame.to_rot(np.asarray(wps)), radius_m=w / 2.0)
                if missed <= budget:
                    tries.append((_time_s(wps, k), reach, wps, missed))
                    break
        if not tries:
            tries.append((_time_s(full_route, k), _REACHES[-1], full_route, full))
        # pulling ends in only shortens the path: the least reach gives a lower bound on the flight time
        least = _time_s(less[0], k) if less else tries[-1][0]
        routed.append((tries[-1][0], least, lay, scan, order, tries))
    if beat_s is not None and min(r[1] for r in routed) > beat_s:
        return None
    # Quickest first, by the time before any visits (a lower bound); a route that misses too much even at
    # full reach gets its visits only when it may still beat the quickest one so far.
    routed.sort(key=lambda item: item[0])
    finals: list[tuple[float, _Layout, list[tuple[Swath, bool]], list]] = []
    for before, _, lay, scan, order, tries in routed:
        if finals and before >= min(f[0] for f in finals):
            break
        if tries[-1][3] > budget:
            filled, missed = _scan_fill(free, fs, lay.frame, scan, tries[-1][2], k, budget)
            tries.append((_time_s(filled, k), None, filled, missed))
        finals.append((tries[-1][0], lay, order, tries))
    # only a route that may win gets the buffer check (which may push it to more reach or visits)
    finals.sort(key=lambda item: item[0])
    best = None
    for t_scanned, lay, order, tries in finals:
        if best is not None and t_scanned >= best[0]:
            break
        filled, uncovered = _finish(area, free, fs, lay, order, tries, k, budget)
        t_filled = _time_s(filled, k)
        if best is None or t_filled < best[0]:
            best = (t_filled, filled, lay, uncovered)
    assert best is not None
    return best[1], best[2], best[3]


def _convex_sweep(area: Polygon, free: Polygon, k: _Knobs, start) -> tuple[list, _Layout, float] | None:
    """The shortest back-and-forth sweep of a convex area among a few angles, line positions and end
    reaches (each side of the area its own), that meets the coverage target and flies within
    ``_LENGTH_SLACK`` of the quickest one's time; None when no reach alone meets the target.

    A convex area is one cell flown line by line, so each setting is judged on scan lines without
    routing: each side's ends are measured at no and at full reach, and its uncovered area taken as
    linear in its reach between the two.
    """
    w, c = k.w, k.c
    rings = _rings(free.buffer(-0.1 * c, **_MITRE))
    area_rings = _rings(area)
    budget = (1.0 - k.min_coverage) * area.area
    levels = np.linspace(0.0, 1.0, 5)
    options = []
    for _, n_swaths, angle in _rough_layouts(area, rings, k, candidate_angles(area))[:_CONVEX_ANGLES]:
        end = k.end_inset
        if end is None:
            end = end_inset(swath_m=w, swaths=n_swaths, area_m2=area.area, min_coverage=k.min_coverage)
        # lines may move only as far as the first and last still reach the area's extremes
        slack = _line_slack(area, angle, w)
        for shift in sorted({round(max(-slack, min(slack, f * w)), 6) for f in _SHIFTS}):
            lay = _layout(
                area, rings, angle, shrink_m=max(end - 1.1 * c, 0.05 * c), swath_m=w, clearance_m=c,
                speed=k.speed, turn_s=k.turn_s, shift_m=shift,
            )  # fmt: skip
            if len(lay.cells) != 1 or lay.patches:
                continue
            coarse = _scan(area_rings, lay, w, lines=_CONVEX_LINES)  # enough to rank settings
            table = np.asarray([(s.x0, s.x1, s.reach0, s.reach1, s.y) for s in lay.cells[0]])
            for first in (True, False):
                fwd = (np.arange(len(table)) % 2 == 0) == first
                options += _convex_options(table, fwd, coarse, lay, levels, k, budget)
    if not options:
        return None
    # the model ranks; the scan lines then check the best few, more reach where they fall short
    quickest = min(o[1] for o in options)
    options.sort(key=lambda o: (o[1] > (1.0 + _LENGTH_SLACK) * quickest, o[0]))
    checked = []
    for _, _, lay, table, fwd, r0, r1, _ in options[:_CONVEX_CHECKED]:
        scan = _scan(area_rings, lay, w)
        while True:
            wps = _convex_route(lay, table, fwd, r0, r1)
            missed, low_share = _side_missed(scan, lay.frame.to_rot(np.asarray(wps)), w)
            if missed <= budget or (r0 >= 1.0 and r1 >= 1.0):
                break
            if (low_share >= 0.5 and r0 < 1.0) or r1 >= 1.0:
                r0 = min(1.0, r0 + 0.25)
            else:
                r1 = min(1.0, r1 + 0.25)
        if missed <= budget:
            checked.append((LineString(wps).length, _time_s(wps, k), lay, wps))
    if not checked:
        return None
    quickest = min(o[1] for o in checked)
    checked.sort(key=lambda o: (o[1] > (1.0 + _LENGTH_SLACK) * quickest, o[0]))
    for _, _, lay, wps in checked:
        missed = _missed_m2(area, wps, w)
        if missed <= budget:
            return wps, lay, missed
    return None


def _side_missed(scan: ScanArea, xy: np.ndarray, swath_m: float) -> tuple[float, float]:
    """What a one-cell path (scan frame) leaves uncovered, and the share of it on the -x side."""
    rows, lo, hi = uncovered_runs(scan, xy, radius_m=swath_m / 2.0)
    mid = (scan.lo + scan.hi)[np.searchsorted(scan.row, rows)] / 2.0
    m2 = (hi - lo) * scan.weight_m[rows]
    total = float(m2.sum())
    return total, float(m2[(lo + hi) / 2.0 < mid].sum()) / total if total > 0 else 0.5


def _line_slack(area: Polygon, angle: float, swath_m: float) -> float:
    """How far the centred sweep lines at ``angle`` may move while the outer ones stay within half a
    swath of the area's extremes."""
    c = area.centroid
    y = _Frame(angle, c.x, c.y).to_rot(np.asarray(area.exterior.coords))[:, 1]
    ys = line_positions(float(y.min()), float(y.max()), swath_m=swath_m)
    return max(0.0, swath_m / 2.0 - (ys[0] - float(y.min())))


def _convex_route(lay: _Layout, table: np.ndarray, fwd: np.ndarray, r0: float, r1: float) -> list:
    """Waypoints of a one-cell sweep with the -x ends at reach ``r0`` and the +x ends at ``r1``."""
    x0 = table[:, 0] + (1.0 - r0) * table[:, 2]
    x1 = table[:, 1] - (1.0 - r1) * table[:, 3]
    rot = _dedupe(_flown_ends(np.column_stack([x0, x1, 0 * x0, 0 * x1, table[:, 4]]), fwd, 1.0))
    return [(float(x), float(y)) for x, y in lay.frame.from_rot(rot)]


def _convex_options(table, fwd, scan: ScanArea, lay: _Layout, levels: np.ndarray, k: _Knobs, budget: float):
    """(length, time, layout, swaths, directions, -x reach, +x reach) of every pair of reach levels whose
    modelled uncovered area meets the budget, for one flying order."""
    w = k.w
    side = []  # area missed on the -x side and on the +x side, at no and at full reach
    for reach in (0.0, 1.0):
        total, low = _side_missed(scan, _dedupe(_flown_ends(table, fwd, reach)), w)
        side.append((total * low, total * (1.0 - low)))
    # the length: swaths grow with both sides' reach; each link joins two ends on one side
    x0, x1, g0, g1, y = table.T
    ends_low = x0[:, None] + (1.0 - levels[None, :]) * g0[:, None]  # (swaths, levels)
    ends_high = x1[:, None] - (1.0 - levels[None, :]) * g1[:, None]
    dy = np.abs(np.diff(y))[:, None]
    high_links = fwd[:-1]  # a swath flown towards +x leaves at its +x end, where the next one starts
    link_low = np.hypot(np.diff(ends_low, axis=0), dy)[~high_links].sum(axis=0)
    link_high = np.hypot(np.diff(ends_high, axis=0), dy)[high_links].sum(axis=0)
    swath = (x1 - x0 - g0 - g1).sum()
    length = swath + levels[:, None] * g0.sum() + levels[None, :] * g1.sum()
    length = length + link_low[:, None] + link_high[None, :]
    missed = ((1 - levels) * side[0][0] + levels * side[1][0])[:, None] + (
        (1 - levels) * side[0][1] + levels * side[1][1]
    )[None, :]
    turns = 2 * (len(table) - 1)
    out = []
    for i, j in zip(*np.nonzero(missed <= _CONVEX_MARGIN * budget), strict=True):
        t = length[i, j] / k.speed + turns * k.turn_s
        out.append((float(length[i, j]), float(t), lay, table, fwd, float(levels[i]), float(levels[j]), scan))
    return out


def _scan(
    area_rings: list[np.ndarray], lay: _Layout, swath_m: float, *, lines: int | None = None
) -> ScanArea:
    """The area on scan lines along a layout's sweep lines (in its frame)."""
    rot = [lay.frame.to_rot(r) for r in area_rings]
    first = min(s.y for cell in lay.cells for s in cell)
    per_swath = {} if lines is None else {"lines_per_swath": lines}
    return scan_area(rot, swath_m=swath_m, band_edge_m=first - swath_m / 2.0, **per_swath)


def _fill_guess_s(excess_m2: float, k: _Knobs) -> float:
    """A rough time for the visits that cover ``excess_m2`` more: each gains about a quarter of a swath's
    disc and flies a swath out and back with three turns."""
    if excess_m2 <= 0:
        return 0.0
    visits = math.ceil(excess_m2 / (math.pi * k.w * k.w / 16.0))
    return visits * (2.0 * k.w / k.speed + 3.0 * k.turn_s)


def _finish(area, free, fs, lay: _Layout, order, tries, k: _Knobs, budget: float):
    """The route at the least reach whose buffered cover leaves at most ``budget`` (m^2) uncovered, or
    the route with visits (the scans chose where to start: they measure a little differently); and the
    area it leaves uncovered.

    A route the scan lines find clear of the budget by more than their error is taken on their figure.
    """
    if tries[-1][3] <= budget - SCAN_ERROR * area.area and len(tries[-1][2]) > 1:
        return tries[-1][2], tries[-1][3]
    reach = tries[-1][1]
    later = _REACHES[_REACHES.index(reach) + 1 :] if reach is not None else ()
    routes = [tries[-1][2], *(_waypoints(lay.frame, order, fs, reaches=later) if later else [])]
    for wps in routes:
        missed = _missed_m2(area, wps, k.w) if len(wps) > 1 else math.inf
        if missed <= budget:
            return wps, missed
    return _fill_to_target(area, free, fs, wps, k)  # wps: full reach, or already visited


def _missed_m2(area: Polygon, wps: list[tuple[float, float]], swath_m: float) -> float:
    """Area left uncovered by the path's buffer (its arcs are chords, so never less than the truth)."""
    return overlay("difference", area, swept(LineString(wps), swath_m / 2.0)).area


def _time_s(wps: list[tuple[float, float]] | np.ndarray, k: _Knobs) -> float:
    xy = _dedupe(np.asarray(wps))
    length = float(np.hypot(*np.diff(xy, axis=0).T).sum()) if len(xy) > 1 else 0.0
    return length / k.speed + _turns(xy) * k.turn_s


def _fill_to_target(area, free, fs, wps, k: _Knobs):
    """Waypoints with visits added until the coverage target is met (at most three rounds), and the area
    they leave uncovered (m^2)."""
    main = LineString(wps) if len(wps) > 1 else Point(wps[0])
    cover = swept(main, k.w / 2.0)
    missed = overlay("difference", area, cover)
    budget = (1.0 - k.min_coverage) * area.area
    inner = None
    for _ in range(3):
        if missed.area <= budget or len(wps) < 2:
            break
        if inner is None:
            inner = free.buffer(-0.25 * k.c, **_MITRE)
        pieces = sorted(shapely.get_parts(missed), key=lambda g: -g.area)
        outlines = [(g.area, g, (g.centroid.x, g.centroid.y)) for g in pieces]
        wps, ways_out = _fill(fs, inner, wps, outlines, swath_m=k.w, need_m2=missed.area - 0.5 * budget)
        if not ways_out:
            break
        extra = swept(MultiLineString([LineString(w) for w in ways_out if len(w) > 1]), k.w / 2.0)
        cover = overlay("union", cover, extra)
        missed = overlay("difference", area, cover)
    return wps, missed.area


def _plan(area: Polygon, wps, uncovered: float, layouts: list[_Layout], k: _Knobs) -> SweepPlan:
    xy = _dedupe(np.asarray(wps))
    path, length, turns, t = _metrics(area, xy, swath_m=k.w, speed=k.speed, turn_s=k.turn_s)
    main = max(layouts, key=lambda lay: sum(s.x1 - s.x0 for cell in lay.cells for s in cell))
    return SweepPlan(
        path=path,
        waypoints=tuple((float(x), float(y)) for x, y in xy),
        length_m=length,
        turns=turns,
        coverage=1.0 - uncovered / area.area,
        flight_time_s=t,
        angle_deg=main.frame.angle_deg,
        cells=sum(len(lay.cells) + len(lay.patches) for lay in layouts),
        swaths=sum(len(cell) for lay in layouts for cell in [*lay.cells, *lay.patches]),
        swath_m=k.w,
    )


def _quick_estimate_s(area: Polygon, free_rings: list[np.ndarray], angles: list[float], k: _Knobs) -> float:
    """The best rough flight time over ``angles`` from the line intervals alone (no swaths or cells built).

    Every angle's lines are cut against its rotated edges in one numpy pass.
    """
    c = area.centroid
    shell = np.asarray(area.exterior.coords)
    pts = np.concatenate([np.column_stack([r[:-1], r[1:]]) for r in free_rings])  # (x0, y0, x1, y1) rows
    cos = np.asarray([math.cos(math.radians(a)) for a in angles])[:, None]
    sin = np.asarray([math.sin(math.radians(a)) for a in angles])[:, None]
    shell_y = -(shell[:, 0] - c.x)[None, :] * sin + (shell[:, 1] - c.y)[None, :] * cos
    x0, y0, x1, y1 = pts[:, 0] - c.x, pts[:, 1] - c.y, pts[:, 2] - c.x, pts[:, 3] - c.y
    edges = np.stack(  # (angles, edges, 4), as _Frame.to_rot rotates them
        [x0 * cos + y0 * sin, -x0 * sin + y0 * cos, x1 * cos + y1 * sin, -x1 * sin + y1 * cos], axis=2
    )
    ys = [line_positions(float(row.min()), float(row.max()), swath_m=k.w) for row in shell_y]
    lines = np.asarray([len(y) for y in ys])
    pairs, widths = interval_widths(edges[np.repeat(np.arange(len(angles)), lines)], np.concatenate(ys))
    best = math.inf
    row = wid = 0
    for n_lines in lines.tolist():
        counts = pairs[row : row + n_lines]
        n_sw = int(counts.sum())
        flown = float(np.clip(widths[wid : wid + n_sw] - k.w, 0.0, None).sum())
        cells = int(counts[0]) + int(np.clip(np.diff(counts), 0, None).sum()) if n_lines else 0
        est = (flown + n_sw * k.w + 2 * cells * k.w) / k.speed + (2 * n_sw + 2 * cells) * k.turn_s
        best = min(best, est)
        row, wid = row + n_lines, wid + n_sw
    return best


def _sweep_parts(area: Polygon, fs: FreeSpace, k: _Knobs, start) -> tuple[SweepPlan | None, float]:
    """Sweep the legs of a concave area each at its own angle and join them inside the area.

    Returns the plan (None when no cut pays off) and the estimated time ratio of parts to whole.
    """
    if not _has_reflex_corner(area):
        return None, 1.0
    memo: dict[bytes, float] = {}

    def estimate(poly: Polygon) -> float:
        key = poly.wkb
        if key not in memo:
            free = poly.buffer(-k.c, **_MITRE)
            if not isinstance(free, Polygon) or free.is_empty:
                memo[key] = math.inf
            else:
                rings = _rings(free)
                memo[key] = _quick_estimate_s(poly, rings, candidate_angles(poly, limit=3), k)
        return memo[key]

    join_s = 2 * k.w / k.speed + 4 * k.turn_s
    parts = decompose(area, estimate_s=estimate, join_s=join_s, min_size_m=k.w)
    if len(parts) < 2:
        return None, 1.0
    gain = (sum(estimate(p) for p in parts) + join_s * (len(parts) - 1)) / estimate(area)
    legs = []
    layouts = []
    for part in parts:
        try:
            free = _free_region(part, k)
        except PlanningError:
            return None, 1.0
        # each part keeps a margin: the joined route must still meet the target as a whole
        region = _sweep_region(
            part, free, FreeSpace(free, clearance_m=k.c), k, candidate_angles(part), None, share=0.95
        )
        assert region is not None  # no time to beat
        wps, lay, _ = region
        legs.append(wps)
        layouts.append(lay)
    # join: try each leg first, then the nearest open end of the remaining legs
    here0 = np.asarray(start, dtype=float) if start is not None else None
    best = None
    for first in range(len(legs)):
        for flip in (False, True):
            seq = [legs[first][::-1] if flip else legs[first]]
            cost = 0.0 if here0 is None else float(np.hypot(*(np.asarray(seq[0][0]) - here0)))
            left = [i for i in range(len(legs)) if i != first]
            while left:
                end = np.asarray(seq[-1][-1])
                options = [
                    (float(np.hypot(*(np.asarray(legs[i][0 if not f else -1]) - end))), i, f)
                    for i in left
                    for f in (False, True)
                ]
                d, i, f = min(options)
                cost += d
                seq.append(legs[i][::-1] if f else legs[i])
                left.remove(i)
            if best is None or cost < best[0]:
                best = (cost, seq)
    assert best is not None
    seq = best[1]
    joined: list[tuple[float, float]] = list(seq[0])
    transits = fs.paths([(seq[i][-1], seq[i + 1][0]) for i in range(len(seq) - 1)])
    for transit, leg in zip(transits, seq[1:], strict=True):
        joined += transit[1:-1] + list(leg)
    joined, uncovered = _fill_to_target(area, fs.region, fs, joined, k)
    return _plan(area, joined, uncovered, layouts, k), gain


def _has_reflex_corner(area: Polygon) -> bool:
    xy = np.asarray(area.exterior.coords)[:-1]
    a = xy - np.roll(xy, 1, axis=0)
    b = np.roll(xy, -1, axis=0) - xy
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return bool((cross < -1e-9).any())  # validate_area oriented the shell counter-clockwise
