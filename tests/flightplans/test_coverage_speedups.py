"""The planner's fast paths give the answers of the plain computations they replace."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon

from flightplans.coverage.freespace import FreeSpace
from flightplans.coverage.order import Variant, _Tour
from flightplans.coverage.plan import flyable
from flightplans.coverage.swaths import Swath, build_cells, count_cells


def _cells_by_pairs(swaths: list[list[Swath]]) -> list[list[Swath]]:
    """build_cells as first written: every pair of swaths on neighbouring lines compared."""

    def overlap(s: Swath, t: Swath) -> bool:
        return min(s.hi, t.hi) - max(s.lo, t.lo) > 0.0

    cells: list[list[Swath]] = []
    open_cell: dict[int, int] = {}
    prev: list[Swath] = []
    for row in swaths:
        up = [[i for i, p in enumerate(prev) if overlap(p, s)] for s in row]
        down = [[j for j, s in enumerate(row) if overlap(p, s)] for p in prev]
        new_open: dict[int, int] = {}
        for j, s in enumerate(row):
            if len(up[j]) == 1 and len(down[up[j][0]]) == 1 and up[j][0] in open_cell:
                c = open_cell[up[j][0]]
                cells[c].append(s)
            else:
                c = len(cells)
                cells.append([s])
            new_open[j] = c
        open_cell, prev = new_open, row
    return cells


@st.composite
def line_rows(draw: st.DrawFn) -> list[list[Swath]]:
    """Lines of sorted, disjoint (sometimes touching) intervals on a coarse grid, so ends often coincide."""
    rows = []
    for k in range(draw(st.integers(1, 12))):
        cuts = sorted(set(draw(st.lists(st.integers(0, 20), min_size=0, max_size=8))))
        ivs = [(float(a), float(b)) for a, b in itertools.pairwise(cuts) if draw(st.booleans())]
        rows.append([Swath(k, float(k), a, b, a, b) for a, b in ivs])
    return rows


@settings(max_examples=300, deadline=None)
@given(line_rows())
def test_cells_match_the_pairwise_grouping(rows: list[list[Swath]]) -> None:
    assert build_cells(rows) == _cells_by_pairs(rows)


def _blocks(n: int, *, spacing_m: float, block_m: float, wall_m: float) -> Polygon:
    """A square district with n x n square no-fly blocks and one long wall of no-fly zone across it."""
    size = n * spacing_m
    shell = [(0.0, 0.0), (size, 0.0), (size, size), (0.0, size)]
    holes = []
    for i, j in itertools.product(range(n), range(n)):
        x, y = (i + 0.5) * spacing_m, (j + 0.5) * spacing_m
        if j == n // 2:
            continue  # the wall's row
        h = block_m / 2
        holes.append([(x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h)])
    y = (n // 2 + 0.5) * spacing_m
    holes.append(
        [(spacing_m / 2, y - 5), (size - wall_m, y - 5), (size - wall_m, y + 5), (spacing_m / 2, y + 5)]
    )
    return Polygon(shell, holes)


def _all_pairs(free: Polygon, nodes: np.ndarray) -> np.ndarray:
    """Shortest ways between nodes over every sight line between them (none left out as not grazing)."""
    n = len(nodes)
    dist = np.full((n, n), np.inf)
    for i, j in itertools.combinations(range(n), 2):
        if free.covers(LineString([nodes[i], nodes[j]])):
            dist[i, j] = dist[j, i] = math.dist(nodes[i], nodes[j])
    np.fill_diagonal(dist, 0.0)
    for k in range(n):
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return dist


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 6), st.integers(0, 2**32 - 1))
def test_detours_are_the_shortest_way_through_any_node(n: int, seed: int) -> None:
    rnd = np.random.default_rng(seed)
    area = _blocks(n, spacing_m=100.0, block_m=rnd.uniform(20, 60), wall_m=rnd.uniform(30, 45))
    free = flyable(area, 2.0)
    assert isinstance(free, Polygon)
    fs = FreeSpace(free, clearance_m=2.0)
    full = _all_pairs(free, fs.nodes)
    x_min, y_min, x_max, y_max = free.bounds
    pts: list[tuple[float, float]] = []
    while len(pts) < 10:
        p = (float(rnd.uniform(x_min, x_max)), float(rnd.uniform(y_min, y_max)))
        if free.buffer(-1.0).contains(Point(p)):
            pts.append(p)
    for a, b in itertools.pairwise(pts):
        path = fs.path(a, b)
        if len(path) == 2:
            assert free.covers(LineString([a, b]))
            continue
        # every node checked from both ends: the plain shortest way through the full visibility graph
        sees_a = np.array([free.covers(LineString([a, q])) for q in fs.nodes.tolist()])
        sees_b = np.array([free.covers(LineString([q, b])) for q in fs.nodes.tolist()])
        da = np.where(sees_a, np.hypot(*(fs.nodes - np.asarray(a)).T), np.inf)
        db = np.where(sees_b, np.hypot(*(fs.nodes - np.asarray(b)).T), np.inf)
        best = float(np.min(da[:, None] + full + db[None, :]))
        assert math.isclose(LineString(path).length, best, rel_tol=1e-9, abs_tol=1e-6)


def _or_opt_one_at_a_time(tour: _Tour, cells: np.ndarray, vars_: np.ndarray):
    """Or-opt as first written: each cell's moves priced on its own against the tour without it."""
    improved_any = False
    for _ in range(3):
        moved = False
        for c in list(cells):
            i = int(np.flatnonzero(cells == c)[0])
            v = vars_[i]
            prev_x = tour.exit[cells[i - 1], vars_[i - 1]] if i > 0 else tour.START
            next_e = tour.entry[cells[i + 1], vars_[i + 1]] if i + 1 < len(cells) else tour.END
            removed = (
                tour.d[prev_x, tour.entry[c, v]]
                + tour.d[tour.exit[c, v], next_e]
                + tour.length[c, v]
                - tour.d[prev_x, next_e]
            )
            rc, rv = np.delete(cells, i), np.delete(vars_, i)
            px = np.concatenate([[tour.START], tour.exit[rc, rv]])
            ne = np.concatenate([tour.entry[rc, rv], [tour.END]])
            ins = (
                tour.d[px[:, None], tour.entry[c][None, :]]
                + tour.d[tour.exit[c][None, :], ne[:, None]]
                - tour.d[px, ne][:, None]
                + tour.length[c][None, :]
            )
            k, w = np.unravel_index(int(np.argmin(ins)), ins.shape)
            if ins[k, w] < removed - 1e-6:
                cells, vars_ = np.insert(rc, k, c), np.insert(rv, k, w)
                moved = improved_any = True
        if not moved:
            break
    return cells, vars_, improved_any


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 30), st.randoms(use_true_random=False))
def test_or_opt_makes_the_moves_of_one_cell_at_a_time(n: int, rnd) -> None:
    xy = np.array([(rnd.uniform(0, 1000), rnd.uniform(0, 1000)) for _ in range(4 * n)])
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    variants = [
        [Variant(4 * c + e, 4 * c + x, 100.0) for e, x in ((0, 3), (3, 0), (1, 2), (2, 1))] for c in range(n)
    ]
    tour = _Tour(variants, dist, None)
    order = np.array(rnd.sample(range(n), n))
    vars_ = np.array([rnd.randrange(4) for _ in range(n)])
    fast = tour.or_opt(order.copy(), vars_.copy())
    plain = _or_opt_one_at_a_time(tour, order.copy(), vars_.copy())
    assert fast[0].tolist() == plain[0].tolist()
    assert fast[1].tolist() == plain[1].tolist()
    assert fast[2] == plain[2]


