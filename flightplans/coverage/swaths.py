"""Swaths and cells in a frame rotated so sweep lines run along x.

Lines are spaced one swath apart and centred on the area's extent, so the first and last lines sit at most
half a swath from the area's edge. Each line is cut against the free region (even-odd over its rings); lines'
intervals that continue one another one-to-one form a boustrophedon cell, swept back and forth in one go.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Swath:
    """One pass along a line: ``x0 <= x1`` where it is flown, ``lo``/``hi`` where the free region is."""

    line: int
    y: float
    x0: float
    x1: float
    lo: float
    hi: float
    # how far each end was pushed out to reach a slanted boundary (see band_reach); 0 for no reach
    reach0: float = 0.0
    reach1: float = 0.0

    def ends(self, reach: float = 1.0) -> tuple[float, float]:
        """(x0, x1) with the ends pushed out by ``reach`` (0..1) of their full reach.

        >>> Swath(0, 0.0, 10.0, 90.0, 0.0, 100.0, reach0=4.0).ends(0.5)
        (12.0, 90.0)
        """
        if reach >= 1.0:
            return self.x0, self.x1
        return self.x0 + (1.0 - reach) * self.reach0, self.x1 - (1.0 - reach) * self.reach1


def line_positions(y_min: float, y_max: float, *, swath_m: float) -> np.ndarray:
    """y of each sweep line: ceil(height / swath) lines, centred, spaced one swath apart.

    >>> line_positions(0.0, 100.0, swath_m=30).tolist()
    [5.0, 35.0, 65.0, 95.0]
    """
    height = y_max - y_min
    n = max(1, math.ceil(height / swath_m - 1e-6))  # a height of exactly k swaths needs k lines
    offset = (height - (n - 1) * swath_m) / 2.0
    return y_min + offset + swath_m * np.arange(n)


def _crossings(edges: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted x of every edge crossing per line (inf-padded) and the number of crossings per line.

    ``edges`` holds (x0, y0, x1, y1) rows shared by all lines, or one such table per line.
    """
    x0, y0, x1, y1 = (edges[..., q] if edges.ndim == 3 else edges[None, :, q] for q in range(4))
    lo_y, hi_y = np.minimum(y0, y1), np.maximum(y0, y1)
    yy = ys[:, None]
    crosses = (lo_y <= yy) & (yy < hi_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (yy - y0) * (x1 - x0) / (y1 - y0)
    xs = np.where(crosses, xs, np.inf)
    xs.sort(axis=1)
    return xs, crosses.sum(axis=1)


def interval_widths(edges: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per line, the number of inside intervals and (flattened, line by line) every interval's width; for
    estimates. ``edges`` as for ``line_intervals``, or one edge table per line."""
    xs, counts = _crossings(edges, ys)
    pairs = counts // 2
    width = max(int(pairs.max(initial=0)), 1)
    starts = xs[:, 0 : 2 * width : 2]
    ends = xs[:, 1 : 2 * width : 2]
    valid = np.arange(width)[None, :] < pairs[:, None]
    with np.errstate(invalid="ignore"):  # inf - inf in the padding, masked out below
        return pairs, (ends - starts)[valid]


def interval_table(edges: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``line_intervals`` as arrays: each interval's line index, lo and hi, line by line, sorted."""
    xs, counts = _crossings(edges, ys)
    width = max(int((counts // 2).max(initial=0)), 1)
    lo, hi = xs[:, 0 : 2 * width : 2], xs[:, 1 : 2 * width : 2]
    with np.errstate(invalid="ignore"):  # inf - inf in the padding, masked out
        keep = (np.arange(width)[None, :] < (counts // 2)[:, None]) & (hi - lo > 1e-6)
    line = np.nonzero(keep)[0]
    return line, lo[keep], hi[keep]


def line_intervals(edges: np.ndarray, ys: np.ndarray) -> list[list[tuple[float, float]]]:
    """For each y, the sorted (lo, hi) x-intervals inside the rings whose edges are (x0, y0, x1, y1) rows."""
    line, lo, hi = interval_table(edges, ys)
    out: list[list[tuple[float, float]]] = [[] for _ in range(len(ys))]
    for k, a, b in zip(line.tolist(), lo.tolist(), hi.tolist(), strict=True):
        out[k].append((a, b))
    return out


def count_cells(line: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> int:
    """How many boustrophedon cells ``cell_ids`` makes of intervals given as sorted arrays.

    An interval continues a cell when exactly one interval of the line before overlaps it, and that one
    overlaps no other interval of this line.
    """
    if not len(line):
        return 0
    span = 4.0 * float(max(np.abs(lo).max(), np.abs(hi).max(), 1.0))
    key_lo, key_hi = line * span + lo, line * span + hi
    # overlapping intervals of the line before (below) and after (above): contiguous runs
    below = np.searchsorted(key_lo, (line - 1) * span + hi, side="left") - np.searchsorted(
        key_hi, (line - 1) * span + lo, side="right"
    )
    first_below = np.searchsorted(key_hi, (line - 1) * span + lo, side="right")
    above = np.searchsorted(key_lo, (line + 1) * span + hi, side="left") - np.searchsorted(
        key_hi, (line + 1) * span + lo, side="right"
    )
    continues = (below == 1) & (above[np.minimum(first_below, len(line) - 1)] == 1)
    return int(len(line) - continues.sum())


def expand_ranges(first: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with first[i] <= j < end[i], as two arrays.

    >>> [a.tolist() for a in expand_ranges(np.array([0, 5, 2]), np.array([2, 5, 4]))]
    [[0, 0, 2, 2], [0, 1, 2, 3]]
    """
    count = np.maximum(end - first, 0)
    owner = np.repeat(np.arange(len(first)), count)
    step = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return owner, first[owner] + step


def band_reach(
    edges: np.ndarray, ys: np.ndarray, intervals: list[list[tuple[float, float]]], *, half_band_m: float
) -> list[list[tuple[float, float]]]:
    """How far the free region reaches beyond each interval's ends within half a band above and below it.

    Where the boundary slants, the strip a swath covers extends past the line's own end; the swath must then
    run closer to its end to reach it, instead of stopping half a swath short.
    """
    offsets = np.array([-1.0, -0.5, 0.5, 1.0]) * half_band_m
    samples = line_intervals(edges, (ys[:, None] + offsets[None, :]).ravel())
    line = np.asarray([k for k, row in enumerate(intervals) for _ in row], dtype=np.int64)
    lo = np.asarray([iv[0] for row in intervals for iv in row], dtype=float)
    hi = np.asarray([iv[1] for row in intervals for iv in row], dtype=float)
    s_line = np.asarray([q // len(offsets) for q, row in enumerate(samples) for _ in row], dtype=np.int64)
    s_lo = np.asarray([iv[0] for row in samples for iv in row], dtype=float)
    s_hi = np.asarray([iv[1] for row in samples for iv in row], dtype=float)
    d_lo, d_hi = np.zeros(len(lo)), np.zeros(len(lo))
    if len(lo) and len(s_lo):
        span = 4.0 * float(
            max(np.abs(lo).max(), np.abs(hi).max(), np.abs(s_lo).max(), np.abs(s_hi).max(), 1.0)
        )
        # the intervals of its line that a sample overlaps (strictly): a contiguous run of them
        first = np.searchsorted(line * span + hi, s_line * span + s_lo, side="right")
        end = np.searchsorted(line * span + lo, s_line * span + s_hi, side="left")
        count = np.maximum(end - first, 0)
        sample = np.repeat(np.arange(len(s_lo)), count)
        own = (
            np.repeat(first, count) + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        )
        np.maximum.at(d_lo, own, lo[own] - s_lo[sample])
        np.maximum.at(d_hi, own, s_hi[sample] - hi[own])
    out: list[list[tuple[float, float]]] = []
    i = 0
    for row in intervals:
        out.append(list(zip(d_lo[i : i + len(row)].tolist(), d_hi[i : i + len(row)].tolist(), strict=True)))
        i += len(row)
    return out


def _shrunk(lo: float, hi: float, cut_lo: float, cut_hi: float) -> tuple[float, float]:
    a, b = lo + cut_lo, hi - cut_hi
    return (a, b) if a <= b else ((lo + hi) / 2.0,) * 2


def build_swaths(
    intervals: list[list[tuple[float, float]]],
    ys: np.ndarray,
    *,
    shrink_m: float,
    reach: list[list[tuple[float, float]]] | None = None,
    min_shrink_m: float = 0.0,
) -> list[list[Swath]]:
    """Swaths per line: each free interval shortened at both ends (a point if too short).

    An end is shortened by ``shrink_m`` less how far the region reaches past it nearby (``reach``), but
    never by less than ``min_shrink_m``.
    """
    out = []
    for k, row in enumerate(intervals):
        line = []
        for q, (lo, hi) in enumerate(row):
            d_lo, d_hi = reach[k][q] if reach is not None else (0.0, 0.0)
            a, b = _shrunk(lo, hi, max(min_shrink_m, shrink_m - d_lo), max(min_shrink_m, shrink_m - d_hi))
            a_t, b_t = _shrunk(lo, hi, max(min_shrink_m, shrink_m), max(min_shrink_m, shrink_m))
            # both (a, b) and (a_t, b_t) are valid swaths, so is every mix of them (Swath.ends)
            line.append(Swath(k, float(ys[k]), a, b, lo, hi, reach0=a_t - a, reach1=b - b_t))
        out.append(line)
    return out


def cell_ids(rows: list[list[tuple[float, float]]]) -> tuple[list[list[int]], int]:
    """The boustrophedon cell of each interval (rows of sorted, disjoint (lo, hi) per line) and how many
    cells there are: consecutive lines' intervals continue one cell when they overlap one-to-one (a split
    or a merge starts new cells).

    A line's intervals are sorted and disjoint, so the ones of the previous line that an interval overlaps
    (strictly) are a contiguous run found by bisection.
    """
    ids: list[list[int]] = []
    n_cells = 0
    open_cell: dict[int, int] = {}  # index of an interval on the previous line -> its cell
    prev_lo: list[float] = []
    prev_hi: list[float] = []
    for row in rows:
        row_lo = [lo for lo, _ in row]
        row_hi = [hi for _, hi in row]
        new_open: dict[int, int] = {}
        line_ids = []
        for j, (lo, hi) in enumerate(row):
            first, end = bisect_right(prev_hi, lo), bisect_left(prev_lo, hi)
            c = open_cell.get(first, -1) if end - first == 1 else -1
            # the one interval above must continue into this one only
            if c < 0 or bisect_left(row_lo, prev_hi[first]) - bisect_right(row_hi, prev_lo[first]) != 1:
                c = n_cells
                n_cells += 1
            new_open[j] = c
            line_ids.append(c)
        ids.append(line_ids)
        open_cell, prev_lo, prev_hi = new_open, row_lo, row_hi
    return ids, n_cells


def build_cells(swaths: list[list[Swath]]) -> list[list[Swath]]:
    """Group swaths of consecutive lines into boustrophedon cells (see ``cell_ids``)."""
    ids, n_cells = cell_ids([[(s.lo, s.hi) for s in row] for row in swaths])
    cells: list[list[Swath]] = [[] for _ in range(n_cells)]
    for row, row_ids in zip(swaths, ids, strict=True):
        for s, c in zip(row, row_ids, strict=True):
            cells[c].append(s)
    return cells
