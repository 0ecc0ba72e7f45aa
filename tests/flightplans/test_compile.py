"""compile_mission: metric plans to typed WGS84 mission items."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import box

from flightplans.compile import Actuate, Hold, Speed, compile_mission
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.items import ChangeSpeed, LoiterTime, ReturnToLaunch, SetActuator, Takeoff, Waypoint
from flightplans.patterns import perimeter
from flightplans.rings import rings

FRAME = LocalFrame(52.52, 13.405)


def test_perimeter_compiles_to_waypoints_that_land_back_on_the_plan() -> None:
    plan = perimeter(box(-200, -100, 200, 100), inset_m=20)
    items = compile_mission(plan, frame=FRAME, alt_m=45, speed_m_s=6)
    assert isinstance(items[0], Takeoff) and items[0].alt_m == 45
    assert items[1] == ChangeSpeed(6.0)
    assert isinstance(items[-1], ReturnToLaunch)
    waypoints = [i for i in items if isinstance(i, Waypoint)]
    assert len(waypoints) == len(plan.waypoints)
    for wp, (x, y) in zip(waypoints, plan.waypoints, strict=True):
        assert wp.alt_m == 45
        back = FRAME.point_to_local(wp.lat, wp.lon)
        assert math.dist(back, (x, y)) < 0.01


def test_actions_are_placed_after_their_waypoint_in_order() -> None:
    items = compile_mission(
        [(0, 0), (100, 0), (100, 100)],
        frame=FRAME,
        alt_m=30,
        actions=[Actuate(1, 3, 1.0), Hold(2, seconds=20, radius_m=15), Speed(1, 3.5), Actuate(2, 3, -1.0)],
        takeoff=False,
        rtl=False,
    )
    assert [i.kind for i in items] == [
        "waypoint",
        "waypoint",
        "set_actuator",
        "change_speed",
        "loiter_time",
        "set_actuator",
    ]
    assert items[2] == SetActuator(3, 1.0)
    assert items[3] == ChangeSpeed(3.5)
    loiter = items[4]
    assert isinstance(loiter, LoiterTime) and loiter.seconds == 20 and loiter.radius_m == 15
    assert items[5] == SetActuator(3, -1.0)


def test_plain_waypoint_lists_and_acceptance_radius() -> None:
    items = compile_mission([(0, 0), (10, 10)], frame=FRAME, alt_m=20, acceptance_m=2.5)
    assert all(i.acceptance_m == 2.5 for i in items if isinstance(i, Waypoint))


def test_a_rings_plan_must_be_compiled_per_drone() -> None:
    plan = rings((0, 0), radii_m=[100], drones=2, revisit_s=120)
    with pytest.raises(PlanningError, match=r"compile each of plan\.assignments"):
        compile_mission(plan, frame=FRAME, alt_m=40)
    items = compile_mission(plan.assignments[1], frame=FRAME, alt_m=40)
    assert sum(isinstance(i, Waypoint) for i in items) == len(plan.assignments[1].waypoints)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"alt_m": 0}, "alt_m must be positive"),
        ({"alt_m": math.nan}, "alt_m must be finite"),
        ({"speed_m_s": -1}, "speed_m_s must be positive"),
        ({"acceptance_m": 0}, "acceptance_m must be positive"),
        (
            {"actions": [Hold(5, seconds=3)]},
            r"actions\[0\] is at waypoint 5, but the plan has waypoints 0..1",
        ),
        ({"actions": [Actuate(0, 7, 1.0)]}, r"actions\[0\] actuator index must be 1..6, got 7"),
        ({"actions": [Actuate(0, 1, 2.0)]}, r"actions\[0\] actuator value must be within -1..1, got 2.0"),
        ({"actions": [Hold(0, seconds=0)]}, r"actions\[0\] seconds must be positive"),
        (
            {"actions": [Hold(0, seconds=1), Hold(0, seconds=2)]},
            r"actions\[1\]: waypoint 0 already has a Hold",
        ),
        ({"actions": ["siren"]}, r"actions\[0\] must be Actuate, Hold or Speed"),
        ({"frame": (52.0, 13.0)}, "frame must be a LocalFrame"),
        ({"actions": None}, "actions must be a list of Actuate/Hold/Speed, got NoneType"),
    ],
)
def test_bad_input_is_named(kwargs: dict, needle: str) -> None:
    args = {"frame": FRAME, "alt_m": 30} | kwargs
    with pytest.raises(PlanningError, match=needle):
        compile_mission([(0, 0), (50, 0)], **args)


def test_bad_waypoints_are_named() -> None:
    with pytest.raises(PlanningError, match="no waypoints"):
        compile_mission([], frame=FRAME, alt_m=30)
    with pytest.raises(PlanningError, match="waypoint 1: y must be finite"):
        compile_mission([(0, 0), (1, math.inf)], frame=FRAME, alt_m=30)
    with pytest.raises(PlanningError, match=r"waypoint 0 must be an \(x, y\) pair"):
        compile_mission([(0, 0, 0)], frame=FRAME, alt_m=30)
    with pytest.raises(PlanningError, match="expected a plan with waypoints"):
        compile_mission(42, frame=FRAME, alt_m=30)
