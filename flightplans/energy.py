"""Energy a multicopter needs for a route, with wind, the return home and a battery reserve.

Power is budgeted per flight phase (cruise, hover, climb): at patrol speeds a multicopter's power draw
barely changes with airspeed, so time in the air dominates and a headwind costs energy through the longer
flight time. Vertical and horizontal motion are budgeted one after the other (conservative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from flightplans.errors import PlanningError
from flightplans.validate import check_finite_point, check_positive

XY = tuple[float, float]

# Loiter circles smaller than this are flown as a hover.
_HOVER_RADIUS_M = 5.0


def _finite(name: str, value: object, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlanningError(
            f"{name} must be a finite number, got {value!r}",
            code="plan.energy.finite_number",
            params={"name": name, "value": repr(value)},
        )
    if minimum is not None and value < minimum:
        raise PlanningError(
            f"{name} must be >= {minimum:g}, got {value!r}",
            code="plan.energy.failed",
            params={"name": name, "minimum": f"{minimum:g}", "value": repr(value)},
        )
    return float(value)


def turn_points(xy: Sequence[XY], *, threshold_deg: float = 30.0) -> set[int]:
    """Indices of the points where the heading changes by more than ``threshold_deg`` (repeated points
    skipped: the heading is that of the next leg that moves).

    >>> sorted(turn_points([(0, 0), (100, 0), (100, 30), (0, 30), (0, 30), (-50, 30)]))
    [1, 2]
    """
    out: set[int] = set()
    heading: float | None = None
    last = 0
    for i in range(1, len(xy)):
        dx, dy = xy[i][0] - xy[i - 1][0], xy[i][1] - xy[i - 1][1]
        if math.hypot(dx, dy) < 1e-9:
            continue
        h = math.atan2(dy, dx)
        if heading is not None:
            change = abs((h - heading + math.pi) % (2 * math.pi) - math.pi)
            if change > math.radians(threshold_deg):
                out.add(last)
        heading, last = h, i
    return out


@dataclass(frozen=True, slots=True)
class RoutePoint:
    """A point of a route in metres: (x east, y north), altitude above home, and what happens there.

    ``loiter_s`` waits there, circling at ``loiter_radius_m`` (0 = hover); ``speed_m_s`` is the ground
    speed commanded for the leg that arrives here (None = the vehicle's cruise speed).
    """

    x: float
    y: float
    alt_m: float
    loiter_s: float = 0.0
    loiter_radius_m: float = 0.0
    speed_m_s: float | None = None

    def __post_init__(self) -> None:
        check_finite_point("route point", self.x, self.y)
        _finite("alt_m", self.alt_m)
        _finite("loiter_s", self.loiter_s, minimum=0.0)
        _finite("loiter_radius_m", self.loiter_radius_m, minimum=0.0)
        if self.speed_m_s is not None:
            check_positive("speed_m_s", self.speed_m_s)

    @property
    def xy(self) -> XY:
        """(x, y) metres."""
        return (self.x, self.y)


@dataclass(frozen=True, slots=True)
class LegEnergy:
    """Time and energy of one leg (or loiter)."""

    time_s: float
    energy_wh: float


@dataclass(frozen=True, slots=True)
class EnergyEstimate:
    """Energy for a route: ``needed_wh`` includes the flight home and landing; ``usable_wh`` excludes the
    reserve. ``first_unsafe_index`` is the first route point from which flying home would eat into the
    reserve (None when the whole plan is within budget); ``unflyable_leg`` is the first leg (index of its
    end point, len(points) = the return leg) the wind does not let the vehicle fly.
    """

    flight_wh: float
    return_wh: float
    needed_wh: float
    battery_wh: float
    reserve_wh: float
    usable_wh: float
    time_s: float
    first_unsafe_index: int | None
    unflyable_leg: int | None

    @property
    def margin_wh(self) -> float:
        """Usable energy left over after the plan and the return (negative: short)."""
        return self.usable_wh - self.needed_wh

    @property
    def feasible(self) -> bool:
        """Whether the plan and the return home fit in the battery above the reserve."""
        return self.unflyable_leg is None and self.needed_wh <= self.usable_wh


@dataclass(frozen=True, slots=True)
class EnergyModel:
    """A multicopter's power per phase, speeds, battery and reserve, and the wind it flies in.

    ``wind_east_m_s`` / ``wind_north_m_s`` are where the air moves TO (a west wind is +east).

    >>> model = EnergyModel(cruise_power_w=360, battery_wh=100, reserve_pct=20)
    >>> est = model.estimate([RoutePoint(600, 0, 0)], home=(0, 0))
    >>> round(est.time_s), round(est.needed_wh, 1), est.feasible
    (120, 12.0, True)
    """

    cruise_speed_m_s: float = 10.0
    max_airspeed_m_s: float = 15.0
    climb_rate_m_s: float = 3.0
    descent_rate_m_s: float = 2.0
    cruise_power_w: float = 420.0
    hover_power_w: float = 380.0
    climb_power_w: float = 560.0
    battery_wh: float = 180.0
    reserve_pct: float = 20.0
    wind_east_m_s: float = 0.0
    wind_north_m_s: float = 0.0
    # A multicopter slows down for a sharp heading change and speeds up again: ``turn_s`` extra seconds at
    # hover power for each change above ``turn_threshold_deg`` (0 = turns cost nothing, as before).
    turn_s: float = 0.0
    turn_threshold_deg: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "cruise_speed_m_s",
            "max_airspeed_m_s",
            "climb_rate_m_s",
            "descent_rate_m_s",
            "cruise_power_w",
            "hover_power_w",
            "climb_power_w",
            "battery_wh",
        ):
            check_positive(name, getattr(self, name))
        _finite("turn_s", self.turn_s, minimum=0.0)
        threshold = _finite("turn_threshold_deg", self.turn_threshold_deg, minimum=0.0)
        if threshold >= 180:
            raise PlanningError(
                f"turn_threshold_deg must be below 180, got {threshold!r}",
                code="plan.energy.turn_threshold_deg_below",
                params={"threshold": repr(threshold)},
            )
        reserve = _finite("reserve_pct", self.reserve_pct, minimum=0.0)
        if reserve >= 100:
            raise PlanningError(
                f"reserve_pct must be below 100, got {reserve!r}",
                code="plan.energy.reserve_pct_below",
                params={"reserve": repr(reserve)},
            )
        check_finite_point("wind", self.wind_east_m_s, self.wind_north_m_s)
        if self.cruise_speed_m_s > self.max_airspeed_m_s:
            raise PlanningError(
                f"cruise_speed_m_s {self.cruise_speed_m_s:g} exceeds "
                f"max_airspeed_m_s {self.max_airspeed_m_s:g}",
                code="plan.energy.cruise_speed_m_s",
                params={
                    "cruise_speed_m_s": f"{self.cruise_speed_m_s:g}",
                    "max_airspeed_m_s": f"{self.max_airspeed_m_s:g}",
                },
            )

    @property
    def reserve_wh(self) -> float:
        """Energy that must remain on landing."""
        return self.battery_wh * self.reserve_pct / 100.0

    @property
    def usable_wh(self) -> float:
        """Battery energy above the reserve."""
        return self.battery_wh - self.reserve_wh

    def ground_speed_m_s(self, a: XY, b: XY, *, speed_m_s: float | None = None) -> float:
        """Ground speed along a -> b: the commanded speed, or less when the wind needs more than the
        maximum airspeed to hold it; 0 when the wind does not let the vehicle make way at all."""
        target = self.cruise_speed_m_s if speed_m_s is None else speed_m_s
        dx, dy = b[0] - a[0], b[1] - a[1]
        length = math.hypot(dx, dy)
        if length == 0:
            return target
        ux, uy = dx / length, dy / length
        wx, wy = self.wind_east_m_s, self.wind_north_m_s
        # Air-relative velocity needed to hold ``target`` over the ground along the track.
        if math.hypot(target * ux - wx, target * uy - wy) <= self.max_airspeed_m_s:
            return target
        along = wx * ux + wy * uy
        cross_sq = wx * wx + wy * wy - along * along
        if cross_sq >= self.max_airspeed_m_s**2:
            return 0.0
        return max(0.0, along + math.sqrt(self.max_airspeed_m_s**2 - cross_sq))

    def leg(self, a: RoutePoint, b: RoutePoint) -> LegEnergy:
        """Flying a -> b: climb or descend, then cruise; inf when the wind makes the leg unflyable."""
        dist = math.dist(a.xy, b.xy)
        time_s = energy_j = 0.0
        if dist > 0:
            gs = self.ground_speed_m_s(a.xy, b.xy, speed_m_s=b.speed_m_s)
            if gs < 0.1:
                return LegEnergy(math.inf, math.inf)
            time_s += dist / gs
            energy_j += self.cruise_power_w * dist / gs
        vertical = self.vertical(b.alt_m - a.alt_m)
        return LegEnergy(time_s + vertical.time_s, energy_j / 3600.0 + vertical.energy_wh)

    def vertical(self, height_m: float) -> LegEnergy:
        """Climbing ``height_m`` (negative: descending)."""
        if height_m >= 0:
            t = height_m / self.climb_rate_m_s
            return LegEnergy(t, self.climb_power_w * t / 3600.0)
        t = -height_m / self.descent_rate_m_s
        return LegEnergy(t, self.hover_power_w * t / 3600.0)

    def loiter(self, seconds: float, *, radius_m: float = 0.0) -> LegEnergy:
        """Waiting ``seconds``: hovering, or circling at cruise power when the circle is large."""
        power = self.hover_power_w if radius_m < _HOVER_RADIUS_M else self.cruise_power_w
        return LegEnergy(seconds, power * seconds / 3600.0)

    def estimate(
        self,
        points: Sequence[RoutePoint],
        *,
        home: XY,
        start: RoutePoint | None = None,
        return_home: bool = True,
        return_alt_m: float | None = None,
    ) -> EnergyEstimate:
        """Energy for flying ``points`` from ``start`` (default: on the ground at home), then home and down.

        The return climbs to ``return_alt_m`` first if that is higher (as PX4's RTL does), flies home at
        the cruise speed and lands. With ``return_home=False`` the route is assumed to end on the ground.
        """
        hx, hy = check_finite_point("home", *home)
        here = start if start is not None else RoutePoint(hx, hy, 0.0)
        spent_wh = time_s = 0.0
        first_unsafe: int | None = None
        unflyable: int | None = None
        usable = self.usable_wh
        turns = turn_points([here.xy, *(p.xy for p in points)], threshold_deg=self.turn_threshold_deg)
        turn = self.loiter(self.turn_s)  # slowing down and speeding up again, about hover power
        for i, point in enumerate(points):
            leg = self.leg(here, point)
            if math.isinf(leg.energy_wh) and unflyable is None:
                unflyable = i
            wait = self.loiter(point.loiter_s, radius_m=point.loiter_radius_m)
            spent_wh += leg.energy_wh + wait.energy_wh
            time_s += leg.time_s + wait.time_s
            if i + 1 in turns:  # the heading changes at this point
                spent_wh += turn.energy_wh
                time_s += turn.time_s
            here = point
            if (
                first_unsafe is None
                and spent_wh + self._home_leg(here, hx, hy, return_alt_m).energy_wh > usable
            ):
                first_unsafe = i
        back = self._home_leg(here, hx, hy, return_alt_m) if return_home else self.vertical(-here.alt_m)
        if math.isinf(back.energy_wh) and unflyable is None:
            unflyable = len(points)
        return EnergyEstimate(
            flight_wh=spent_wh,
            return_wh=back.energy_wh,
            needed_wh=spent_wh + back.energy_wh,
            battery_wh=self.battery_wh,
            reserve_wh=self.reserve_wh,
            usable_wh=usable,
            time_s=time_s + back.time_s,
            first_unsafe_index=first_unsafe,
            unflyable_leg=unflyable,
        )

    def _home_leg(self, here: RoutePoint, hx: float, hy: float, return_alt_m: float | None) -> LegEnergy:
        alt = here.alt_m if return_alt_m is None else max(here.alt_m, return_alt_m)
        up = self.vertical(alt - here.alt_m)
        cruise = self.leg(RoutePoint(here.x, here.y, alt), RoutePoint(hx, hy, alt))
        down = self.vertical(-alt)
        return LegEnergy(
            up.time_s + cruise.time_s + down.time_s, up.energy_wh + cruise.energy_wh + down.energy_wh
        )
