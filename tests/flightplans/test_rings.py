"""Checkpoint rings: allocation of drones to rings, phase offsets, revisit gaps and no-fly detours."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.errors import PlanningError
from flightplans.rings import rings

from .conftest import visit_gaps_s


def _ngon_length(radius_m: float, points: int = 36) -> float:
    return 2 * points * radius_m * math.sin(math.pi / points)


def test_golden_two_rings_four_drones() -> None:
    plan = rings((0, 0), radii_m=[100, 300], drones=4, revisit_s=70, speed_m_s=10)
    lap_inner = _ngon_length(100) / 10
    lap_outer = _ngon_length(300) / 10
    assert [r.drones for r in plan.rings] == [1, 3]
    assert plan.rings[0].lap_s == pytest.approx(lap_inner)
    assert plan.rings[1].gap_s == pytest.approx(lap_outer / 3)
    assert plan.worst_gap_s == pytest.approx(max(lap_inner, lap_outer / 3))
    assert plan.feasible and plan.min_drones == 4
    assert "4 drones revisit every ring within 62.8 s" in plan.reason
    # Drones on the outer ring start a third of a lap apart, all at the ring's radius.
    outer = [a for a in plan.assignments if a.ring == 1]
    assert [a.start_offset_m for a in outer] == pytest.approx(
        [0, plan.rings[1].length_m / 3, 2 * plan.rings[1].length_m / 3]
    )
    for a in plan.assignments:
        assert math.dist(a.waypoints[0], (0, 0)) == pytest.approx(plan.rings[a.ring].radius_m, rel=0.01)
        assert a.path.is_closed and a.length_m == pytest.approx(plan.rings[a.ring].length_m)


def test_too_few_drones_says_so_and_how_many_are_needed() -> None:
    plan = rings((0, 0), radii_m=[100, 300], drones=3, revisit_s=60, speed_m_s=10)
    assert not plan.feasible
    assert plan.min_drones == 2 + 4  # laps of 62.8 s and 188.3 s against a 60 s target
    assert "at least 6 needed" in plan.reason
    assert plan.worst_gap_s > 60
    # The best split of 3 drones: 1 on the inner ring, 2 on the outer one.
    assert [r.drones for r in plan.rings] == [1, 2]
    assert plan.worst_gap_s == pytest.approx(plan.rings[1].lap_s / 2)


def test_fewer_drones_than_rings_leaves_a_ring_unserved() -> None:
    plan = rings((0, 0), radii_m=[100, 200, 300], drones=2, revisit_s=600, speed_m_s=10)
    assert not plan.feasible
    assert sorted(r.drones for r in plan.rings) == [0, 1, 1]
    assert plan.worst_gap_s == math.inf
    assert "get no drone" in plan.reason


@settings(max_examples=40, deadline=None)
@given(
    radii=st.lists(st.floats(30, 1500), min_size=1, max_size=4, unique=True),
    drones=st.integers(1, 12),
    revisit=st.floats(20, 900),
    speed=st.floats(2, 20),
)
def test_feasible_plans_revisit_every_point_in_time(
    radii: list[float], drones: int, revisit: float, speed: float
) -> None:
    plan = rings((0, 0), radii_m=radii, drones=drones, revisit_s=revisit, speed_m_s=speed)
    assert sum(r.drones for r in plan.rings) == drones
    assert plan.feasible == (drones >= plan.min_drones)
    for i, ring in enumerate(plan.rings):
        offsets = [a.start_offset_m for a in plan.assignments if a.ring == i]
        assert len(offsets) == ring.drones
        if not offsets:
            assert ring.gap_s == math.inf
            continue
        simulated = visit_gaps_s(ring.length_m, offsets, speed)
        assert simulated == pytest.approx(ring.gap_s, rel=1e-6)
        if plan.feasible:
            assert simulated <= revisit + 1e-6
    # min_drones is the least that works: one fewer is never feasible.
    if plan.min_drones > 1:
        fewer = rings((0, 0), radii_m=radii, drones=plan.min_drones - 1, revisit_s=revisit, speed_m_s=speed)
        assert not fewer.feasible
    enough = rings((0, 0), radii_m=radii, drones=plan.min_drones, revisit_s=revisit, speed_m_s=speed)
    assert enough.feasible


def test_a_no_fly_zone_on_a_ring_is_detoured_and_lengthens_the_gap() -> None:
    zone = box(250, -50, 400, 50)  # across the 300 m ring, east of the venue
    clear = rings((0, 0), radii_m=[100, 300], drones=3, revisit_s=90, speed_m_s=10)
    plan = rings(
        (0, 0), radii_m=[100, 300], drones=3, revisit_s=90, speed_m_s=10, nofly=[zone], clearance_m=15
    )
    inner, outer = plan.rings
    assert inner.detour_m == 0 and inner.path.distance(zone) > 100
    assert outer.path.distance(zone) >= 15 - 1e-6
    assert outer.detour_m > 0
    assert outer.length_m > clear.rings[1].length_m
    assert outer.lap_s == pytest.approx(outer.length_m / 10)
    assert outer.gap_s == pytest.approx(outer.lap_s / outer.drones)
    for a in plan.assignments:
        assert a.path.distance(zone) >= 15 - 1e-6
        offsets = [b.start_offset_m for b in plan.assignments if b.ring == a.ring]
        assert visit_gaps_s(plan.rings[a.ring].length_m, offsets, 10) == pytest.approx(
            plan.rings[a.ring].gap_s
        )


@settings(max_examples=40, deadline=None)
@given(
    bearing=st.floats(0, 2 * math.pi),
    size=st.floats(20, 200),
    radius=st.floats(150, 800),
    clearance=st.floats(0, 30),
)
def test_detours_never_enter_the_zone(bearing: float, size: float, radius: float, clearance: float) -> None:
    cx, cy = radius * math.sin(bearing), radius * math.cos(bearing)
    zone = box(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    plan = rings(
        (0, 0), radii_m=[radius], drones=2, revisit_s=600, speed_m_s=8, nofly=[zone], clearance_m=clearance
    )
    ring = plan.rings[0]
    assert ring.path.is_closed
    assert ring.path.distance(zone) >= clearance - 1e-6
    assert ring.length_m >= _ngon_length(radius) * 0.99
    assert ring.gap_s == pytest.approx(ring.lap_s / 2)


def test_ring_entirely_inside_a_zone_is_refused() -> None:
    with pytest.raises(PlanningError, match=r"ring 1 \(200 m\) lies entirely inside a no-fly zone"):
        rings((0, 0), radii_m=[1000, 200], drones=2, revisit_s=600, nofly=[Point(0, 0).buffer(400)])


def test_ring_walled_off_cannot_detour() -> None:
    # The 300 m ring only surfaces in a sealed pocket: a slot in a no-fly disc that reaches neither the
    # outside nor (past the no-fly venue) round the centre, so no loop can circle the venue.
    disc = Point(0, 0).buffer(600).difference(Point(0, 0).buffer(150)).difference(box(-400, -20, 0, 20))
    venue = Point(0, 0).buffer(140)
    needle = r"ring 0 \(300 m\) cannot detour around the no-fly zones and still circle the venue"
    with pytest.raises(PlanningError, match=needle):
        rings((0, 0), radii_m=[300], drones=2, revisit_s=600, nofly=[disc, venue], clearance_m=5)


def test_detour_may_circle_inside_when_outside_is_blocked() -> None:
    # Same annulus, venue open: the ring enters by the slot and circles the venue inside the annulus.
    annulus = Point(0, 0).buffer(600).difference(Point(0, 0).buffer(150)).difference(box(-700, -20, 0, 20))
    plan = rings((0, 0), radii_m=[300], drones=1, revisit_s=600, nofly=[annulus], clearance_m=5)
    loop = plan.rings[0].path
    assert loop.distance(annulus) >= 5 - 1e-6
    assert Point(0, 0).distance(loop) > 0 and Point(0, 0).within(Polygon(loop.coords).buffer(0))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"radii_m": []}, "radii_m is empty"),
        ({"radii_m": [100, -5]}, r"radii_m\[1\] must be positive"),
        ({"radii_m": [100, 0]}, r"radii_m\[1\] must be positive"),
        ({"radii_m": [100, 100]}, "repeated radius"),
        ({"radii_m": [math.nan]}, r"radii_m\[0\] must be finite"),
        ({"radii_m": 100}, "radii_m must be a list"),
        ({"drones": 0}, "drones must be an integer >= 1"),
        ({"revisit_s": math.inf}, "revisit_s must be finite"),
        ({"speed_m_s": -3}, "speed_m_s must be positive"),
        ({"center": (math.nan, 0)}, "center: x must be finite"),
        ({"nofly": [LineString([(0, 0), (1, 0)])]}, r"nofly\[0\] must be a shapely Polygon"),
    ],
)
def test_bad_input_is_named(kwargs: dict, needle: str) -> None:
    args = {"center": (0, 0), "radii_m": [100], "drones": 2, "revisit_s": 60, "speed_m_s": 8} | kwargs
    center = args.pop("center")
    with pytest.raises(PlanningError, match=needle):
        rings(center, **args)
