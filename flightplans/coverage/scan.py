"""The area a path leaves uncovered, measured on scan lines: exact along each line, sampled across them.

Buffering a long path and subtracting it from the area costs GEOS milliseconds; a planner that weighs
several routes only needs to know how much each one misses. Here the area is cut by lines parallel to
the sweep lines; on each scan line the inside intervals of the area and of every leg's capsule (all
points within the radius of the leg) are exact, and the uncovered length is their difference. The scan
lines are the midpoints of equal slices of each swath's band, so the kinks where two swaths' capsules
meet fall between them. Across the lines the figure is sampled: on the benchmark plans it is within
0.06 % of the area of a fine buffer's (the round caps of swath ends come out about 1 % too large), and the
planner checks the route it flies with a buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from flightplans.coverage.swaths import expand_ranges

# Scan lines per swath band.
LINES_PER_SWATH = 12


@dataclass(frozen=True, slots=True)
class ScanArea:
    """An area's inside intervals (``row``, ``lo``, ``hi``) on scan lines y = ``ys[k]`` of a frame, each
    line standing for a strip ``weight_m[k]`` wide."""

    ys: np.ndarray
    weight_m: np.ndarray
    row: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    # for measuring how much of a stretch of a line is inside: interval ends as one sorted key (line, x)
    # and the inside length along the line up to each of them
    span_m: float = 0.0
    key: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inside_m: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def inside_up_to(self, row: np.ndarray, x: np.ndarray) -> np.ndarray:
        """How much of scan line ``row`` left of ``x`` is inside the area (|x| below the span)."""
        q = row * self.span_m + x
        i = np.searchsorted(self.key, q, side="right") - 1
        got = np.where(i >= 0, self.inside_m[np.maximum(i, 0)], 0.0)
        # past an interval's start (even index) the inside length grows with x; past an end it does not
        grows = (i >= 0) & (i % 2 == 0)
        line_start = row * self.span_m - self.span_m / 2.0
        same_line = (i >= 0) & (self.key[np.maximum(i, 0)] >= line_start)
        got = np.where(same_line, got, 0.0)
        return got + np.where(grows & same_line, q - self.key[np.maximum(i, 0)], 0.0)

    @property
    def area_m2(self) -> float:
        """The area as the scan lines see it."""
        return float(((self.hi - self.lo) * self.weight_m[self.row]).sum())


def _spans(y0: np.ndarray, y1: np.ndarray, ys: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    """(item, scan line) pairs: every scan line within [min(y0, y1) - pad, max(y0, y1) + pad)."""
    first = np.searchsorted(ys, np.minimum(y0, y1) - pad, side="left")
    last = np.searchsorted(ys, np.maximum(y0, y1) + pad, side="left")
    return expand_ranges(first, last)


def scan_area(
    rings: list[np.ndarray], *, swath_m: float, band_edge_m: float, lines_per_swath: int = LINES_PER_SWATH
) -> ScanArea:
    """The inside intervals (even-odd over ``rings``, already in the frame) on the scan lines of bands one
    swath wide, one of which starts at y = ``band_edge_m``."""
    y_min = min(float(r[:, 1].min()) for r in rings)
    y_max = max(float(r[:, 1].max()) for r in rings)
    j0 = math.floor((y_min - band_edge_m) / swath_m)
    j1 = math.ceil((y_max - band_edge_m) / swath_m)
    step = swath_m / lines_per_swath
    bands = band_edge_m + swath_m * np.arange(j0, j1)
    ys = (bands[:, None] + step * (np.arange(lines_per_swath) + 0.5)[None, :]).ravel()
    weight = np.full(len(ys), step)
    keep = (ys > y_min) & (ys < y_max)
    ys, weight = ys[keep], weight[keep]
    edges = np.concatenate([np.column_stack([r[:-1], r[1:]]) for r in rings])
    x0, y0, x1, y1 = edges.T
    e, k = _spans(y0, y1, ys, 0.0)
    lo_y, hi_y = np.minimum(y0[e], y1[e]), np.maximum(y0[e], y1[e])
    y = ys[k]
    crosses = (lo_y <= y) & (y < hi_y)
    e, k, y = e[crosses], k[crosses], y[crosses]
    x = x0[e] + (y - y0[e]) * (x1[e] - x0[e]) / (y1[e] - y0[e])
    order = np.lexsort((x, k))
    k, x = k[order], x[order]
    # even-odd: crossings pair up along each line (each line crosses every ring an even number of times)
    row, lo, hi = k[0::2], x[0::2], x[1::2]
    span = 4.0 * float(max(np.abs(x).max(initial=0.0), 1.0))
    key = np.column_stack([row * span + lo, row * span + hi]).ravel()
    # inside length along its line up to each interval end: cumulative per line
    length = hi - lo
    total = np.cumsum(length)
    before_line = np.concatenate([[0.0], total])[np.searchsorted(row, row, side="left")]
    upto_end = total - before_line
    inside = np.column_stack([upto_end - length, upto_end]).ravel()
    return ScanArea(ys, weight, row, lo, hi, span, key, inside)


def _capsules(
    p: np.ndarray, q: np.ndarray, ys: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (leg p[i] -> q[i], scan line) pair that meets: the scan line and the x-interval of the leg's
    capsule on it."""
    # most legs run along the scan lines (swaths): their capsule on a line is the leg grown by a chord
    # (a leg within a millionth of level counts as level: the closed form below divides by its rise)
    flat = np.abs(p[:, 1] - q[:, 1]) <= 1e-6 * np.hypot(*(q - p).T)
    seg, k = _spans(p[flat, 1], q[flat, 1], ys, radius)
    half = np.sqrt(np.maximum(radius * radius - (ys[k] - p[flat, 1][seg]) ** 2, 0.0))
    x_lo = np.minimum(p[flat, 0], q[flat, 0])[seg] - half
    x_hi = np.maximum(p[flat, 0], q[flat, 0])[seg] + half
    k_s, lo_s, hi_s = _slanted(p[~flat], q[~flat], ys, radius)
    return np.concatenate([k, k_s]), np.concatenate([x_lo, lo_s]), np.concatenate([x_hi, hi_s])


