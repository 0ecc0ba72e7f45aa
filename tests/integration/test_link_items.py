"""Typed mission items <-> MISSION_ITEM_INT (mission.link.mission_items): what goes on the wire, and back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightplans.items import ChangeSpeed, Land, LoiterTime, ReturnToLaunch, SetActuator, Takeoff, Waypoint
from mission.link.mission_items import (
    RawMissionItem,
    check_items,
    from_mavlink,
    to_mavlink,
    unsupported_suspects,
)

LAT, LON = 39.82, 109.98


def test_each_item_encodes_as_px4_expects() -> None:
    items = [
        Takeoff(alt_m=25),
        Waypoint(lat=LAT, lon=LON, alt_m=30, hold_s=5, acceptance_m=2),
        LoiterTime(lat=LAT, lon=LON, alt_m=30, seconds=60, radius_m=15),
        ChangeSpeed(speed_m_s=7),
        SetActuator(index=3, value=-0.5),
        Land(lat=LAT, lon=LON),
        ReturnToLaunch(),
    ]
    wire = to_mavlink(items, takeoff_at=(LAT, LON))
    assert [m.seq for m in wire] == list(range(7))
    assert [m.command for m in wire] == [22, 16, 19, 178, 187, 21, 20]
    assert [m.frame for m in wire] == [6, 6, 6, 2, 2, 6, 2]
    takeoff, wp, loiter, speed, actuator, land, _ = wire
    assert (takeoff.x, takeoff.y, takeoff.z) == (398200000, 1099800000, 25)  # climbs where it stands
    assert (wp.param1, wp.param2, wp.x, wp.y, wp.z) == (5, 2, 398200000, 1099800000, 30)
    assert (loiter.param1, loiter.param3) == (60, 15)
    assert (speed.param1, speed.param2, speed.param3) == (1, 7, -1)  # ground speed, throttle unchanged
    params = (actuator.param1, actuator.param2, actuator.param3, actuator.param4)
    assert params[2] == -0.5 and all(math.isnan(p) for i, p in enumerate(params) if i != 2)
    assert (land.x, land.y) == (398200000, 1099800000)


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (Waypoint(lat=95, lon=LON, alt_m=10), "item 1 (waypoint): latitude must be in -90..90, got 95"),
        (Waypoint(lat=0, lon=0, alt_m=10), "item 1 (waypoint): position is (0, 0)"),
        (Waypoint(lat=LAT, lon=LON, alt_m=math.nan), "item 1 (waypoint): altitude must be a finite number"),
        (Waypoint(lat=LAT, lon=LON, alt_m=10, hold_s=-1), "item 1 (waypoint): hold_s must be >= 0, got -1"),
        (SetActuator(index=0, value=1), "item 1 (set_actuator): actuator index must be 1..6, got 0"),
        (
            SetActuator(index=5, value=1),
            "item 1 (set_actuator): actuator 5 cannot be set from a mission item",
        ),
        (SetActuator(index=1, value=2), "item 1 (set_actuator): actuator value must be in -1..1, got 2"),
        (ChangeSpeed(speed_m_s=0), "item 1 (change_speed): speed_m_s must be in (0, 100], got 0"),
        (LoiterTime(lat=LAT, lon=LON, alt_m=10, seconds=-5), "item 1 (loiter_time): seconds must be >= 0"),
    ],
)
def test_bad_typed_items_are_named(item: object, problem: str) -> None:
    with pytest.raises(ValueError) as err:
        check_items([Takeoff(alt_m=10), item])  # type: ignore[list-item]
    assert str(err.value).startswith(problem)
    with pytest.raises(ValueError):
        to_mavlink([Takeoff(alt_m=10), item], takeoff_at=None)  # type: ignore[list-item]


def test_an_empty_mission_and_a_takeoff_below_home_are_refused() -> None:
    with pytest.raises(ValueError, match="the mission has no items"):
        check_items([])
    with pytest.raises(ValueError, match=r"item 0 \(takeoff\): altitude must be above home"):
        check_items([Takeoff(alt_m=0)])


def test_raw_items_pass_through_and_are_the_suspects_of_a_refusal() -> None:
    relay = RawMissionItem(command=181, param1=0, param2=1)
    delay = RawMissionItem(command=93, param1=4, x=LAT, y=LON, z=5, frame=6)
    items = [Takeoff(alt_m=10), delay, relay]
    check_items(items)  # the vehicle decides about raw items
    wire = to_mavlink(items, takeoff_at=None)
    assert (wire[1].command, wire[1].x, wire[1].y, wire[1].frame) == (93, 398200000, 1099800000, 6)
    assert (wire[2].command, wire[2].param2, wire[2].frame) == (181, 1, 2)
    assert from_mavlink(wire)[1:] == [delay, relay]
    assert unsupported_suspects(items) == ["item 2 (DO_SET_RELAY, command 181)"]
    assert unsupported_suspects([Takeoff(alt_m=10), delay]) == ["item 1 (NAV_DELAY, command 93)"]


coords = st.tuples(st.floats(-80, 80), st.floats(-179, 179)).filter(lambda p: abs(p[0]) + abs(p[1]) > 1e-3)
alts = st.floats(1, 500)
typed_item = st.one_of(
    st.builds(
        lambda p, a, h: Waypoint(lat=p[0], lon=p[1], alt_m=a, hold_s=h), coords, alts, st.floats(0, 600)
    ),
    st.builds(
        lambda p, a, s: LoiterTime(lat=p[0], lon=p[1], alt_m=a, seconds=s), coords, alts, st.floats(0, 600)
    ),
    st.builds(lambda s: ChangeSpeed(speed_m_s=s), st.floats(0.5, 30)),
    st.builds(lambda i, v: SetActuator(index=i, value=v), st.integers(1, 4), st.floats(-1, 1)),
    st.builds(lambda p: Land(lat=p[0], lon=p[1]), coords),
    st.just(ReturnToLaunch()),
)


@given(st.builds(lambda a: Takeoff(alt_m=a), alts), st.lists(typed_item, min_size=1, max_size=12))
def test_typed_missions_survive_the_round_trip(takeoff: Takeoff, rest: list[object]) -> None:
    items = [takeoff, *rest]
    back = from_mavlink(to_mavlink(items, takeoff_at=(LAT, LON)))  # type: ignore[arg-type]
    assert [type(b) for b in back] == [type(i) for i in items]
    for sent, got in zip(items, back, strict=True):
        for name in ("lat", "lon"):
            if hasattr(sent, name):
                assert getattr(got, name) == pytest.approx(getattr(sent, name), abs=1e-7)  # degE7 on the wire
        for name in ("alt_m", "hold_s", "seconds", "speed_m_s", "value", "index"):
            if hasattr(sent, name):
                assert getattr(got, name) == pytest.approx(getattr(sent, name), rel=1e-6, abs=1e-4)  # float32
