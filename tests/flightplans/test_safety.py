"""Whole-plan safety check: every planted violation is found, with where it is."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from flightplans.compile import Hold, compile_mission
from flightplans.energy import EnergyModel, RoutePoint
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.routing import shortest_path
from flightplans.safety import NoFlyZone, check_mission, check_plan, route_from_mission

from .conftest import coord, zones

AREA = box(-100, -100, 2100, 1100)
# A zone from the ground up to 120 m across segment 0, a low zone (ground to 30 m) under segment 1,
# and a high zone (from 80 m up) that segment 2 climbs into.
TOWER = NoFlyZone(box(400, -50, 500, 50), 0, 120, "tower")
PARK = NoFlyZone(box(1200, 100, 1300, 300), 0, 30, "park")
AIRWAY = NoFlyZone(box(1900, 500, 2000, 700), 80, math.inf, "airway")


def _kinds(violations):
    return sorted((v.kind, v.where.kind, v.where.index) for v in violations)


def test_a_clean_plan_has_no_violations() -> None:
    route = [RoutePoint(0, 200, 50), RoutePoint(1000, 200, 50), RoutePoint(1000, 800, 50)]
    assert check_plan(route, home=(0, 0), nofly=[TOWER, AIRWAY], area=AREA, min_alt_m=20, max_alt_m=120) == ()


def test_every_planted_violation_is_found_with_its_location() -> None:
    route = [
        RoutePoint(0, 0, 50),  # 0
        RoutePoint(1000, 0, 50),  # 1: segment 0 crosses TOWER at 50 m
        RoutePoint(1250, 400, 50),  # 2: segment 1 passes over PARK's 30 m ceiling: fine
        RoutePoint(1950, 800, 100),  # 3: segment 2 passes north of AIRWAY: fine
        RoutePoint(1950, 400, 100),  # 4: segment 3 runs south through AIRWAY at 100 m
        RoutePoint(2300, 400, 100),  # 5: outside the operating area (segment 4 leaves it at x = 2100)
        RoutePoint(1500, 900, 10),  # 6: below the 20 m floor; segment 5 crosses AIRWAY below its floor
        RoutePoint(1000, 900, 150, loiter_s=60),  # 7: above the 120 m ceiling
        RoutePoint(1250, 500, 25, loiter_s=30, loiter_radius_m=200),  # 8: loiter circle dips into PARK
    ]
    found = check_plan(
        route,
        home=(0, 0),
        nofly=[TOWER, PARK, AIRWAY],
        area=AREA,
        clearance_m=10,
        min_alt_m=20,
        max_alt_m=120,
    )
    assert _kinds(found) == sorted(
        [
            ("nofly", "segment", 0),
            ("nofly", "segment", 3),
            ("nofly", "point", 8),
            ("outside_area", "segment", 4),
            ("outside_area", "segment", 5),
            ("outside_area", "point", 5),
            ("too_low", "point", 6),
            ("too_high", "point", 7),
        ]
    )
    by_kind = {(v.kind, v.where.kind, v.where.index): v for v in found}
    tower = by_kind[("nofly", "segment", 0)]
    # Entry into the tower grown by 10 m: x = 390 on the y = 0 line, at 50 m.
    assert tower.where.xy == pytest.approx((390.0, 0.0), abs=1e-6)
    assert tower.where.alt_m == pytest.approx(50)
    assert "'tower'" in tower.message and "segment 0 (point 0 -> 1)" in tower.message
    airway = by_kind[("nofly", "segment", 3)]
    assert airway.where.xy == pytest.approx((1950.0, 710.0), abs=1e-6)
    outside = by_kind[("outside_area", "segment", 4)]
    assert outside.where.xy == pytest.approx((2100.0, 400.0), abs=1e-6)
    assert "leaves the operating area" in outside.message
    assert "below the 20 m floor" in by_kind[("too_low", "point", 6)].message
    assert "above the 120 m ceiling" in by_kind[("too_high", "point", 7)].message
    assert "200 m loiter circle" in by_kind[("nofly", "point", 8)].message


def test_altitude_bands_decide_whether_a_leg_enters() -> None:
    zone = NoFlyZone(box(100, -50, 200, 50), 40, 80)
    below = [RoutePoint(0, 0, 30), RoutePoint(300, 0, 30)]
    above = [RoutePoint(0, 0, 90), RoutePoint(300, 0, 90)]
    climbing = [RoutePoint(0, 0, 0.5), RoutePoint(300, 0, 90)]  # reaches 40 m at x = 133
    assert check_plan(below, home=(0, 0), nofly=[zone], clearance_m=0, return_home=False) == ()
    assert check_plan(above, home=(0, 0), nofly=[zone], clearance_m=0, return_home=False) == ()
    (hit,) = check_plan(climbing, home=(0, 0), nofly=[zone], clearance_m=0, return_home=False)
    assert hit.where.kind == "segment" and hit.where.index == 0
    assert hit.where.alt_m == pytest.approx(40)
    assert hit.where.xy[0] == pytest.approx(300 * (40 - 0.5) / 89.5)


def test_outbound_and_return_legs_are_checked() -> None:
    zone = NoFlyZone(box(-50, 400, 50, 500))
    route = [RoutePoint(0, 1000, 50), RoutePoint(100, 1000, 50)]
    found = check_plan(route, home=(0, 0), nofly=[zone], clearance_m=5)
    assert _kinds(found) == [("nofly", "outbound", 0), ("nofly", "return", 1)]
    assert "the leg from home to point 0" in found[0].message
    assert "the return leg home from point 1" in found[1].message


def test_energy_shortfall_is_located() -> None:
    model = EnergyModel(
        cruise_speed_m_s=10,
        cruise_power_w=360,
        climb_power_w=360,
        hover_power_w=360,
        battery_wh=20,
        reserve_pct=25,
    )
    # 15 Wh usable = 150 s of flight. A 500 m square at 10 m/s plus climbs.
    route = [RoutePoint(0, 0, 20), RoutePoint(500, 0, 20), RoutePoint(500, 500, 20), RoutePoint(0, 500, 20)]
    found = check_plan(route, home=(0, 0), energy=model)
    (short,) = found
    assert short.kind == "energy"
    est = model.estimate(route, home=(0, 0))
    # At point 1: 6.7 s climb + 50 s out, 50 s back + 10 s descent = 117 s, fine; at point 2 the way home
    # is 70.7 s: 187 s > 150 s.
    assert short.where.index == est.first_unsafe_index == 2
    assert f"{est.needed_wh:.1f} Wh" in short.message and "15.0 Wh" in short.message
    big = EnergyModel(cruise_speed_m_s=10, battery_wh=200)
    assert check_plan(route, home=(0, 0), energy=big) == ()


def test_wind_violation_names_the_leg() -> None:
    gale = EnergyModel(cruise_speed_m_s=10, max_airspeed_m_s=12, wind_east_m_s=-14)
    route = [RoutePoint(0, 0, 30), RoutePoint(500, 0, 30)]
    (v,) = check_plan(route, home=(0, 0), energy=gale)
    assert v.kind == "wind" and v.where.kind == "segment" and v.where.index == 0
    assert "14.0 m/s wind" in v.message


def test_compiled_mission_is_checked_end_to_end() -> None:
    frame = LocalFrame(47.40, 8.55)
    items = compile_mission(
        [(0, 0), (1000, 0), (1000, 500)], frame=frame, alt_m=60, actions=[Hold(2, seconds=30, radius_m=50)]
    )
    route = route_from_mission(items, frame=frame, home_lat=47.40, home_lon=8.55)
    assert route.return_home
    assert [round(p.x) for p in route.points] == [0, 0, 1000, 1000]
    assert route.points[-1].loiter_radius_m == pytest.approx(50)
    zone = NoFlyZone(box(980, 430, 1020, 445), 0, 200, "school")
    found = check_mission(items, frame=frame, home_lat=47.40, home_lon=8.55, nofly=[zone], clearance_m=10)
    # Point 3 (waypoint 2) is the loiter: the leg into it and its circle both enter the school zone.
    assert ("nofly", "segment", 2) in _kinds(found)
    assert ("nofly", "point", 3) in _kinds(found)
    assert route.item_index[3] == 3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"points": []}, "the route is empty"),
        ({"points": [(0, 0, 10)]}, "route point 0 must be a RoutePoint"),
        ({"home": (math.nan, 0)}, "home: x must be finite"),
        ({"clearance_m": -1}, "clearance_m must be a finite number >= 0"),
        (
            {"nofly": [Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])]},
            r"nofly\[0\] is invalid: self-intersection",
        ),
        (
            {"nofly": [NoFlyZone(box(0, 0, 1, 1), 50, 10, "x")]},
            r"nofly\[0\] \(x\) floor_m 50 is above its ceiling_m 10",
        ),
        ({"area": LineString([(0, 0), (1, 1)])}, "area must be a shapely Polygon"),
        ({"min_alt_m": 100, "max_alt_m": 50}, "min_alt_m 100 is above max_alt_m 50"),
        ({"max_alt_m": math.nan}, "max_alt_m must be a finite number, got nan"),
        ({"home": None}, r"home must be an \(x, y\) pair"),
        ({"nofly": None}, "nofly must be a list of zones, got NoneType"),
    ],
)
def test_bad_input_is_named(kwargs: dict, needle: str) -> None:
    args = {"points": [RoutePoint(0, 0, 10)], "home": (0, 0)} | kwargs
    points = args.pop("points")
    with pytest.raises(PlanningError, match=needle):
        check_plan(points, **args)


def test_loiter_circle_outside_the_area() -> None:
    route = [RoutePoint(50, 50, 30, loiter_s=10, loiter_radius_m=80)]
    (v,) = check_plan(route, home=(50, 50), area=box(0, 0, 100, 100))
    assert v.kind == "outside_area" and v.where.kind == "point" and "loiter circle" in v.message
    assert Point(v.where.xy).equals(Point(50, 50))


@settings(max_examples=100, deadline=None)
@given(zone=zones(), a=st.tuples(coord, coord), b=st.tuples(coord, coord), clearance=st.floats(0, 50))
def test_a_leg_is_flagged_exactly_when_it_comes_too_close(
    zone: Polygon, a: tuple[float, float], b: tuple[float, float], clearance: float
) -> None:
    assume(math.dist(a, b) > 1)
    route = [RoutePoint(*a, 50), RoutePoint(*b, 50)]
    found = check_plan(route, home=a, nofly=[zone], clearance_m=clearance, return_home=False)
    segment = LineString([a, b])

    def close(geom: BaseGeometry) -> bool:
        if clearance > 0:
            return geom.distance(zone) < clearance
        return zone.relate_pattern(geom, "T********")

    # Home is at ``a``: taking off there is too close when ``a`` is.
    expected = [("nofly", "outbound", 0)] if close(Point(a)) else []
    expected += [("nofly", "segment", 0)] if close(segment) else []
    assert [(v.kind, v.where.kind, v.where.index) for v in found] == expected
    for v in found:
        assert segment.distance(Point(v.where.xy)) < 1e-6
        assert Point(v.where.xy).distance(zone) <= clearance + 1e-6


@settings(max_examples=60, deadline=None)
@given(
    obstacles=st.lists(zones(), min_size=1, max_size=5), a=st.tuples(coord, coord), b=st.tuples(coord, coord)
)
def test_routed_paths_pass_the_safety_check(
    obstacles: list[Polygon], a: tuple[float, float], b: tuple[float, float]
) -> None:
    clearance = 15.0
    assume(all(z.distance(Point(p)) > clearance * 1.2 for z in obstacles for p in (a, b)))
    try:
        path = shortest_path(a, b, nofly=obstacles, clearance_m=clearance)
    except PlanningError:
        return  # walled in by overlapping zones
    route = [RoutePoint(x, y, 60) for x, y in path.coords]
    assert check_plan(route, home=a, nofly=obstacles, clearance_m=clearance, return_home=False) == ()
