"""Energy model: phases, wind, the return home and the reserve."""

from __future__ import annotations

import math

import pytest

from flightplans.energy import EnergyModel, RoutePoint
from flightplans.errors import PlanningError

CALM = EnergyModel(
    cruise_speed_m_s=10,
    max_airspeed_m_s=15,
    climb_rate_m_s=2,
    descent_rate_m_s=4,
    cruise_power_w=360,
    hover_power_w=300,
    climb_power_w=480,
    battery_wh=100,
    reserve_pct=25,
)


def test_golden_out_and_back_with_climb_loiter_and_landing() -> None:
    # Climb 40 m (20 s at 480 W), fly 1000 m (100 s at 360 W), hover 60 s (300 W),
    # return 1000 m (100 s), descend 40 m (10 s at 300 W).
    route = [RoutePoint(0, 0, 40), RoutePoint(1000, 0, 40, loiter_s=60)]
    est = CALM.estimate(route, home=(0, 0))
    flight_wh = (480 * 20 + 360 * 100 + 300 * 60) / 3600
    return_wh = (360 * 100 + 300 * 10) / 3600
    assert est.flight_wh == pytest.approx(flight_wh)
    assert est.return_wh == pytest.approx(return_wh)
    assert est.needed_wh == pytest.approx(flight_wh + return_wh)
    assert est.time_s == pytest.approx(20 + 100 + 60 + 100 + 10)
    assert est.reserve_wh == 25 and est.usable_wh == 75
    assert est.feasible and est.margin_wh == pytest.approx(75 - flight_wh - return_wh)
    assert est.first_unsafe_index is None


def test_wind_head_tail_and_cross() -> None:
    windy = EnergyModel(cruise_speed_m_s=10, max_airspeed_m_s=12, wind_east_m_s=6)
    # Tailwind: the commanded 10 m/s needs only 4 m/s of airspeed.
    assert windy.ground_speed_m_s((0, 0), (100, 0)) == pytest.approx(10)
    # Headwind: 16 m/s airspeed would be needed; at the 12 m/s limit the vehicle makes 6 m/s.
    assert windy.ground_speed_m_s((100, 0), (0, 0)) == pytest.approx(6)
    # Crosswind: sqrt(12^2 - 6^2) over the ground.
    assert windy.ground_speed_m_s((0, 0), (0, 100)) == pytest.approx(10)  # sqrt(136) < 12: holds 10
    strong = EnergyModel(cruise_speed_m_s=10, max_airspeed_m_s=12, wind_north_m_s=-11)
    assert strong.ground_speed_m_s((0, 0), (100, 0)) == pytest.approx(math.sqrt(144 - 121))
    # Headwind energy is higher than tailwind energy for the same leg.
    out = windy.leg(RoutePoint(0, 0, 30), RoutePoint(1000, 0, 30))
    back = windy.leg(RoutePoint(1000, 0, 30), RoutePoint(0, 0, 30))
    assert back.energy_wh > out.energy_wh and back.time_s == pytest.approx(1000 / 6)


def test_wind_stronger_than_the_vehicle_makes_the_leg_unflyable() -> None:
    gale = EnergyModel(cruise_speed_m_s=10, max_airspeed_m_s=12, wind_east_m_s=-14)
    est = gale.estimate([RoutePoint(0, 0, 30), RoutePoint(500, 0, 30)], home=(0, 0))
    assert est.unflyable_leg == 1 and not est.feasible
    assert math.isinf(est.needed_wh)


def test_the_reserve_is_crossed_where_the_route_says() -> None:
    small = EnergyModel(cruise_speed_m_s=10, cruise_power_w=360, battery_wh=10, reserve_pct=20)
    # 8 Wh usable = 80 s of cruise. Out along x: home leg grows, spent grows.
    route = [RoutePoint(100.0 * i, 0, 0) for i in range(1, 8)]
    est = small.estimate(route, home=(0, 0))
    # At point i (x = 100 i): spent 10 i s + back 10 i s = 20 i s; over 80 s from i = 5 on.
    assert est.first_unsafe_index == 4
    assert not est.feasible
    assert est.needed_wh == pytest.approx(2 * 700 / 10 * 360 / 3600)


def test_return_altitude_is_climbed_first() -> None:
    route = [RoutePoint(0, 0, 30)]
    low = CALM.estimate(route, home=(0, 0))
    high = CALM.estimate(route, home=(0, 0), return_alt_m=60)
    assert high.return_wh - low.return_wh == pytest.approx((480 * 15 + 300 * 7.5) / 3600)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"battery_wh": 0}, "battery_wh must be positive"),
        ({"reserve_pct": 100}, "reserve_pct must be below 100"),
        ({"reserve_pct": -1}, "reserve_pct must be >= 0"),
        ({"cruise_power_w": math.nan}, "cruise_power_w must be finite"),
        ({"wind_east_m_s": math.inf}, "wind: x must be finite"),
        ({"cruise_speed_m_s": 20, "max_airspeed_m_s": 15}, "cruise_speed_m_s 20 exceeds max_airspeed_m_s 15"),
    ],
)
def test_bad_models_are_named(kwargs: dict, needle: str) -> None:
    with pytest.raises(PlanningError, match=needle):
        EnergyModel(**kwargs)


def test_bad_route_points_are_named() -> None:
    with pytest.raises(PlanningError, match="route point: x must be finite"):
        RoutePoint(math.nan, 0, 10)
    with pytest.raises(PlanningError, match="loiter_s must be >= 0"):
        RoutePoint(0, 0, 10, loiter_s=-1)
    with pytest.raises(PlanningError, match="alt_m must be a finite number"):
        RoutePoint(0, 0, math.inf)
    with pytest.raises(PlanningError, match="speed_m_s must be positive"):
        RoutePoint(0, 0, 10, speed_m_s=0)


def test_turns_cost_time_and_hover_energy_only_when_asked() -> None:
    # a 100 x 30 m lawnmower leg pair: turns at (100, 0) and (100, 30); the start and end are no turns
    route = [RoutePoint(100, 0, 0), RoutePoint(100, 30, 0), RoutePoint(0, 30, 0)]
    start = RoutePoint(0, 0, 0)
    plain = CALM.estimate(route, home=(0, 0), start=start, return_home=False)
    assert plain.time_s == pytest.approx(23.0)  # 230 m at 10 m/s: turns are free by default
    slowing = EnergyModel(**{**_fields(CALM), "turn_s": 3.0})
    est = slowing.estimate(route, home=(0, 0), start=start, return_home=False)
    assert est.time_s == pytest.approx(23.0 + 2 * 3.0)
    assert est.flight_wh == pytest.approx(plain.flight_wh + 2 * 3.0 * 300 / 3600)  # at hover power


def test_a_gentle_bend_is_no_turn() -> None:
    bent = [RoutePoint(100, 0, 0), RoutePoint(200, 40, 0)]  # 22 degrees
    model = EnergyModel(**{**_fields(CALM), "turn_s": 3.0})
    est = model.estimate(bent, home=(0, 0), start=RoutePoint(0, 0, 0), return_home=False)
    assert est.time_s == pytest.approx((100 + math.hypot(100, 40)) / 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"turn_s": -1.0}, r"turn_s must be >= 0"), ({"turn_threshold_deg": 180.0}, r"below 180")],
)
def test_bad_turn_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        EnergyModel(**kwargs)


def _fields(model: EnergyModel) -> dict:
    return {name: getattr(model, name) for name in model.__dataclass_fields__}
