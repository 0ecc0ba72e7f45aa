"""Uncovered area on scan lines: what the planner weighs routes by instead of buffering every one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.coverage.robust import overlay, swept
from flightplans.coverage.scan import _capsules, scan_area, uncovered_m2, uncovered_pieces, uncovered_runs

from .conftest import star_polygons


def _rings(poly: Polygon) -> list[np.ndarray]:
    return [np.asarray(r.coords) for r in [poly.exterior, *poly.interiors]]


def test_one_swath_in_a_box_misses_the_corners_its_round_ends_leave() -> None:
    # a 100 x 30 box, one 30 m swath along its middle ending 15 m short of each side: the two ends miss
    # a 15 x 30 strip each, less the half disc their caps cover
    area = box(0, 0, 100, 30)
    scan = scan_area(_rings(area), swath_m=30.0, band_edge_m=0.0)
    missed = uncovered_m2(scan, np.array([[15.0, 15.0], [85.0, 15.0]]), radius_m=15.0)
    exact = 2 * (15 * 30 - math.pi * 15**2 / 2)
    assert missed == pytest.approx(exact, rel=0.03)  # 12 slices round the caps' ends off
    assert scan.area_m2 == pytest.approx(3000.0)


def test_holes_are_not_area_to_cover() -> None:
    area = box(0, 0, 100, 60).difference(box(40, 20, 60, 40))
    scan = scan_area(_rings(area), swath_m=20.0, band_edge_m=0.0)
    assert scan.area_m2 == pytest.approx(area.area)
    # a path around the hole 10 m off its edges covers the ring around it, nothing inside
    ring = np.array([[30, 10], [70, 10], [70, 50], [30, 50], [30, 10]], dtype=float)
    exact = overlay("difference", area, swept(LineString(ring), 10.0, quad_segs=64)).area
    assert uncovered_m2(scan, ring, radius_m=10.0) == pytest.approx(exact, rel=0.01)


def test_a_single_point_covers_a_disc() -> None:
    area = box(-50, -50, 50, 50)
    scan = scan_area(_rings(area), swath_m=10.0, band_edge_m=-50.0)
    missed = uncovered_m2(scan, np.array([[0.0, 0.0]]), radius_m=20.0)
    assert missed == pytest.approx(area.area - math.pi * 400, rel=0.002)


@settings(max_examples=60, deadline=None)
@given(
    area=star_polygons(),
    swath=st.floats(20, 80),
    shift=st.floats(0, 1),
    inset=st.floats(0, 0.6),
    detour=st.lists(st.tuples(st.floats(-700, 700), st.floats(-700, 700)), max_size=4),
)
def test_scan_lines_measure_what_a_fine_buffer_leaves(
    area: Polygon, swath: float, shift: float, inset: float, detour: list[tuple[float, float]]
) -> None:
    # a hole in the middle when it fits, so the even-odd cut is exercised too
    hole = Point(0, 0).buffer(30, quad_segs=6)
    if area.buffer(-5).contains(hole):
        area = Polygon(area.exterior.coords, [hole.exterior.coords])
    # a lawnmower over the bounding box (lines along x, ends pulled in), then a few legs anywhere
    x0, y0, x1, y1 = area.bounds
    xy = []
    for i, y in enumerate(np.arange(y0 + shift * swath / 2, y1 + swath / 2, swath)):
        ends = [x0 + inset * swath, x1 - inset * swath]
        xy += [(x, y) for x in (ends if i % 2 == 0 else ends[::-1])]
    path = np.asarray(xy + detour, dtype=float)
    scan = scan_area(_rings(area), swath_m=swath, band_edge_m=y0 + shift * swath / 2 - swath / 2)
    exact = overlay("difference", area, swept(LineString(path), swath / 2.0, quad_segs=64)).area
    missed = uncovered_m2(scan, path, radius_m=swath / 2.0)
    # sampled across the scan lines: within a small share of the area (the planner keeps a margin)
    assert abs(missed - exact) <= 0.001 * area.area + 0.05 * swath * swath


def _capsule_on_line(p: np.ndarray, q: np.ndarray, y: float, radius: float) -> tuple[float, float] | None:
    """Where the line at height y is within ``radius`` of segment pq (None out of reach; an empty
    stretch where the line only touches the capsule's edge): the distance along the line is convex, so
    its least point is found by ternary search and each edge by bisection."""

    def dist(x: float) -> float:
        d = q - p
        dd = float(d @ d)  # 0 also for a leg so short its square underflows
        t = 0.0 if dd == 0.0 else float(np.clip(((x, y) - p) @ d / dd, 0.0, 1.0))
        return math.dist((x, y), p + t * d)

    lo, hi = -1000.0, 1000.0
    for _ in range(200):
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, b) if dist(a) < dist(b) else (a, hi)
    best = (lo + hi) / 2
    if dist(best) > radius + 1e-6:
        return None
    if dist(best) > radius - 1e-6:
        return (best, best)  # touching the edge: either answer is right
    edges = []
    for far in (-1000.0, 1000.0):
        inside, outside = best, far
        for _ in range(200):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if dist(mid) <= radius else (inside, mid)
        edges.append(inside)
    return edges[0], edges[1]


@settings(max_examples=80, deadline=None)
@given(
    leg=st.tuples(*[st.floats(-100, 100)] * 4),
    radius=st.floats(1, 40),
    y=st.floats(-150, 150),
)
def test_a_legs_capsule_on_a_scan_line_is_where_it_is_within_reach(leg, radius: float, y: float) -> None:
    p, q = np.array(leg[:2]), np.array(leg[2:])
    k, lo, hi = _capsules(p[None, :], q[None, :], np.array([y]), radius)
    expected = _capsule_on_line(p, q, y, radius)
    if expected is None:
        assert len(k) == 0
        return
    if expected[1] - expected[0] < 1e-3 * radius:
        return  # grazing the capsule: nothing to compare
    assert len(k) == 1
    assert float(lo[0]) == pytest.approx(expected[0], abs=1e-6 * radius + 1e-6)
    assert float(hi[0]) == pytest.approx(expected[1], abs=1e-6 * radius + 1e-6)


def test_uncovered_pieces_are_the_separate_leftovers_largest_first() -> None:
    # two swaths along a 200 x 60 box, ended short of its sides: a leftover at each side, the right one
    # larger; each as large as a fine buffer says
    area = box(0, 0, 200, 60)
    scan = scan_area(_rings(area), swath_m=30.0, band_edge_m=0.0)
    p = np.array([[30.0, 15.0], [30.0, 45.0]])
    q = np.array([[150.0, 15.0], [150.0, 45.0]])
    pieces = uncovered_pieces(scan, p, q, radius_m=15.0)
    swaths = [LineString([a, b]) for a, b in zip(p, q, strict=True)]
    left = overlay("difference", area, shapely.union_all([s.buffer(15.0, quad_segs=64) for s in swaths]))
    exact = sorted((g.area for g in shapely.get_parts(left)), reverse=True)
    assert len(pieces) == len(exact) == 2
    for piece, m2 in zip(pieces, exact, strict=True):
        assert piece.area_m2 == pytest.approx(m2, rel=0.03)
    assert pieces[0].bounds()[2] == pytest.approx(200.0)  # the right one, up to the area's edge
    assert pieces[0].centroid()[0] > 150.0 > 30.0 > pieces[1].centroid()[0]


def test_a_thin_neck_does_not_join_two_leftovers_when_opened() -> None:
    # two 40 x 40 leftovers joined by a neck 2 m wide: one piece, two once opened by more than 1 m
    area = shapely.union_all([box(0, 0, 40, 40), box(19, 39, 21, 61), box(0, 60, 40, 100)])
    scan = scan_area(_rings(area), swath_m=40.0, band_edge_m=0.0)
    far = np.array([[500.0, 500.0]])  # covers nothing
    assert len(uncovered_pieces(scan, far, far, radius_m=1.0)) == 1
    assert len(uncovered_pieces(scan, far, far, radius_m=1.0, open_m=1.5)) == 2


def test_runs_are_what_is_left_on_each_line() -> None:
    area = box(0, 0, 100, 20)
    scan = scan_area(_rings(area), swath_m=20.0, band_edge_m=0.0)
    path = np.array([[0.0, 10.0], [60.0, 10.0]])
    rows, lo, hi = uncovered_runs(scan, path, radius_m=10.0)
    # right of the swath's round end each line is open to the area's edge
    assert np.allclose(hi, 100.0)
    assert float(((hi - lo) * scan.weight_m[rows]).sum()) == pytest.approx(
        uncovered_m2(scan, path, radius_m=10.0)
    )
