"""Uncovered area on scan lines: what the planner weighs routes by instead of buffering every one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.coverage.robust import overlay, swept
from flightplans.coverage.scan import scan_area, uncovered_m2

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