def _slanted(
    p: np.ndarray, q: np.ndarray, ys: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_capsules`` for any legs: two end discs and the rectangle between them, met by each line."""
    seg, k = _spans(p[:, 1], q[:, 1], ys, radius)
    y = ys[k]
    px, py, qx, qy = p[seg, 0], p[seg, 1], q[seg, 0], q[seg, 1]
    lo = np.full(len(seg), np.inf)
    hi = np.full(len(seg), -np.inf)
    # the two end discs
    for cx, cy in ((px, py), (qx, qy)):
        h2 = radius * radius - (y - cy) ** 2
        ok = h2 >= 0
        half = np.sqrt(np.where(ok, h2, 0.0))
        lo = np.where(ok, np.minimum(lo, cx - half), lo)
        hi = np.where(ok, np.maximum(hi, cx + half), hi)
    # The rectangle swept by the leg, P + t (Q - P) + u n with t in [0, 1] and |u| <= r: on line y its
    # points run x = x_line(y) - u |PQ| / dy for the u that keep t in [0, 1] (legs here are not level).
    dx, dy = qx - px, qy - py
    flip = dy < 0
    px, py, qx, qy = (
        np.where(flip, qx, px),
        np.where(flip, qy, py),
        np.where(flip, px, qx),
        np.where(flip, py, qy),
    )
    dx, dy = qx - px, qy - py
    length = np.hypot(dx, dy)
    ny = dx / length
    on_line = px + dx * (y - py) / dy
    with np.errstate(invalid="ignore", divide="ignore"):
        u_a, u_b = (y - qy) / ny, (y - py) / ny  # the t = 1 and t = 0 ends of the u range
    vertical = ny == 0
    u_lo = np.where(vertical, np.where((py <= y) & (y <= qy), -radius, np.inf), np.minimum(u_a, u_b))
    u_hi = np.where(vertical, np.where((py <= y) & (y <= qy), radius, -np.inf), np.maximum(u_a, u_b))
    u_lo, u_hi = np.maximum(u_lo, -radius), np.minimum(u_hi, radius)
    ok = u_lo <= u_hi
    scale = length / dy
    lo = np.where(ok, np.minimum(lo, on_line - u_hi * scale), lo)
    hi = np.where(ok, np.maximum(hi, on_line - u_lo * scale), hi)
    keep = hi > lo
    return k[keep], lo[keep], hi[keep]


def _gaps(scan: ScanArea, k: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """The uncovered intervals: scan line, start and end of each stretch inside the area and outside every
    capsule interval (``k``, ``lo``, ``hi``); stretches that touch on a line are not yet merged."""
    # one sweep over both kinds of interval per scan line: +-1 for the area, +-1 for the capsules
    rows = np.concatenate([scan.row, scan.row, k, k])
    xs = np.concatenate([scan.lo, scan.hi, lo, hi])
    n_a, n_c = len(scan.row), len(k)
    d_area = np.zeros(len(rows), dtype=np.int32)
    d_area[:n_a], d_area[n_a : 2 * n_a] = 1, -1
    d_cover = np.zeros(len(rows), dtype=np.int32)
    d_cover[2 * n_a : 2 * n_a + n_c], d_cover[2 * n_a + n_c :] = 1, -1
    # scan lines first, then x: one float key sorts faster than a lexsort of two
    span = float(max(np.abs(xs).max(initial=0.0), 1.0)) * 4.0
    order = np.argsort(rows * span + xs)
    rows, xs = rows[order], xs[order]
    inside = np.cumsum(d_area[order]) > 0
    covered = np.cumsum(d_cover[order]) > 0
    gap = (rows[1:] == rows[:-1]) & inside[:-1] & ~covered[:-1] & (xs[1:] > xs[:-1])
    return rows[:-1][gap], xs[:-1][gap], xs[1:][gap]


def uncovered_m2(scan: ScanArea, path_xy: np.ndarray, *, radius_m: float) -> float:
    """The part of the scanned area farther than ``radius_m`` from the path (in the scan's frame), m^2."""
    xy = np.asarray(path_xy, dtype=float).reshape(-1, 2)
    k, lo, hi = _capsules(xy[:-1] if len(xy) > 1 else xy, xy[1:] if len(xy) > 1 else xy, scan.ys, radius_m)
    # merge the capsule intervals of each line (sorted by start, a running maximum of the ends), then
    # count the inside length each merged stretch covers
    span = scan.span_m
    lo = np.clip(lo, -span / 4.0, span / 4.0)
    hi = np.clip(hi, -span / 4.0, span / 4.0)
    order = np.argsort(k * span + lo)
    k, lo, hi = k[order], lo[order], hi[order]
    reach = np.maximum.accumulate(k * span + hi)
    start = np.ones(len(k), dtype=bool)
    start[1:] = k[1:] * span + lo[1:] > reach[:-1]
    first = np.flatnonzero(start)
    end_key = reach[np.concatenate([first[1:] - 1, [len(k) - 1]])] if len(k) else reach
    rows = k[first]
    covered = scan.inside_up_to(rows, end_key - rows * span) - scan.inside_up_to(rows, lo[first])
    area = float(((scan.hi - scan.lo) * scan.weight_m[scan.row]).sum())
    return area - float((covered * scan.weight_m[rows]).sum())


def uncovered_runs(scan: ScanArea, path_xy: np.ndarray, *, radius_m: float):
    """What the path leaves uncovered on each scan line: (line, start, end) of each stretch (stretches that
    touch may be split), in the scan's frame."""
    xy = np.asarray(path_xy, dtype=float).reshape(-1, 2)
    k, lo, hi = _capsules(xy[:-1] if len(xy) > 1 else xy, xy[1:] if len(xy) > 1 else xy, scan.ys, radius_m)
    return _gaps(scan, k, lo, hi)


@dataclass(frozen=True, slots=True)
class Piece:
    """A connected part of what a path leaves uncovered: its runs on the scan lines (``y``, ``lo``, ``hi``
    rows, each standing for a strip ``weight_m`` wide) and its area."""

    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    weight_m: np.ndarray
    area_m2: float

    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max), the strips' edges included."""
        half = self.weight_m / 2.0
        return (
            float(self.lo.min()),
            float((self.y - half).min()),
            float(self.hi.max()),
            float((self.y + half).max()),
        )

    def centroid(self) -> tuple[float, float]:
        """The area-weighted middle of the runs."""
        mass = (self.hi - self.lo) * self.weight_m
        return (
            float(((self.lo + self.hi) / 2.0 * mass).sum() / mass.sum()),
            float((self.y * mass).sum() / mass.sum()),
        )

    def outline(self) -> np.ndarray:
        """The runs' strip corners (for a hull around the piece)."""
        half = self.weight_m / 2.0
        xs = np.concatenate([self.lo, self.hi, self.lo, self.hi])
        ys = np.concatenate([self.y - half, self.y - half, self.y + half, self.y + half])
        return np.column_stack([xs, ys])


def uncovered_pieces(
    scan: ScanArea, p: np.ndarray, q: np.ndarray, *, radius_m: float, open_m: float = 0.0
) -> list[Piece]:
    """What the legs p[i] -> q[i] leave uncovered, as connected pieces, largest first.

    Runs on neighbouring scan lines that overlap belong to one piece; with ``open_m``, only by more than
    that much at each end (a thin neck where two cusps touch does not join them).
    """
    k, lo, hi = _capsules(np.asarray(p, dtype=float), np.asarray(q, dtype=float), scan.ys, radius_m)
    rows, a, b = _gaps(scan, k, lo, hi)
    if not len(rows):
        return []
    # merge stretches that touch on a line (an area or capsule end between them changed nothing)
    start = np.ones(len(rows), dtype=bool)
    start[1:] = (rows[1:] != rows[:-1]) | (a[1:] > b[:-1])
    b = np.maximum.reduceat(b, np.flatnonzero(start))
    rows, a = rows[start], a[start]
    # opening: runs narrower than the opening vanish, the others join where they overlap by more than it
    keep = b - a > 2.0 * open_m
    rows, a, b = rows[keep], a[keep], b[keep]
    if not len(rows):
        return []
    span = float(max(np.abs(a).max(), np.abs(b).max(), 1.0)) * 4.0
    key_a, key_b = rows * span + a + open_m, rows * span + b - open_m  # both sorted: runs are disjoint
    # the runs one line up that overlap run i: a contiguous range of them
    j0 = np.searchsorted(key_b, (rows + 1) * span + a + open_m, side="right")
    j1 = np.searchsorted(key_a, (rows + 1) * span + b - open_m, side="left")
    u, v = expand_ranges(j0, j1)
    label = _components(len(rows), u, v)
    weight = scan.weight_m[rows]
    ys = scan.ys[rows]
    order = np.argsort(label, kind="stable")
    cut = np.flatnonzero(np.diff(label[order])) + 1
    area = np.add.reduceat(((b - a) * weight)[order], np.concatenate([[0], cut]))
    out = [
        Piece(ys[m], a[m], b[m], weight[m], float(m2))
        for m, m2 in zip(np.split(order, cut), area.tolist(), strict=True)
    ]
    out.sort(key=lambda piece: -piece.area_m2)
    return out


def _components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The smallest index of each node's connected component, for edges u[i] - v[i]."""
    label = np.arange(n)
    while True:
        lu, lv = label[u], label[v]
        low = np.minimum(lu, lv)
        if np.array_equal(lu, lv):
            return label
        np.minimum.at(label, lu, low)
        np.minimum.at(label, lv, low)
        for _ in range(4):  # pointer jumping: every node to its root's root
            label = label[label]


__all__ = [
    "LINES_PER_SWATH",
    "Piece",
    "ScanArea",
    "scan_area",
    "uncovered_m2",
    "uncovered_pieces",
    "uncovered_runs",
]
