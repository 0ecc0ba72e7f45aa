"""Order cells and pick each one's entry corner: greedy, then 2-opt/or-opt moves and an exact variant pass.

Each cell can be flown in a few variants (start at its bottom or top line, from its left or right end); a
variant has an entry point, an exit point and an internal length. Points are indices into a geodesic distance
matrix, so the order minimises the real transit flown between cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Variant:
    """One way to fly a cell: from point ``entry`` to point ``exit``, ``length_m`` inside it."""

    entry: int
    exit: int
    length_m: float


def _route_cost(route: list[tuple[int, int]], variants, dist, start) -> float:
    total = 0.0
    prev_exit = None
    for c, v in route:
        var = variants[c][v]
        if prev_exit is None:
            total += start[var.entry] if start is not None else 0.0
        else:
            total += dist[prev_exit][var.entry]
        total += var.length_m
        prev_exit = var.exit
    return total


def _best_variants(order: list[int], variants, dist, start) -> list[tuple[int, int]]:
    """Exact choice of variants for a fixed order (dynamic programming over the few variants per cell)."""
    first = variants[order[0]]
    cost = [(start[v.entry] if start is not None else 0.0) + v.length_m for v in first]
    back: list[list[int]] = []
    for c in order[1:]:
        new_cost, arg = [], []
        prev_c = order[len(back)]
        for v in variants[c]:
            best, best_u = np.inf, 0
            for u, pv in enumerate(variants[prev_c]):
                x = cost[u] + dist[pv.exit][v.entry]
                if x < best:
                    best, best_u = x, u
            new_cost.append(best + v.length_m)
            arg.append(best_u)
        back.append(arg)
        cost = new_cost
    v = int(np.argmin(cost))
    chosen = [v]
    for arg in reversed(back):
        v = arg[v]
        chosen.append(v)
    chosen.reverse()
    return list(zip(order, chosen, strict=True))


def _reverse_of(variants) -> list[list[int]]:
    """For each cell and variant, the variant that flies the same way backwards (exit -> entry)."""
    out = []
    for vs in variants:
        row = []
        for v in vs:
            match = [i for i, w in enumerate(vs) if w.entry == v.exit and w.exit == v.entry]
            row.append(match[0] if match else -1)
        out.append(row)
    return out


def _greedy(first: tuple[int, int], variants, dist, start) -> list[tuple[int, int]]:
    n = len(variants)
    route = [first]
    seen = {first[0]}
    here = variants[first[0]][first[1]].exit
    while len(route) < n:
        best, pick = np.inf, None
        for c in range(n):
            if c in seen:
                continue
            for v, var in enumerate(variants[c]):
                x = dist[here][var.entry]
                if x < best:
                    best, pick = x, (c, v)
        if pick is None:
            break
        route.append(pick)
        seen.add(pick[0])
        here = variants[pick[0]][pick[1]].exit
    return route


def _two_opt(route, variants, rev, dist, start) -> tuple[list[tuple[int, int]], bool]:
    n = len(route)
    improved_any = False
    improved = True
    while improved:
        improved = False
        for i in range(n - 1):
            ci, vi = route[i]
            entry_i = variants[ci][vi].entry
            if i == 0:
                before = start[entry_i] if start is not None else 0.0
            else:
                before = dist[variants[route[i - 1][0]][route[i - 1][1]].exit][entry_i]
            for j in range(i + 1, n):
                cj, vj = route[j]
                if rev[cj][vj] < 0 or rev[ci][vi] < 0:
                    continue
                exit_j = variants[cj][vj].exit
                after = dist[exit_j][variants[route[j + 1][0]][route[j + 1][1]].entry] if j + 1 < n else 0.0
                # reversed block: enters at old exit of j, leaves at old entry of i
                if i == 0:
                    new_before = start[exit_j] if start is not None else 0.0
                else:
                    new_before = dist[variants[route[i - 1][0]][route[i - 1][1]].exit][exit_j]
                new_after = (
                    dist[entry_i][variants[route[j + 1][0]][route[j + 1][1]].entry] if j + 1 < n else 0.0
                )
                if new_before + new_after < before + after - 1e-6:
                    block = [(c, rev[c][v]) for c, v in reversed(route[i : j + 1])]
                    if any(v < 0 for _, v in block):
                        continue
                    route[i : j + 1] = block
                    improved = improved_any = True
                    ci, vi = route[i]
                    entry_i = variants[ci][vi].entry
                    before = new_before
    return route, improved_any


def _link(a: Variant | None, b: Variant | None, dist, start) -> float:
    """Transit from the exit of ``a`` (None: the launch point) to the entry of ``b`` (None: the end)."""
    if b is None:
        return 0.0
    if a is None:
        return start[b.entry] if start is not None else 0.0
    return dist[a.exit][b.entry]


def _or_opt(route, variants, dist, start) -> tuple[list[tuple[int, int]], bool]:
    """Move single cells to their best position and variant (O(1) cost deltas)."""
    improved_any = False
    for _ in range(3):
        moved = False
        i = 0
        while i < len(route):
            c, v = route[i]
            cur = variants[c][v]
            prev = variants[route[i - 1][0]][route[i - 1][1]] if i > 0 else None
            nxt = variants[route[i + 1][0]][route[i + 1][1]] if i + 1 < len(route) else None
            removed = (
                _link(prev, cur, dist, start)
                + _link(cur, nxt, dist, start)
                + cur.length_m
                - _link(prev, nxt, dist, start)
            )
            rest = route[:i] + route[i + 1 :]
            best, best_at = removed - 1e-6, None
            for k in range(len(rest) + 1):
                a = variants[rest[k - 1][0]][rest[k - 1][1]] if k > 0 else None
                b = variants[rest[k][0]][rest[k][1]] if k < len(rest) else None
                base = _link(a, b, dist, start)
                for w, var in enumerate(variants[c]):
                    x = _link(a, var, dist, start) + _link(var, b, dist, start) + var.length_m - base
                    if x < best:
                        best, best_at = x, (k, w)
            if best_at is not None:
                k, w = best_at
                route = [*rest[:k], (c, w), *rest[k:]]
                moved = improved_any = True
            i += 1
        if not moved:
            break
    return route, improved_any


def order_cells(
    variants: Sequence[Sequence[Variant]], dist: np.ndarray, *, start: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """A short open tour over all cells: [(cell, variant), ...] in flying order.

    ``dist`` is a point-to-point distance matrix; ``start`` (optional) the distance from the launch point to
    each point.
    """
    n = len(variants)
    if n == 0:
        return []
    d = dist.tolist()
    s = start.tolist() if start is not None else None
    rev = _reverse_of(variants)
    # greedy from a few promising first cells, keep the cheapest
    if s is not None:
        firsts = sorted(
            ((c, v) for c in range(n) for v in range(len(variants[c]))),
            key=lambda cv: s[variants[cv[0]][cv[1]].entry],
        )[:4]
    else:
        # cells at the extremes of the area are natural starts for an open tour
        firsts = [(c, v) for c in {0, n - 1, n // 2} for v in range(len(variants[c]))]
    best_route, best_cost = None, np.inf
    for first in firsts:
        route = _greedy(first, variants, d, s)
        cost = _route_cost(route, variants, d, s)
        if cost < best_cost:
            best_route, best_cost = route, cost
    assert best_route is not None
    route = best_route
    for _ in range(6):
        route, a = _two_opt(route, variants, rev, d, s)
        route = _best_variants([c for c, _ in route], variants, d, s)
        route, b = _or_opt(route, variants, d, s)
        if not (a or b):
            break
    return route