@settings(max_examples=300, deadline=None)
@given(line_rows())
def test_cell_count_matches_the_grouping(rows: list[list[Swath]]) -> None:
    line = np.asarray([s.line for row in rows for s in row], dtype=np.int64)
    lo = np.asarray([s.lo for row in rows for s in row], dtype=float)
    hi = np.asarray([s.hi for row in rows for s in row], dtype=float)
    assert count_cells(line, lo, hi) == len(build_cells(rows))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 5), st.integers(0, 2**32 - 1))
def test_legs_clear_of_every_obstacle_box_need_no_geos_test(n: int, seed: int) -> None:
    # a district with a notch in its shell: legs the box test passes must really stay inside
    rnd = np.random.default_rng(seed)
    blocks = _blocks(n, spacing_m=100.0, block_m=rnd.uniform(20, 60), wall_m=rnd.uniform(30, 45))
    size = n * 100.0
    area = Polygon(blocks.exterior.coords, [r.coords for r in blocks.interiors]).difference(
        Polygon([(size / 2 - 20, size + 1), (size / 2 + 20, size + 1), (size / 2, size - 30)])
    )
    free = flyable(area, 2.0)
    assert isinstance(free, Polygon)
    fs = FreeSpace(free, clearance_m=2.0)
    a = rnd.uniform(-20, size + 20, (400, 2))
    b = a + rnd.normal(0, 60, (400, 2))
    cleared = fs._clear_of_obstacles(a, b)
    assert cleared.any()
    for p, q in zip(a[cleared], b[cleared], strict=True):
        assert free.covers(LineString([p, q]))
    plain = np.array([free.covers(LineString([p, q])) for p, q in zip(a, b, strict=True)])
    assert (fs.visible_pairs(a, b) == plain).all()
