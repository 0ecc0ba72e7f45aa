"""Order cells and pick each one's entry corner: greedy, then 2-opt/or-opt moves and an exact variant pass.

Each cell can be flown in a few variants (start at its bottom or top line, from its left or right end); a
variant has an entry point, an exit point and an internal length. Points are indices into a geodesic distance
matrix, so the order minimises the real transit flown between cells. The tour is open: it starts at the
launch point when one is given and ends wherever the last cell does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_UNREACHABLE = 1e12
# Cells whose or-opt moves are priced in one numpy pass (bounds memory on tours of many cells).
_MOVE_BATCH = 64


@dataclass(frozen=True, slots=True)
class Variant:
    """One way to fly a cell: from point ``entry`` to point ``exit``, ``length_m`` inside it."""

    entry: int
    exit: int
    length_m: float


@dataclass(frozen=True, slots=True)
class VariantTable:
    """Variants as arrays: cell c's variant v enters at point ``entry[c, v]``, leaves at ``exit[c, v]``
    and flies ``length[c, v]`` inside (inf: no such variant)."""

    entry: np.ndarray
    exit: np.ndarray
    length: np.ndarray

    @classmethod
    def of(cls, variants: Sequence[Sequence[Variant]]) -> VariantTable:
        """The table of lists of variants (cells with fewer variants padded with missing ones)."""
        width = max(len(v) for v in variants)
        rows = [
            [(v.entry, v.exit, v.length_m) for v in vs] + [(0, 0, np.inf)] * (width - len(vs))
            for vs in variants
        ]
        table = np.asarray(rows, dtype=float).reshape(len(variants), width, 3)
        return cls(table[:, :, 0].astype(np.int64), table[:, :, 1].astype(np.int64), table[:, :, 2])

    @classmethod
    def segments(cls, lengths: np.ndarray) -> VariantTable:
        """Segments flown either way: segment i has points 2i and 2i + 1.

        >>> VariantTable.segments(np.array([5.0])).exit.tolist()
        [[1, 0]]
        """
        n = len(lengths)
        ends = 2 * np.arange(n)[:, None] + np.array([[0, 1]])
        return cls(
            ends, ends[:, ::-1].copy(), np.repeat(np.asarray(lengths, dtype=float)[:, None], 2, axis=1)
        )


class _Tour:
    """Numpy views of the variants plus a distance matrix with START and END sentinels."""

    def __init__(
        self,
        variants: Sequence[Sequence[Variant]] | VariantTable,
        dist: np.ndarray,
        start: np.ndarray | None,
    ):
        n_pts = len(dist)
        self.START, self.END = n_pts, n_pts + 1
        d = np.zeros((n_pts + 2, n_pts + 2))
        # no way between two points: a huge finite cost keeps the arithmetic free of inf - inf
        d[:n_pts, :n_pts] = dist
        if not np.isfinite(dist).all():
            d[:n_pts, :n_pts][~np.isfinite(dist)] = _UNREACHABLE
        if start is not None:
            d[self.START, :n_pts] = np.where(np.isfinite(start), start, _UNREACHABLE)
        self.d = d
        table = variants if isinstance(variants, VariantTable) else VariantTable.of(variants)
        self.entry, self.exit, self.length = table.entry, table.exit, table.length
        # reverse[c, v]: the variant flying the same cell backwards (the first such one), -1 if none
        real = np.isfinite(self.length)
        same = (self.entry[:, None, :] == self.exit[:, :, None]) & (
            self.exit[:, None, :] == self.entry[:, :, None]
        )
        same &= real[:, None, :] & real[:, :, None]
        self.reverse = np.where(same.any(axis=2), same.argmax(axis=2), -1)

    def cost(self, cells: np.ndarray, vars_: np.ndarray) -> float:
        ent = self.entry[cells, vars_]
        ext = self.exit[cells, vars_]
        links = self.d[np.concatenate([[self.START], ext[:-1]]), ent]
        return float(links.sum() + self.length[cells, vars_].sum())

    def greedy(self, first: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        n, width = self.entry.shape
        cells, vars_ = [first[0]], [first[1]]
        to_entry = self.d[:, self.entry.ravel()]  # from any point to each variant's entry
        # a missing variant or a cell already flown is never picked
        blocked = np.where(np.isfinite(self.length), 0.0, np.inf).ravel()
        blocked[first[0] * width : (first[0] + 1) * width] = np.inf
        here = self.exit[first]
        for _ in range(n - 1):
            k = int(np.argmin(to_entry[here] + blocked))
            c, v = divmod(k, width)
            cells.append(c)
            vars_.append(v)
            blocked[c * width : (c + 1) * width] = np.inf
            here = self.exit[c, v]
        return np.asarray(cells), np.asarray(vars_)

    def best_variants(self, cells: np.ndarray) -> np.ndarray:
        """Exact variants for a fixed order (dynamic programming over the few variants per cell)."""
        width = self.entry.shape[1]
        length = self.length[cells].tolist()
        first = (self.d[self.START][self.entry[cells[0]]] + self.length[cells[0]]).tolist()
        steps = self.d[self.exit[cells[:-1]][:, :, None], self.entry[cells[1:]][:, None, :]].tolist()
        cost = first
        back = []
        span = range(width)
        for step, add in zip(steps, length[1:], strict=True):
            # for each variant here, the cheapest variant before it (the first one on a tie)
            arg = []
            new = []
            for j in span:
                best_i, best = 0, cost[0] + step[0][j]
                for i in span[1:]:
                    t = cost[i] + step[i][j]
                    if t < best:
                        best_i, best = i, t
                arg.append(best_i)
                new.append(best + add[j])
            back.append(arg)
            cost = new
        v = int(np.argmin(cost))
        chosen = [v]
        for arg in reversed(back):
            v = arg[v]
            chosen.append(v)
        return np.asarray(chosen[::-1])

    def two_opt(self, cells: np.ndarray, vars_: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Reverse blocks of the tour (each reversed cell flown backwards) while that shortens it."""
        n = len(cells)
        improved_any = False
        i, j = np.triu_indices(n)
        for _ in range(4 * n):
            ent = self.entry[cells, vars_]
            ext = self.exit[cells, vars_]
            prev_x = np.concatenate([[self.START], ext[:-1]])
            next_e = np.concatenate([ent[1:], [self.END]])
            bad = np.concatenate([[0], np.cumsum(self.reverse[cells, vars_] < 0)])
            delta = (
                self.d[prev_x[i], ext[j]]
                + self.d[ent[i], next_e[j]]
                - self.d[prev_x[i], ent[i]]
                - self.d[ext[j], next_e[j]]
            )
            # every cell in the block must have a reverse variant
            delta = np.where(bad[j + 1] - bad[i] > 0, np.inf, delta)
            k = int(np.argmin(delta))
            best_ij = (int(i[k]), int(j[k])) if delta[k] < -1e-6 else None
            if best_ij is None:
                break
            lo, hi = best_ij
            block_c = cells[lo : hi + 1][::-1].copy()
            block_v = self.reverse[cells[lo : hi + 1], vars_[lo : hi + 1]][::-1].copy()
            cells[lo : hi + 1], vars_[lo : hi + 1] = block_c, block_v
            improved_any = True
        return cells, vars_, improved_any

    def _moves(self, cells: np.ndarray, vars_: np.ndarray, at: np.ndarray):
        """For the cells at positions ``at``: the cost of removing each and of its best re-insertion (slot
        in the tour without it, variant)."""
        px = np.concatenate([[self.START], self.exit[cells, vars_]])  # exit before full-tour slot k
        ne = np.concatenate([self.entry[cells, vars_], [self.END]])  # entry after full-tour slot k
        base = self.d[px, ne]
        c, v = cells[at], vars_[at]
        ent_c, ext_c, len_c = self.entry[c], self.exit[c], self.length[c]  # (m, variants)
        prev_x, next_e = px[at], ne[at + 1]
        gap = self.d[prev_x, next_e]
        rows = np.arange(len(at))
        removed = self.d[prev_x, ent_c[rows, v]] + self.d[ext_c[rows, v], next_e] + len_c[rows, v] - gap
        # (m, slots, variants); slots at and at + 1 of the full tour merge into one between c's neighbours
        ins = self.d[px[None, :, None], ent_c[:, None, :]] + self.d[ext_c[:, None, :], ne[None, :, None]]
        ins += len_c[:, None, :] - base[None, :, None]
        ins[rows, at] = self.d[prev_x[:, None], ent_c] + self.d[ext_c, next_e[:, None]] + len_c - gap[:, None]
        ins[rows, at + 1] = np.inf
        flat = ins.reshape(len(at), -1)
        best = np.argmin(flat, axis=1)
        return removed, flat[rows, best], best // ins.shape[2], best % ins.shape[2]

    def or_opt(self, cells: np.ndarray, vars_: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Move single cells to their best position and variant (first improvement, in tour order).

        Every remaining cell's best move is priced at once against the current tour; the first improving
        one is made and pricing resumes after it, which visits the cells exactly as one at a time would.
        """
        improved_any = False
        for _ in range(3):
            moved = False
            order = cells.copy()  # cells are tried in their order at the start of the pass
            nxt = 0
            while nxt < len(order):
                todo = order[nxt : nxt + _MOVE_BATCH]
                pos = np.empty(len(self.entry), dtype=np.int64)
                pos[cells] = np.arange(len(cells))
                at = pos[todo]
                removed, cost, slot, var = self._moves(cells, vars_, at)
                better = np.flatnonzero(cost < removed - 1e-6)
                if not len(better):
                    nxt += len(todo)
                    continue
                q = int(better[0])
                i, k, w = int(at[q]), int(slot[q]), int(var[q])
                k -= 1 if k > i + 1 else 0  # the slot in the tour without the cell
                c = cells[i]
                cells = np.insert(np.delete(cells, i), k, c)
                vars_ = np.insert(np.delete(vars_, i), k, w)
                moved = improved_any = True
                nxt += q + 1
            if not moved:
                break
        return cells, vars_, improved_any


def turn_penalty(points: np.ndarray, heading_x: np.ndarray, *, turn_m: float, threshold_deg: float = 30.0):
    """Extra cost of the turns a straight link between two points makes: ``turn_m`` per heading change.

    Points are in a frame whose x axis is the sweep direction: a link leaves point i heading along
    ``heading_x[i]`` (+1 or -1 along x; 0: no heading, no turn there) and arrives at point j heading along
    ``-heading_x[j]``. The result is symmetric.
    """
    p = np.asarray(points, dtype=float)
    h = np.asarray(heading_x, dtype=float)
    dx = p[None, :, 0] - p[:, None, 0]
    norm = np.hypot(dx, p[None, :, 1] - p[:, None, 1])
    # a turn where the link is more than the threshold off the heading: h . leg < cos(threshold) |leg|
    limit = np.cos(np.radians(threshold_deg)) * norm
    has = h != 0
    turns = ((h[:, None] * dx < limit) & has[:, None]).astype(float)
    turns += (-h[None, :] * dx < limit) & has[None, :]
    short = norm < 1e-6
    if short.any():
        # no leg: the heading goes from heading[i] to -heading[j]
        straight = (
            (h[:, None] * h[None, :] > -np.cos(np.radians(threshold_deg))) & has[:, None] & has[None, :]
        )
        turns[short] = straight[short]
    return turn_m * turns


def order_cells(
    variants: Sequence[Sequence[Variant]] | VariantTable,
    dist: np.ndarray,
    *,
    start: np.ndarray | None = None,
    seed: Sequence[int] | None = None,
    local: bool = True,
    starts: int = 3,
) -> list[tuple[int, int]]:
    """A short open tour over all cells: [(cell, variant), ...] in flying order.

    ``dist`` is a point-to-point distance matrix; ``start`` (optional) the distance from the launch point to
    each point. Greedy tours from up to ``starts`` first cells compete with ``seed``; ``local=False``
    keeps the best start as it is (no 2-opt or or-opt).

    >>> d = np.array([[0, 1, 5, 6], [1, 0, 4, 5], [5, 4, 0, 1], [6, 5, 1, 0]], dtype=float)
    >>> cells = [[Variant(0, 1, 1.0), Variant(1, 0, 1.0)], [Variant(2, 3, 1.0), Variant(3, 2, 1.0)]]
    >>> order_cells(cells, d, start=np.array([0.0, 1, 5, 6]))
    [(0, 0), (1, 0)]
    """
    n = len(variants.entry) if isinstance(variants, VariantTable) else len(variants)
    if n == 0:
        return []
    tour = _Tour(variants, dist, start)
    if start is not None:
        first_cost = tour.d[tour.START][tour.entry] + np.where(np.isfinite(tour.length), 0.0, np.inf)
        flat = np.argsort(first_cost, axis=None)[:starts]
        firsts: list[tuple[int, int]] = []
        for f in flat:
            c, v = np.unravel_index(int(f), first_cost.shape)
            firsts.append((int(c), int(v)))
    else:
        firsts = [(c, 0) for c in sorted({0, n - 1, n // 2})][:starts]
    best = None
    if seed is not None:
        # the seed competes with the greedy tours: each is improved and the shortest kept
        cells = np.asarray(seed, dtype=np.int64)
        vars_ = tour.best_variants(cells)
        best = (tour.cost(cells, vars_), cells, vars_)
    for first in firsts:
        cells, vars_ = tour.greedy((int(first[0]), int(first[1])))
        cost = tour.cost(cells, vars_)
        if best is None or cost < best[0]:
            best = (cost, cells, vars_)
    assert best is not None
    _, cells, vars_ = best
    for _ in range(6 if local else 0):
        cells, vars_, a = tour.two_opt(cells, vars_)
        vars_ = tour.best_variants(cells)
        cells, vars_, b = tour.or_opt(cells, vars_)
        if not (a or b):
            break
    vars_ = tour.best_variants(cells)
    return [(int(c), int(v)) for c, v in zip(cells, vars_, strict=True)]
