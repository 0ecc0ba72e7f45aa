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
from dataclasses import dataclass

import numpy as np
from shapely.geometry import MultiPolygon, Polygon

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

    @property
    def area_m2(self) -> float:
        """The area as the scan lines see it."""
        return float(((self.hi - self.lo) * self.weight_m[self.row]).sum())


def _rings(geom: Polygon | MultiPolygon) -> list[np.ndarray]:
    polys = [geom] if isinstance(geom, Polygon) else list(geom.geoms)
    return [np.asarray(r.coords) for p in polys for r in [p.exterior, *p.interiors]]


def _spans(y0: np.ndarray, y1: np.ndarray, ys: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    """(item, scan line) pairs: every scan line within [min(y0, y1) - pad, max(y0, y1) + pad)."""
    first = np.searchsorted(ys, np.minimum(y0, y1) - pad, side="left")
    last = np.searchsorted(ys, np.maximum(y0, y1) + pad, side="left")
    count = np.maximum(last - first, 0)
    item = np.repeat(np.arange(len(y0)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return item, first[item] + offset


def scan_area(rings: list[np.ndarray], *, swath_m: float, band_edge_m: float) -> ScanArea:
    """The inside intervals (even-odd over ``rings``, already in the frame) on the scan lines of bands one
    swath wide, one of which starts at y = ``band_edge_m``."""
    y_min = min(float(r[:, 1].min()) for r in rings)
    y_max = max(float(r[:, 1].max()) for r in rings)
    j0 = math.floor((y_min - band_edge_m) / swath_m)
    j1 = math.ceil((y_max - band_edge_m) / swath_m)
    step = swath_m / LINES_PER_SWATH
    bands = band_edge_m + swath_m * np.arange(j0, j1)
    ys = (bands[:, None] + step * (np.arange(LINES_PER_SWATH) + 0.5)[None, :]).ravel()
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
    return ScanArea(ys, weight, k[0::2], x[0::2], x[1::2])


def _capsules(xy: np.ndarray, ys: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (leg, scan line) pair that meets: the scan line and the x-interval of the leg's capsule on it."""
    p, q = xy[:-1], xy[1:]
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
    # the rectangle swept by the leg: its four sides, where the scan line crosses them
    dx, dy = qx - px, qy - py
    length = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        nx, ny = np.where(length > 0, -dy / length, 0.0), np.where(length > 0, dx / length, 0.0)
    corners = [
        (px + radius * nx, py + radius * ny),
        (qx + radius * nx, qy + radius * ny),
        (qx - radius * nx, qy - radius * ny),
        (px - radius * nx, py - radius * ny),
    ]
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        ok = (np.minimum(ay, by) <= y) & (y <= np.maximum(ay, by)) & (ay != by)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = ax + (y - ay) * (bx - ax) / (by - ay)
        lo = np.where(ok, np.minimum(lo, x), lo)
        hi = np.where(ok, np.maximum(hi, x), hi)
    keep = hi > lo
    return k[keep], lo[keep], hi[keep]


def uncovered_m2(scan: ScanArea, path_xy: np.ndarray, *, radius_m: float) -> float:
    """The part of the scanned area farther than ``radius_m`` from the path (in the scan's frame), m^2."""
    if len(path_xy) == 1:
        path_xy = np.concatenate([path_xy, path_xy])
    k, lo, hi = _capsules(np.asarray(path_xy, dtype=float), scan.ys, radius_m)
    # one sweep over both kinds of interval per scan line: +-1 for the area, +-1 for the capsules
    rows = np.concatenate([scan.row, scan.row, k, k])
    xs = np.concatenate([scan.lo, scan.hi, lo, hi])
    n_a, n_c = len(scan.row), len(k)
    one = np.ones(n_a, dtype=np.int32)
    d_area = np.concatenate([one, -one, np.zeros(2 * n_c, dtype=np.int32)])
    d_cover = np.concatenate([0 * one, 0 * one, np.ones(n_c, dtype=np.int32), -np.ones(n_c, dtype=np.int32)])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    inside = np.cumsum(d_area[order]) > 0
    covered = np.cumsum(d_cover[order]) > 0
    gap = np.diff(xs) * scan.weight_m[rows[:-1]]
    same = rows[1:] == rows[:-1]
    return float(gap[same & inside[:-1] & ~covered[:-1]].sum())


__all__ = ["LINES_PER_SWATH", "ScanArea", "scan_area", "uncovered_m2"]
