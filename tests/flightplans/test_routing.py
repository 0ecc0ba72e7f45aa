"""Routing: shortest paths around no-fly zones with a clearance."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.errors import PlanningError
from flightplans.routing import Obstacles, shortest_path

from .conftest import coord, zones

# Routing polygonises the clearance buffer; the chords must keep the clearance, so corners stick out a bit.
_GROWTH = 1.10


def _convex_hull(xy: np.ndarray) -> np.ndarray:
    """Counter-clockwise hull vertices of distinct points (Andrew's monotone chain; collinear ones kept)."""
    pts = [tuple(p) for p in np.unique(xy, axis=0)]

    def chain(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in points:
            while len(out) >= 2:
                (ox, oy), (ax, ay) = out[-2], out[-1]
                if (ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox) >= 0:
                    break
                out.pop()
            out.append(p)
        return out[:-1]

    return np.asarray(chain(pts) + chain(pts[::-1]))


def _hull_detour_m(a: tuple[float, float], b: tuple[float, float], obstacle: Polygon) -> float:
    """Exact shortest a -> b around ONE convex obstacle: the shorter chain of hull(a, b, obstacle).

    The hull is computed here, on a 1 nm grid: GEOS (3.14) has returned a non-convex hull for a nearly
    collinear start, goal and obstacle, and projecting onto the ring divided by zero on the edges a few
    ulps long that a sub-normal clearance (hypothesis tried 5e-324 m) buffers a polygon into.
    """
    ends = np.round(np.asarray([a, b], dtype=float), 9)
    hull = _convex_hull(np.round(np.asarray([*obstacle.exterior.coords, *ends]), 9))
    at = [int(np.flatnonzero(np.all(hull == end, axis=1))[0]) for end in ends]  # a and b are corners
    edges = np.hypot(*np.diff(np.vstack([hull, hull[:1]]), axis=0).T)
    one_way = float(edges[min(at) : max(at)].sum())
    return min(one_way, float(edges.sum()) - one_way)


def test_golden_box_without_clearance() -> None:
    path = shortest_path((0, 0), (100, 0), nofly=[box(40, -10, 60, 10)], clearance_m=0)
    assert path.length == pytest.approx(2 * math.hypot(40, 10) + 20)
    coords = [(round(x, 9), abs(round(y, 9))) for x, y in path.coords]
    assert coords == [(0, 0), (40, 10), (60, 10), (100, 0)]


def test_unobstructed_is_the_straight_line() -> None:
    path = shortest_path((0, 0), (1000, 500), nofly=[box(400, 400, 500, 500)], clearance_m=20)
    assert list(path.coords) == [(0.0, 0.0), (1000.0, 500.0)]


def test_clearance_is_kept_around_a_square() -> None:
    zone = box(-50, -50, 50, 50)
    path = shortest_path((-300, 0), (300, 0), nofly=[zone], clearance_m=25)
    assert path.distance(zone) >= 25 - 1e-6
    # Around a square with rounded corners of 25 m: 2 * tangents + half the rounded box, give or take.
    assert 600 < path.length < 700


def test_concave_boundary_forces_the_path_around_the_notch() -> None:
    # A U-shaped operating area: from one arm to the other the path must go round the bottom.
    area = Polygon([(0, 0), (300, 0), (300, 300), (200, 300), (200, 100), (100, 100), (100, 300), (0, 300)])
    path = shortest_path((50, 250), (250, 250), boundary=area, clearance_m=0)
    assert area.buffer(1e-6).covers(path)
    assert path.length == pytest.approx(2 * math.hypot(50, 150) + 100, rel=1e-9)
    assert min(y for _, y in path.coords) == pytest.approx(100)


def test_boundary_holes_are_no_fly() -> None:
    area = box(0, 0, 1000, 1000).difference(box(400, 0 + 100, 600, 900))
    path = shortest_path((100, 500), (900, 500), boundary=area, clearance_m=10)
    assert path.distance(box(400, 100, 600, 900)) >= 10 - 1e-6
    assert area.buffer(1e-6).covers(path)


@settings(max_examples=150, deadline=None)
@given(
    obstacles=st.lists(zones(), min_size=1, max_size=6),
    start=st.tuples(coord, coord),
    goal=st.tuples(coord, coord),
    clearance=st.floats(0, 40),
)
def test_paths_never_enter_grown_zones_and_are_straight_when_clear(
    obstacles: list[Polygon], start: tuple[float, float], goal: tuple[float, float], clearance: float
) -> None:
    assume(all(z.distance(Point(p)) > clearance * _GROWTH + 1e-3 for z in obstacles for p in (start, goal)))
    try:
        path = shortest_path(start, goal, nofly=obstacles, clearance_m=clearance)
    except PlanningError as exc:
        # Only legitimate when the start or goal is walled in by overlapping zones.
        assert "no path" in str(exc)
        return
    assert path.coords[0] == pytest.approx(start) and path.coords[-1] == pytest.approx(goal)
    for zone in obstacles:
        assert path.distance(zone) >= clearance - 1e-6
    straight = math.dist(start, goal)
    assert path.length >= straight - 1e-9
    if all(LineString([start, goal]).distance(z) >= clearance * _GROWTH + 1e-6 for z in obstacles):
        assert path.length == pytest.approx(straight)


# a sub-normal clearance: its buffer has vertices 5e-324 m apart (the helper divided by zero on them)
@example(
    zone=Point(0, 0).buffer(10, quad_segs=5), heading=0.0, skew=0.0, reach=(350.0, 350.0), clearance=5e-324
)
@settings(max_examples=150, deadline=None)
@given(
    zone=zones(),
    heading=st.floats(0, 2 * math.pi),
    skew=st.floats(-0.4, 0.4),
    reach=st.tuples(st.floats(350, 2000), st.floats(350, 2000)),
    clearance=st.floats(0, 40),
)
def test_path_around_one_zone_is_no_longer_than_needed(
    zone: Polygon, heading: float, skew: float, reach: tuple[float, float], clearance: float
) -> None:
    c = zone.centroid
    start = (c.x + reach[0] * math.cos(heading), c.y + reach[0] * math.sin(heading))
    back = heading + math.pi + skew
    goal = (c.x + reach[1] * math.cos(back), c.y + reach[1] * math.sin(back))
    # Lower bound: the exact shortest path around a polygon inscribed in the true clearance buffer.
    # Exact: the shortest path around the polygon routing actually avoids, whose corners stick out of the
    # true buffer by at most 10 % of the clearance.
    inner = zone.buffer(clearance, quad_segs=32) if clearance > 0 else zone
    (avoided,) = Obstacles.build([zone], clearance_m=clearance).grown
    outer = zone.buffer(clearance * _GROWTH + 1e-6, quad_segs=64)
    assert outer.covers(avoided)
    assume(all(avoided.distance(Point(p)) > 1e-3 for p in (start, goal)))
    assume(LineString([start, goal]).intersects(inner))
    path = shortest_path(start, goal, nofly=[zone], clearance_m=clearance)
    assert path.distance(zone) >= clearance - 1e-6
    assert path.length >= _hull_detour_m(start, goal, inner) - 1e-5  # clearances < 1 um count as none
    assert path.length == pytest.approx(_hull_detour_m(start, goal, avoided), abs=1e-6)


def _twelve_zones(seed: int) -> list[Polygon]:
    rng = np.random.default_rng(seed)
    out: list[Polygon] = []
    while len(out) < 12:
        c = rng.uniform(-1500, 1500, 2)
        if rng.random() < 0.5:
            z = Point(c).buffer(rng.uniform(50, 200))
        else:
            w, h = rng.uniform(60, 300, 2)
            z = affinity.rotate(
                box(c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2), rng.uniform(0, 90)
            )
        ends_clear = z.distance(Point(-2000, -2000)) > 100 and z.distance(Point(2000, 2000)) > 100
        if ends_clear and not any(z.buffer(40).intersects(o) for o in out):
            out.append(z)
    return out


def test_a_dozen_zones_route_fast_enough_for_dispatch() -> None:
    cases = [_twelve_zones(seed) for seed in range(15)]
    shortest_path((-2000, -2000), (2000, 2000), nofly=cases[0], clearance_m=20)  # warm caches
    with_build, prebuilt = [], []
    for zones_ in cases:
        t0 = time.process_time()
        path = shortest_path((-2000, -2000), (2000, 2000), nofly=zones_, clearance_m=20)
        t1 = time.process_time()
        obstacles = Obstacles.build(zones_, clearance_m=20)
        t2 = time.process_time()
        again = shortest_path((-2000, -2000), (2000, 2000), nofly=obstacles)
        t3 = time.process_time()
        with_build.append(t1 - t0)
        prebuilt.append(t3 - t2)
        assert again.equals(path)
        assert all(path.distance(z) >= 20 - 1e-6 for z in zones_)
    # CPU time of this process (other work on the machine does not count): typically ~5 ms with the build
    # and ~1 ms prebuilt; the bound leaves room for a slow CI box.
    assert statistics.median(prebuilt) < 0.010
    assert statistics.median(with_build) < 0.030


def test_start_or_goal_inside_a_zone_is_refused() -> None:
    zone = box(0, 0, 100, 100)
    with pytest.raises(PlanningError, match=r"start \(50.0, 50.0\) is inside no-fly zone 0"):
        shortest_path((50, 50), (500, 500), nofly=[zone], clearance_m=10)
    with pytest.raises(PlanningError, match=r"goal \(300.0, 50.0\) is inside no-fly zone 1"):
        shortest_path((500, 500), (300, 50), nofly=[zone, box(200, 0, 400, 100)], clearance_m=10)


def test_within_the_clearance_the_path_first_gets_out() -> None:
    # A vehicle 4 m from a zone with a 10 m clearance leaves the margin the shortest way, then routes.
    zone = box(0, 0, 100, 100)
    path = shortest_path((104, 50), (104, 300), nofly=[zone], clearance_m=10)
    coords = list(path.coords)
    assert coords[0] == (104.0, 50.0) and coords[-1] == (104.0, 300.0)
    exit_x, exit_y = coords[1]
    assert exit_y == pytest.approx(50.0) and 110.0 <= exit_x <= 100 + 10 * _GROWTH + 0.01
    assert LineString(coords[1:]).distance(zone) >= 10 - 1e-6
    # Same at the goal end, and a start in the margin with the goal right beside it.
    back = shortest_path((104, 300), (104, 50), nofly=[zone], clearance_m=10)
    assert list(back.coords)[-1] == (104.0, 50.0)
    assert LineString(list(back.coords)[:-1]).distance(zone) >= 10 - 1e-6


def test_margin_with_no_way_out_is_refused() -> None:
    # In the 8 m hole of a ring-shaped zone with a 10 m clearance: every way out crosses the zone.
    ring = Point(0, 0).buffer(100).difference(Point(0, 0).buffer(8))
    with pytest.raises(PlanningError, match="within the 10 m clearance of the no-fly zones with no way out"):
        shortest_path((0, 0), (500, 0), nofly=[ring], clearance_m=10)


def test_walled_in_goal_has_no_path() -> None:
    # A ring-shaped zone with the goal in its hole.
    ring = Point(0, 0).buffer(300).difference(Point(0, 0).buffer(200))
    with pytest.raises(PlanningError, match="no path"):
        shortest_path((1000, 0), (0, 0), nofly=[ring], clearance_m=10)


def test_outside_boundary_is_refused() -> None:
    with pytest.raises(PlanningError, match=r"goal .* outside the boundary"):
        shortest_path((10, 10), (500, 10), boundary=box(0, 0, 100, 100))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"start": (math.nan, 0)}, "start: x must be finite"),
        ({"goal": (0, math.inf)}, "goal: y must be finite"),
        ({"goal": (1, 2, 3)}, r"goal must be an \(x, y\) pair"),
        ({"clearance_m": -1}, "clearance_m must be a finite number >= 0"),
        ({"clearance_m": math.nan}, "clearance_m must be a finite number >= 0"),
        (
            {"nofly": [Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])]},
            r"nofly\[0\] is invalid: self-intersection",
        ),
        ({"nofly": box(0, 0, 1, 1)}, "must be a list of polygons"),
        ({"nofly": None}, "nofly must be a list of polygons, got NoneType"),
        ({"nofly": [LineString([(0, 0), (1, 1)])]}, r"nofly\[0\] must be a shapely Polygon"),
    ],
)
def test_bad_input_is_named(kwargs: dict, needle: str) -> None:
    args = {"start": (-500, -500), "goal": (500, 500), "nofly": [], "clearance_m": 5.0} | kwargs
    start, goal = args.pop("start"), args.pop("goal")
    with pytest.raises(PlanningError, match=needle):
        shortest_path(start, goal, **args)
