"""Sweep planner: hand-checked shapes, properties over random areas with holes, and bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.coverage import SweepPlan, SweepPlanWgs84, sweep, sweep_wgs84
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame


def _coverage(area: Polygon, path: LineString, swath_m: float) -> float:
    """Independent check: share of a fine grid of points in the area within half a swath of the path."""
    x_min, y_min, x_max, y_max = area.bounds
    step = math.sqrt(area.area / 12_000)
    xs, ys = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
    points = shapely.points(xs.ravel(), ys.ravel())
    inside = points[shapely.contains(area, points)]
    return float(np.mean(shapely.distance(path, inside) <= swath_m / 2.0))


def _assert_safe(area: Polygon, plan: SweepPlan, *, clearance_m: float) -> None:
    """Every waypoint inside the area, no metre outside it, none inside or too close to a hole."""
    for x, y in plan.waypoints:
        assert area.covers(Point(x, y)), (x, y)
    assert plan.path.difference(area).length < 1e-6
    shell = Polygon(area.exterior)
    assert shell.exterior.distance(plan.path) >= clearance_m - 1e-6
    for ring in area.interiors:
        hole = Polygon(ring)
        assert plan.path.intersection(hole).length == 0.0
        assert hole.distance(plan.path) >= clearance_m - 1e-6


# --- golden shapes ------------------------------------------------------------------------------------


def test_rectangle_along_x_has_known_swaths_and_length() -> None:
    # 300 m tall / 30 m swath = 10 lines at y = 15, 45, ... 285, each flown from x=15 to x=385 (half a
    # swath in from the ends): 10 * 370 m of swaths + 9 turns of 30 m.
    plan = sweep(box(0, 0, 400, 300), swath_m=30, angle_deg=0)
    assert plan.swaths == 10
    assert plan.cells == 1
    assert plan.length_m == pytest.approx(10 * 370 + 9 * 30)
    assert len(plan.waypoints) == 20
    assert plan.turns == 18
    assert sorted({round(y, 6) for _, y in plan.waypoints}) == [15 + 30 * k for k in range(10)]
    assert {round(x, 6) for x, _ in plan.waypoints} == {15.0, 385.0}
    assert plan.flight_time_s == pytest.approx(plan.length_m / 10.0 + 18 * 3.0)
    # the plan buffers with polygonised round caps, so it can only under-report, by a little
    sampled = _coverage(box(0, 0, 400, 300), plan.path, 30)
    assert sampled - 4e-3 <= plan.coverage <= sampled + 1e-3
    assert plan.coverage >= 0.99


def test_rectangle_across_needs_more_lines() -> None:
    # across: ceil(400 / 30) = 14 lines spaced 30 m, centred (5 m margin): 14 * 270 m + 13 * 30 m.
    # Short 300 m lines leave the corners between swath ends uncovered (1.1 %):
    plain = sweep(box(0, 0, 400, 300), swath_m=30, angle_deg=90, min_coverage=0.98)
    assert plain.swaths == 14
    assert plain.length_m == pytest.approx(14 * 270 + 13 * 30)
    assert 0.98 <= plain.coverage < 0.99
    # by default short visits fill the largest of them until 99 % is reached
    filled = sweep(box(0, 0, 400, 300), swath_m=30, angle_deg=90)
    assert filled.coverage >= 0.99
    assert plain.length_m < filled.length_m < 1.1 * plain.length_m


def test_angle_is_chosen_for_the_shortest_flight() -> None:
    plan = sweep(box(0, 0, 400, 300), swath_m=30)
    assert plan.angle_deg in (0.0, 180.0)
    assert plan.length_m == pytest.approx(3970)


def test_rotated_rectangle_is_swept_along_its_long_side() -> None:
    area = affinity.rotate(box(0, 0, 900, 300), 30, origin=(0, 0))
    plan = sweep(area, swath_m=30)
    assert plan.angle_deg % 180 == pytest.approx(30, abs=0.5)
    assert plan.swaths == 10
    assert plan.length_m / (area.area / 30) < 1.0


def test_square_with_central_hole_splits_into_four_cells() -> None:
    # 300 x 300, hole 100 x 100 in the middle, swath 20: 15 lines at y = 10 ... 290; the five at
    # y = 110 ... 190 are cut by the hole into two swaths each; cells below, left, right, above.
    area = Polygon(box(0, 0, 300, 300).exterior.coords, [box(100, 100, 200, 200).exterior.coords])
    plan = sweep(area, swath_m=20, angle_deg=0)
    assert plan.swaths == 20
    assert plan.cells == 4
    _assert_safe(area, plan, clearance_m=2.0)
    assert plan.coverage >= 0.99
    assert _coverage(area, plan.path, 20) >= 0.99


def test_u_shape_transit_goes_around_the_notch() -> None:
    area = Polygon([(0, 0), (600, 0), (600, 500), (400, 500), (400, 150), (200, 150), (200, 500), (0, 500)])
    plan = sweep(area, swath_m=25, angle_deg=0)
    _assert_safe(area, plan, clearance_m=2.0)
    assert plan.coverage >= 0.99
    assert plan.length_m / (area.area / 25) < 1.1


def test_start_point_picks_the_nearest_entry() -> None:
    area = box(0, 0, 400, 300)
    near_top_right = sweep(area, swath_m=30, angle_deg=0, start=(400, 300))
    assert math.dist(near_top_right.waypoints[0], (385, 285)) < 1e-6
    near_origin = sweep(area, swath_m=30, angle_deg=0, start=(0, 0))
    assert math.dist(near_origin.waypoints[0], (15, 15)) < 1e-6


def test_area_with_altitudes_is_planned_flat() -> None:
    flat = box(0, 0, 400, 300)
    with_z = Polygon([(x, y, 120.0) for x, y in flat.exterior.coords])
    plan = sweep(with_z, swath_m=30, angle_deg=0)
    assert plan.length_m == pytest.approx(sweep(flat, swath_m=30, angle_deg=0).length_m)
    assert not plan.path.has_z


def test_plan_is_frozen() -> None:
    plan = sweep(box(0, 0, 200, 200), swath_m=30)
    with pytest.raises(AttributeError):
        plan.length_m = 0  # type: ignore[misc]


def test_wgs84_sweep_matches_the_local_plan() -> None:
    frame = LocalFrame(39.82, 109.98)
    local = Polygon(box(-300, -200, 300, 200).exterior.coords, [box(-50, -50, 50, 50).exterior.coords])
    area_lonlat = frame.to_wgs84(local)
    plan = sweep_wgs84(area_lonlat, swath_m=30, start_latlon=(39.818, 109.976))
    assert isinstance(plan, SweepPlanWgs84)
    assert plan.coverage >= 0.99
    min_lon, min_lat, max_lon, max_lat = area_lonlat.bounds
    for lon, lat in plan.waypoints:
        assert min_lon <= lon <= max_lon and min_lat <= lat <= max_lat
    back = plan.frame.to_local(plan.path)
    assert back.length == pytest.approx(plan.length_m, rel=1e-6)
    hole_lonlat = Polygon(area_lonlat.interiors[0])
    assert plan.path.intersection(hole_lonlat).length == 0.0


# --- properties over random areas -----------------------------------------------------------------------


@st.composite
def areas_with_holes(draw: st.DrawFn) -> tuple[Polygon, float]:
    """A star-shaped area of 150-600 m radius with 0-4 rotated rectangular no-fly zones well inside."""
    swath = draw(st.floats(15, 40))
    radius = draw(st.floats(150, 600))
    n = draw(st.integers(5, 11))
    radii = draw(st.lists(st.floats(0.6, 1.0), min_size=n, max_size=n))
    jitter = draw(st.lists(st.floats(-0.25, 0.25), min_size=n, max_size=n))
    pts = [
        (r * radius * math.cos(2 * math.pi * (k + j) / n), r * radius * math.sin(2 * math.pi * (k + j) / n))
        for k, (r, j) in enumerate(zip(radii, jitter, strict=True))
    ]
    shell = Polygon(pts)
    room = shell.buffer(-2 * swath)
    holes: list[Polygon] = []
    for _ in range(draw(st.integers(0, 4))):
        if room.is_empty:
            break
        x_min, y_min, x_max, y_max = room.bounds
        cx = draw(st.floats(x_min, x_max))
        cy = draw(st.floats(y_min, y_max))
        w = draw(st.floats(0.1, 0.35)) * radius
        h = draw(st.floats(0.1, 0.35)) * radius
        hole = affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), draw(st.floats(0, 180)))
        if room.contains(hole) and all(hole.distance(o) > 2 * swath for o in holes):
            holes.append(hole)
    return Polygon(shell.exterior.coords, [h.exterior.coords for h in holes]), swath


@settings(max_examples=40, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(areas_with_holes())
def test_random_areas_are_covered_safely(case: tuple[Polygon, float]) -> None:
    area, swath = case
    plan = sweep(area, swath_m=swath)
    assert plan.coverage >= 0.99
    assert _coverage(area, plan.path, swath) >= 0.99 - 3e-3  # sampled, not buffered: same answer
    _assert_safe(area, plan, clearance_m=min(2.0, swath / 8))
    assert plan.length_m == pytest.approx(plan.path.length)
    assert plan.flight_time_s >= plan.length_m / 10.0


@st.composite
def bent_corridors(draw: st.DrawFn) -> tuple[Polygon, float] | None:
    """A corridor 3-8 swaths wide along a polyline of 2-5 legs (mitred, rounded or bevelled bends)."""
    swath = draw(st.floats(15, 40))
    pts = [(0.0, 0.0)]
    heading = draw(st.floats(0, 360))
    for _ in range(draw(st.integers(2, 5))):
        heading += draw(st.floats(-100, 100))
        leg = draw(st.floats(200, 900))
        x, y = pts[-1]
        pts.append((x + leg * math.cos(math.radians(heading)), y + leg * math.sin(math.radians(heading))))
    spine = LineString(pts)
    if not spine.is_simple:
        return None
    join = draw(st.sampled_from(["mitre", "round", "bevel"]))
    shape = spine.buffer(draw(st.floats(1.5, 4)) * swath, cap_style="flat", join_style=join)
    if not isinstance(shape, Polygon) or not shape.is_valid:
        return None
    return shape, swath


@settings(
    max_examples=40, deadline=3000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(bent_corridors().filter(lambda case: case is not None))
def test_random_corridors_are_covered_safely(case: tuple[Polygon, float]) -> None:
    # bent areas are swept leg by leg at their own angles: the joins must stay inside and cover too
    area, swath = case
    plan = sweep(area, swath_m=swath)
    assert plan.coverage >= 0.99
    assert _coverage(area, plan.path, swath) >= 0.99 - 3e-3
    _assert_safe(area, plan, clearance_m=min(2.0, swath / 8))


# --- bad input ----------------------------------------------------------------------------------------

SQUARE = box(0, 0, 500, 500)


def _nan_area() -> Polygon:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Polygon([(0, 0), (500, 0), (math.nan, 500), (0, 500)])


@pytest.mark.parametrize(
    ("area", "kwargs", "message"),
    [
        (SQUARE, {"swath_m": 0}, r"swath_m must be positive"),
        (SQUARE, {"swath_m": -10}, r"swath_m must be positive"),
        (SQUARE, {"swath_m": math.nan}, r"swath_m must be finite"),
        (SQUARE, {"swath_m": math.inf}, r"swath_m must be finite"),
        (SQUARE, {"swath_m": 30, "speed_m_s": 0}, r"speed_m_s must be positive"),
        (SQUARE, {"swath_m": 30, "turn_s": -1}, r"turn_s must be a finite number >= 0"),
        (SQUARE, {"swath_m": 30, "clearance_m": 20}, r"clearance_m \(20\) must be less than half the swath"),
        (SQUARE, {"swath_m": 30, "angle_deg": math.nan}, r"angle_deg: x must be finite"),
        (SQUARE, {"swath_m": 30, "start": (0, math.inf)}, r"start: y must be finite"),
        (
            Polygon([(0, 0), (500, 500), (500, 0), (0, 500)]),
            {"swath_m": 30},
            r"area is invalid: self-intersection",
        ),
        (
            Polygon(SQUARE.exterior.coords, [box(600, 600, 700, 700).exterior.coords]),
            {"swath_m": 30},
            r"hole 0 lies outside the exterior",
        ),
        (
            Polygon(SQUARE.exterior.coords, [box(0, 200, 100, 300).exterior.coords]),
            {"swath_m": 30},
            r"hole 0 touches the exterior",
        ),
        (box(0, 0, 20, 25), {"swath_m": 30}, r"smaller than the swath"),
        (box(0, 0, 20_000, 10_000), {"swath_m": 30}, r"200\.0 km\^2, over the 100 km\^2 limit"),
        (_nan_area(), {"swath_m": 30}, r"non-finite \(NaN/inf\) coordinate"),
        (Polygon(), {"swath_m": 30}, r"area is empty"),
        (SQUARE.boundary, {"swath_m": 30}, r"must be a shapely Polygon, got LineString"),
    ],
)
def test_bad_input_names_the_problem(area: object, kwargs: dict, message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        sweep(area, **kwargs)  # type: ignore[arg-type]


def test_passage_narrower_than_the_clearance_is_refused() -> None:
    # two 300 m squares joined by a 3 m wide gap: with 2 m clearance there is no way through
    area = Polygon([(0, 0), (300, 0), (300, 148.5), (320, 148.5), (320, 0), (620, 0), (620, 300), (0, 300)])
    area = area.difference(box(300, 151.5, 320, 300)).difference(box(300, 0, 320, 148.5))
    assert isinstance(area, Polygon)
    with pytest.raises(PlanningError, match=r"splits into 2 parts .*\(narrow passage\)"):
        sweep(area, swath_m=30)


def test_wgs84_rejects_swapped_coordinates() -> None:
    with pytest.raises(PlanningError, match=r"latitude"):
        sweep_wgs84(box(39.82, 109.98, 39.83, 109.99), swath_m=30)
