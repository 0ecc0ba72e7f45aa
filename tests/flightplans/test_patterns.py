"""Patrol patterns: perimeter loops, corridor sweeps, orbits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.errors import PlanningError
from flightplans.patterns import corridor, orbit, perimeter

from .conftest import star_polygons


def test_perimeter_golden_rectangle() -> None:
    plan = perimeter(box(0, 0, 100, 50), inset_m=10, speed_m_s=5)
    assert plan.length_m == pytest.approx(220.0)
    assert plan.flight_time_s == pytest.approx(44.0 + 3 * 3.0)  # 3 s per turn by default, as sweep
    assert plan.turns == 3
    assert plan.waypoints[0] == plan.waypoints[-1]
    assert sorted(set(plan.waypoints)) == [(10.0, 10.0), (10.0, 40.0), (90.0, 10.0), (90.0, 40.0)]
    assert plan.path.coords[0] == plan.path.coords[-1]


def test_perimeter_direction_laps_and_start() -> None:
    area = box(0, 0, 100, 100)
    ccw = perimeter(area, inset_m=5)
    cw = perimeter(area, inset_m=5, clockwise=True, laps=3, start=(96, 96))
    assert Polygon(ccw.waypoints).exterior.is_ccw
    assert not Polygon(cw.waypoints[:5]).exterior.is_ccw
    assert cw.waypoints[0] == (95.0, 95.0) == cw.waypoints[-1]
    assert cw.length_m == pytest.approx(3 * ccw.length_m)
    assert cw.laps == 3


def test_perimeter_keeps_clear_of_holes() -> None:
    area = Polygon(box(0, 0, 400, 400).exterior, [box(150, 150, 250, 250).exterior])
    plan = perimeter(area, inset_m=20)
    assert plan.path.distance(box(150, 150, 250, 250)) >= 20 - 1e-9
    assert plan.length_m == pytest.approx(4 * 360)


@settings(max_examples=120, deadline=None)
@given(area=star_polygons(), inset=st.floats(0, 60))
def test_perimeter_stays_inside_by_the_inset(area: Polygon, inset: float) -> None:
    try:
        plan = perimeter(area, inset_m=inset)
    except PlanningError as exc:
        assert "leaves nothing" in str(exc) or "splits the area" in str(exc)
        return
    assert area.buffer(1e-6).covers(plan.path)
    assert plan.path.distance(area.exterior) >= inset - 1e-5  # GEOS buffer noise on degenerate corners
    assert plan.waypoints[0] == plan.waypoints[-1]
    assert plan.length_m == pytest.approx(plan.path.length)


def test_perimeter_refuses_what_it_cannot_fly() -> None:
    with pytest.raises(
        PlanningError, match=r"inset_m 30 leaves nothing of the area \(it is at most 50.0 m across\)"
    ):
        perimeter(box(0, 0, 100, 50), inset_m=30)
    dumbbell = box(0, 0, 100, 100).union(box(100, 45, 200, 55)).union(box(200, 0, 300, 100))
    with pytest.raises(PlanningError, match="splits the area into 2 separate loops"):
        perimeter(dumbbell, inset_m=10)
    with pytest.raises(PlanningError, match="inset_m must be >= 0, got -1"):
        perimeter(box(0, 0, 100, 100), inset_m=-1)
    with pytest.raises(PlanningError, match="inset_m must be finite"):
        perimeter(box(0, 0, 100, 100), inset_m=math.nan)
    with pytest.raises(PlanningError, match="area is invalid: self-intersection"):
        perimeter(Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), inset_m=1)
    with pytest.raises(PlanningError, match="laps must be an integer >= 1"):
        perimeter(box(0, 0, 100, 100), inset_m=1, laps=0)


def test_corridor_golden_two_passes() -> None:
    plan = corridor(LineString([(0, 0), (100, 0)]), width_m=40, swath_m=20, speed_m_s=10, turn_s=0)
    assert plan.passes == 2
    assert plan.offsets_m == (-10.0, 10.0)
    assert plan.waypoints == ((0.0, -10.0), (100.0, -10.0), (100.0, 10.0), (0.0, 10.0))
    assert plan.length_m == pytest.approx(220.0)
    assert plan.flight_time_s == pytest.approx(22.0)
    assert plan.turns == 2


def test_corridor_narrower_than_swath_flies_the_line() -> None:
    line = LineString([(0, 0), (100, 0), (100, 100)])
    plan = corridor(line, width_m=10, swath_m=30)
    assert plan.passes == 1 and plan.offsets_m == (0.0,)
    assert plan.path.equals(line)


@settings(max_examples=60, deadline=None)
@given(
    bend_deg=st.floats(-120, 120),
    width=st.floats(10, 120),
    swath=st.floats(8, 60),
)
def test_corridor_covers_the_strip_along_a_bent_line(bend_deg: float, width: float, swath: float) -> None:
    heading = math.radians(bend_deg)
    line = LineString([(0, 0), (300, 0), (300 + 300 * math.cos(heading), 300 * math.sin(heading))])
    plan = corridor(line, width_m=width, swath_m=swath)
    assert plan.passes == max(1, math.ceil(width / swath - 1e-9))
    assert width / plan.passes <= swath + 1e-9
    # Every pass stays within the strip, and the swaths cover (nearly all of) the strip.
    strip = line.buffer(width / 2, cap_style="flat")
    assert line.buffer(width / 2 + 1e-6).covers(plan.path)
    covered = plan.path.buffer(swath / 2, cap_style="flat").intersection(strip).area
    assert covered / strip.area > 0.97


def test_corridor_bad_input() -> None:
    with pytest.raises(PlanningError, match="line needs at least two distinct points"):
        corridor(LineString([(0, 0), (0, 0)]), width_m=10, swath_m=5)
    with pytest.raises(PlanningError, match="line is empty"):
        corridor(LineString(), width_m=10, swath_m=5)
    with pytest.raises(PlanningError, match="line must be a shapely LineString, got Polygon"):
        corridor(box(0, 0, 1, 1), width_m=10, swath_m=5)
    with pytest.raises(PlanningError, match="width_m must be positive"):
        corridor(LineString([(0, 0), (10, 0)]), width_m=0, swath_m=5)
    with pytest.raises(PlanningError, match="swath_m must be finite"):
        corridor(LineString([(0, 0), (10, 0)]), width_m=10, swath_m=math.inf)


def test_orbit_golden() -> None:
    plan = orbit((100, 200), radius_m=50, dwell_s=120, speed_m_s=5, points=24)
    assert plan.flight_time_s == 120.0
    assert plan.length_m == pytest.approx(600.0)
    lap = 24 * 2 * 50 * math.sin(math.pi / 24)
    assert plan.laps == pytest.approx(600.0 / lap)
    radii = [math.dist(w, (100, 200)) for w in plan.waypoints]
    assert all(r == pytest.approx(50.0) for r in radii[:-1])  # the last point is where the dwell runs out
    assert plan.waypoints[0] == pytest.approx((100.0, 250.0))  # starts north of the centre
    assert plan.turns == 0


@pytest.mark.parametrize("clockwise", [True, False])
def test_orbit_direction(clockwise: bool) -> None:
    plan = orbit(Point(0, 0), radius_m=30, dwell_s=10, speed_m_s=3, clockwise=clockwise)
    (x0, _), (x1, _) = plan.waypoints[:2]
    # From north, clockwise heads east (+x), counter-clockwise west.
    assert (x1 > x0) is clockwise


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"radius_m": 0}, "radius_m must be positive"),
        ({"radius_m": -5}, "radius_m must be positive"),
        ({"dwell_s": math.nan}, "dwell_s must be finite"),
        ({"speed_m_s": 0}, "speed_m_s must be positive"),
        ({"center": (math.inf, 0)}, "center: x must be finite"),
        ({"center": Point()}, "center is an empty point"),
        ({"points": 3}, "points must be an integer >= 6"),
        ({"start_bearing_deg": None}, "start_bearing_deg must be a finite number, got None"),
    ],
)
def test_orbit_bad_input(kwargs: dict, needle: str) -> None:
    args = {"center": (0, 0), "radius_m": 20, "dwell_s": 60, "speed_m_s": 4} | kwargs
    center = args.pop("center")
    with pytest.raises(PlanningError, match=needle):
        orbit(center, **args)


def test_waypoints_are_deduplicated_floats() -> None:
    plan = perimeter(box(0, 0, 10, 10), inset_m=0)
    xy = np.asarray(plan.waypoints)
    assert (np.hypot(*np.diff(xy, axis=0).T) > 0).all()
    assert all(isinstance(v, float) for w in plan.waypoints for v in w)
