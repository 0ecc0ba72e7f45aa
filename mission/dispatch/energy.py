"""Flight time and energy of a multicopter along a route, with wind.

Power is modelled per flight phase (cruise, hover, climb), which is how multicopter endurance is usually
budgeted: at patrol speeds the power draw barely changes with airspeed, so time in the air dominates and a
headwind costs energy through the longer flight time.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from flightplans.errors import PlanningError

XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Wind:
    """Wind ``speed_m_s`` blowing FROM ``from_deg`` (meteorological convention, clockwise from north)."""

    speed_m_s: float = 0.0
    from_deg: float = 0.0

    def vector(self) -> XY:
        """(east, north) m/s the air moves toward."""
        to_rad = math.radians(self.from_deg + 180.0)
        return self.speed_m_s * math.sin(to_rad), self.speed_m_s * math.cos(to_rad)


CALM = Wind()


@dataclass(frozen=True, slots=True)
class Performance:
    """What a vehicle can do: speeds, power per phase, battery size and the reserve it lands with."""

    cruise_speed_m_s: float = 12.0
    climb_rate_m_s: float = 3.0
    descent_rate_m_s: float = 2.0
    takeoff_s: float = 6.0  # arm, spin-up and lift-off before the climb
    cruise_power_w: float = 420.0
    hover_power_w: float = 380.0
    climb_power_w: float = 560.0
    battery_wh: float = 180.0
    reserve_pct: float = 20.0

    def __post_init__(self) -> None:
        for name in ("cruise_speed_m_s", "climb_rate_m_s", "descent_rate_m_s", "battery_wh"):
            if not getattr(self, name) > 0:
                raise PlanningError(
                    f"{name} must be positive, got {getattr(self, name)!r}",
                    code="dispatch.positive",
                    params={"name": name, "getattr": repr(getattr(self, name))},
                )
        if not 0 <= self.reserve_pct < 100:
            raise PlanningError(
                f"reserve_pct must be within 0..100, got {self.reserve_pct!r}",
                code="dispatch.reserve_pct_within",
                params={"reserve_pct": repr(self.reserve_pct)},
            )

    @property
    def reserve_wh(self) -> float:
        """Energy that must remain on landing."""
        return self.battery_wh * self.reserve_pct / 100.0

    def hover_s_for(self, energy_wh: float) -> float:
        """How long ``energy_wh`` keeps the vehicle hovering."""
        return max(0.0, energy_wh) * 3600.0 / self.hover_power_w


def ground_speed_m_s(a: XY, b: XY, *, airspeed_m_s: float, wind: Wind) -> float:
    """Ground speed along the track a -> b holding ``airspeed_m_s`` in ``wind``; 0 if the wind wins."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    if length == 0:
        return airspeed_m_s
    ux, uy = dx / length, dy / length
    wx, wy = wind.vector()
    along = wx * ux + wy * uy
    cross_sq = (wx * wx + wy * wy) - along * along
    if cross_sq >= airspeed_m_s**2:
        return 0.0
    return max(0.0, along + math.sqrt(airspeed_m_s**2 - cross_sq))


@dataclass(frozen=True, slots=True)
class Leg:
    """Time and energy of one flight phase."""

    time_s: float
    energy_wh: float


def cruise(points_xy: tuple[XY, ...], perf: Performance, *, wind: Wind = CALM) -> Leg:
    """Time and energy to fly through ``points_xy`` at cruise airspeed; inf when a leg is not flyable."""
    time_s = 0.0
    for a, b in itertools.pairwise(points_xy):
        dist = math.dist(a, b)
        if dist == 0:
            continue
        gs = ground_speed_m_s(a, b, airspeed_m_s=perf.cruise_speed_m_s, wind=wind)
        if gs <= 0.1:
            return Leg(math.inf, math.inf)
        time_s += dist / gs
    return Leg(time_s, perf.cruise_power_w * time_s / 3600.0)


def climb(height_m: float, perf: Performance) -> Leg:
    """Climbing ``height_m`` (negative: descending)."""
    if height_m >= 0:
        t = height_m / perf.climb_rate_m_s
        return Leg(t, perf.climb_power_w * t / 3600.0)
    t = -height_m / perf.descent_rate_m_s
    return Leg(t, perf.hover_power_w * t / 3600.0)


def hover(seconds: float, perf: Performance) -> Leg:
    """Hovering or orbiting slowly for ``seconds``."""
    return Leg(seconds, perf.hover_power_w * seconds / 3600.0)
