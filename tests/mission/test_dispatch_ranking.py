"""Dispatch ranking: first arrival wins, routes avoid no-fly zones, low batteries are refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from mission.dispatch.energy import Performance, Wind, ground_speed_m_s
from mission.dispatch.ranking import Activity, DispatchRequest, VehicleState, nearest_docked, rank
from mission.dispatch.relief import plan_relief, time_until_leave_s
from mission.safety.routing import Airspace, NoFlyZone

FRAME = LocalFrame(39.82, 109.98)


def latlon(x: float, y: float) -> tuple[float, float]:
    return FRAME.point_to_wgs84(x, y)


def vehicle(vid: int, x: float, y: float, activity: Activity, *, battery: float = 95.0, home=None, **kw):
    lat, lon = latlon(x, y)
    hlat, hlon = latlon(*(home or (x, y)))
    alt = 60.0 if activity is not Activity.DOCKED else 0.0
    return VehicleState(vid, f"uav{vid}", lat, lon, alt, activity, battery, hlat, hlon, **kw)


def hospital() -> NoFlyZone:
    return NoFlyZone("hospital", FRAME.to_wgs84(box(-300, -300, 300, 300)))


def test_patrolling_drone_nearby_beats_a_farther_docked_one():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(1500, 0)
    patrol = vehicle(1, 900, 200, Activity.PATROL, home=(-2000, 0), patrol_run_id=7)
    docked = vehicle(2, 2600, 0, Activity.DOCKED)
    decision = rank([docked, patrol], DispatchRequest(*scene), airspace=space)
    assert decision.chosen is not None and decision.chosen.vehicle_id == 1
    assert decision.chosen.preempts_patrol_run == 7
    assert [c.vehicle_id for c in decision.candidates] == [1, 2]
    assert decision.candidates[1].eta_s > decision.chosen.eta_s
    # The docked one pays take-off and climb; the airborne one only flies.
    assert decision.candidates[1].takeoff_s > 0 and decision.chosen.takeoff_s == 0
    assert "uav1 arrives first (already airborne)" in decision.explanation


def test_no_preempt_request_leaves_patrols_alone():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(1500, 0)
    patrol = vehicle(1, 900, 200, Activity.PATROL)
    docked = vehicle(2, 2600, 0, Activity.DOCKED)
    decision = rank([docked, patrol], DispatchRequest(*scene, allow_preempt=False), airspace=space)
    assert decision.chosen is not None and decision.chosen.vehicle_id == 2


def test_low_battery_vehicle_is_never_chosen_even_when_closest():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(500, 0)
    weak = vehicle(1, 400, 0, Activity.DOCKED, battery=22.0)
    strong = vehicle(2, 3000, 0, Activity.DOCKED, battery=90.0)
    decision = rank([weak, strong], DispatchRequest(*scene, overhead_s=600), airspace=space)
    assert decision.chosen is not None and decision.chosen.vehicle_id == 2
    refused = decision.candidates[1]
    assert not refused.feasible and refused.reason.startswith("battery too low")
    assert refused.margin_wh < 0


def test_nobody_fit_explains_each_refusal():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(500, 0)
    weak = vehicle(1, 400, 0, Activity.DOCKED, battery=10.0)
    busy = vehicle(2, 300, 0, Activity.INCIDENT)
    nocam = vehicle(3, 300, 0, Activity.DOCKED)
    req = DispatchRequest(*scene, required_capabilities=frozenset({"speaker"}))
    decision = rank([weak, busy, nocam], req, airspace=space)
    assert decision.chosen is None
    assert "uav2: busy (incident)" in decision.explanation
    assert "uav3: lacks speaker" in decision.explanation


def test_route_goes_around_the_no_fly_zone_and_eta_reflects_the_detour():
    space = Airspace(FRAME, [hospital()], margin_m=30)
    free = Airspace(FRAME, [], margin_m=30)
    scene = latlon(1000, 0)
    docked = vehicle(1, -1000, 0, Activity.DOCKED)
    around = rank([docked], DispatchRequest(*scene), airspace=space).chosen
    straight = rank([docked], DispatchRequest(*scene), airspace=free).chosen
    assert around is not None and straight is not None
    assert around.route_m > straight.route_m + 50
    assert around.eta_s > straight.eta_s
    for a, b in zip(around.route_latlon[:-1], around.route_latlon[1:], strict=True):
        assert space.leg_violations(FRAME.point_to_local(*a), FRAME.point_to_local(*b)) == []


def test_scene_inside_a_no_fly_zone_is_refused_with_its_name():
    space = Airspace(FRAME, [hospital()], margin_m=30)
    decision = rank([vehicle(1, -1000, 0, Activity.DOCKED)], DispatchRequest(*latlon(0, 0)), airspace=space)
    assert decision.chosen is None
    assert "hospital" in decision.explanation


def test_headwind_slows_and_tailwind_speeds():
    assert ground_speed_m_s((0, 0), (100, 0), airspeed_m_s=12, wind=Wind(5, from_deg=90)) == pytest.approx(7)
    assert ground_speed_m_s((0, 0), (100, 0), airspeed_m_s=12, wind=Wind(5, from_deg=270)) == pytest.approx(
        17
    )
    cross = ground_speed_m_s((0, 0), (100, 0), airspeed_m_s=12, wind=Wind(5, from_deg=0))
    assert cross == pytest.approx(math.sqrt(144 - 25))
    assert ground_speed_m_s((0, 0), (100, 0), airspeed_m_s=5, wind=Wind(8, from_deg=0)) == 0.0


def test_wind_changes_which_vehicle_arrives_first():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(0, 0)
    west = vehicle(1, -1500, 0, Activity.DOCKED)
    east = vehicle(2, 1400, 0, Activity.DOCKED)
    calm = rank([west, east], DispatchRequest(*scene), airspace=space)
    assert calm.chosen is not None and calm.chosen.vehicle_id == 2
    # A strong west wind (blowing east): the east vehicle flies into it, the west one rides it.
    windy = rank([west, east], DispatchRequest(*scene), airspace=space, wind=Wind(8, from_deg=270))
    assert windy.chosen is not None and windy.chosen.vehicle_id == 1


def test_baseline_picks_the_nearest_dock_not_the_patrol():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(1500, 0)
    patrol = vehicle(1, 1400, 0, Activity.PATROL, home=(-2000, 0))
    docked = vehicle(2, 2600, 0, Activity.DOCKED)
    base = nearest_docked([patrol, docked], DispatchRequest(*scene), airspace=space)
    assert base is not None and base.vehicle_id == 2


def test_bad_request_is_a_planning_error():
    with pytest.raises(PlanningError, match="alt_m"):
        DispatchRequest(39.82, 109.98, alt_m=0)  # the band itself is the gate's (SKYWARDEN_MAX_ALT_M)
    with pytest.raises(PlanningError, match="overhead_s"):
        DispatchRequest(39.82, 109.98, overhead_s=-1)
    with pytest.raises(PlanningError, match="battery_wh"):
        Performance(battery_wh=0)


@settings(max_examples=40, deadline=None)
@given(st.floats(-3000, 3000), st.floats(-3000, 3000), st.floats(-3000, 3000), st.floats(-3000, 3000))
def test_routes_never_enter_a_no_fly_zone(x0, y0, x1, y1):
    zones = [hospital(), NoFlyZone("prison", FRAME.to_wgs84(Point(1500, 800).buffer(400)))]
    space = Airspace(FRAME, zones, margin_m=30)
    start, goal = (x0, y0), (x1, y1)
    if space.zone_at(start) or space.zone_at(goal):
        return
    try:
        route = space.route_xy(start, goal)
    except PlanningError:
        return
    end = route.points_xy[-1]
    assert route.length_m >= math.dist(start, end) - 1e-6
    # A goal inside a zone's margin (not the zone) is reached at the margin's edge.
    assert end == pytest.approx(goal) or space.in_margin(goal)
    for a, b in route.legs:
        if not (a == start and space.in_margin(start)):
            assert space.leg_violations(a, b) == []


def test_relief_arrives_before_the_first_drone_must_leave():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(800, 0)
    on_scene = vehicle(1, 800, 0, Activity.INCIDENT, battery=55.0, home=(-500, 0))
    reliefs = [vehicle(2, 2500, 0, Activity.DOCKED), vehicle(3, -2500, 900, Activity.DOCKED, battery=30.0)]
    leave = time_until_leave_s(on_scene, scene_lat=scene[0], scene_lon=scene[1], airspace=space)
    plan = plan_relief(
        on_scene,
        reliefs,
        scene_lat=scene[0],
        scene_lon=scene[1],
        remaining_overhead_s=3600,
        alt_m=60,
        airspace=space,
        margin_s=90,
    )
    assert plan.needs_relief and plan.relief is not None
    assert plan.leave_in_s == pytest.approx(leave)
    assert plan.arrive_in_s is not None and plan.arrive_in_s <= leave - 90 + 1e-6
    assert plan.launch_in_s is not None and plan.launch_in_s > 0


def test_no_relief_needed_when_one_battery_suffices():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(800, 0)
    on_scene = vehicle(1, 800, 0, Activity.INCIDENT, battery=95.0, home=(0, 0))
    plan = plan_relief(
        on_scene,
        [],
        scene_lat=scene[0],
        scene_lon=scene[1],
        remaining_overhead_s=120,
        alt_m=60,
        airspace=space,
    )
    assert not plan.needs_relief and plan.relief is None


def test_overwatch_longer_than_a_battery_starts_with_a_vehicle_that_can_stay_the_minimum():
    space = Airspace(FRAME, [], margin_m=30)
    scene = latlon(500, 0)
    full = vehicle(1, 0, 0, Activity.DOCKED, battery=100.0)
    long = DispatchRequest(*scene, overhead_s=4 * 3600)
    assert rank([full], long, airspace=space).chosen is None
    rotating = DispatchRequest(*scene, overhead_s=4 * 3600, min_overhead_s=300)
    chosen = rank([full], rotating, airspace=space).chosen
    assert chosen is not None and "a relief takes over" in chosen.reason
    assert chosen.margin_wh == pytest.approx(0.0, abs=1e-6)
    weak = vehicle(2, 0, 0, Activity.DOCKED, battery=25.0)
    assert rank([weak], rotating, airspace=space).chosen is None
    # An overwatch one full battery covers is never started on a half-empty one to be relieved later.
    half = vehicle(3, 0, 0, Activity.DOCKED, battery=60.0)  # could stay ~500 s, a full one ~1300 s
    short = DispatchRequest(*scene, overhead_s=1000, min_overhead_s=300)
    assert rank([full], short, airspace=space).chosen is not None
    refused = rank([half], short, airspace=space).candidates[0]
    assert not refused.feasible and refused.reason.startswith("battery too low")
