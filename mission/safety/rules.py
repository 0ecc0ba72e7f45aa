"""The safety rules on a 3-D path, as pure functions: airspace (bands and clearance), ceiling, energy.

No database and no vehicle here: ``mission.safety.gate`` gathers the restrictions, the vehicle and who is
asking, then calls ``path_refusals``. The plan preview (``mission.planning``) uses the same function, so a
plan shown as safe in the editor is judged by exactly the rules that later let it fly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shapely.geometry.base import BaseGeometry

from flightplans.energy import EnergyModel, RoutePoint
from flightplans.geodesy import LocalFrame
from flightplans.items import FenceShape
from flightplans.safety import NoFlyZone, Violation, check_plan

XY = tuple[float, float]

# Routes are planned this much wider than the clearance they are checked against, so a route that hugs a
# grown zone (its corners are chords of the true offset curve) never reads as too close.
ROUTE_SLACK = 1.02
ROUTE_SLACK_M = 1.0


def route_clearance_m(clearance_m: float) -> float:
    """The clearance routes are planned with for a check at ``clearance_m``."""
    return clearance_m * ROUTE_SLACK + ROUTE_SLACK_M


class Rule(StrEnum):
    """Which rule a refusal broke."""

    AIRSPACE = "airspace"
    ALTITUDE = "altitude"
    BATTERY = "battery"
    ENDURANCE = "endurance"
    WIND = "wind"
    AUTHORITY = "authority"
    VEHICLE = "vehicle"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One broken rule: a stable ``code`` (for translations), the message, and where it happens.

    ``kind`` is the finer name the plan preview has always used ("nofly", "too_high", "energy", ...).
    """

    rule: Rule
    code: str
    message: str
    kind: str = ""
    zone: str | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    leg: str | None = None  # "outbound", "segment", "point", "return"
    index: int | None = None
    figures: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The refusal as the API and the audit log show it (``kind`` and ``where`` as the preview has)."""
        where: dict[str, Any] = {}
        for key in ("lat", "lon", "alt_m", "leg", "index", "zone"):
            value = getattr(self, key)
            if value is not None:
                where[key] = round(value, 6) if isinstance(value, float) else value
        out: dict[str, Any] = {
            "kind": self.kind or self.rule.value,
            "rule": self.rule.value,
            "code": self.code,
            "message": self.message,
        }
        if where:
            out["where"] = where
        if self.figures:
            out["figures"] = {k: round(float(v), 2) for k, v in self.figures.items()}
        return out


@dataclass(frozen=True, slots=True)
class NoFly:
    """An airspace restriction as planning sees it: a lon/lat area between two heights above ground."""

    name: str
    geometry: BaseGeometry
    floor_m: float
    ceiling_m: float
    fence: FenceShape


@dataclass(frozen=True, slots=True)
class Battery:
    """What the energy rule needs of a vehicle: its pack, rated endurance and the charge now."""

    battery_wh: float
    endurance_s: float | None
    charge_pct: float | None  # None: unknown (the rule then refuses)
    cruise_speed_m_s: float = 10.0


def energy_model(
    battery: Battery,
    *,
    reserve_pct: float,
    speed_m_s: float,
    wind_east_m_s: float = 0.0,
    wind_north_m_s: float = 0.0,
) -> EnergyModel | None:
    """The vehicle's energy model at its charge now; None when the charge is unknown or at the reserve."""
    if battery.charge_pct is None:
        return None
    # Power from the registry's own figures: a full battery lasts the rated endurance.
    cruise_w = battery.battery_wh * 3600.0 / battery.endurance_s if battery.endurance_s else 200.0
    charge = max(0.0, min(100.0, battery.charge_pct))
    if charge <= reserve_pct:
        return None
    speed = max(0.5, speed_m_s)
    return EnergyModel(
        cruise_speed_m_s=speed,
        max_airspeed_m_s=max(15.0, speed),
        cruise_power_w=cruise_w,
        hover_power_w=cruise_w * 0.95,
        climb_power_w=cruise_w * 1.4,
        battery_wh=battery.battery_wh * charge / 100.0,
        # The reserve is a share of the full pack; re-express it as a share of what is left.
        reserve_pct=min(99.0, reserve_pct * 100.0 / charge),
        wind_east_m_s=wind_east_m_s,
        wind_north_m_s=wind_north_m_s,
    )


@dataclass(frozen=True, slots=True)
class PathLimits:
    """The limits a path is judged by."""

    clearance_m: float
    max_alt_m: float | None
    return_alt_m: float | None
    reserve_pct: float
    wind_east_m_s: float = 0.0
    wind_north_m_s: float = 0.0


def path_refusals(
    points: Sequence[RoutePoint],
    *,
    frame: LocalFrame,
    home: XY,
    zones: Sequence[NoFly],
    limits: PathLimits,
    battery: Battery | None,
    start: RoutePoint | None = None,
    returns_home: bool = True,
    speed_m_s: float | None = None,
) -> tuple[list[Refusal], float]:
    """Every rule the path breaks, and its flight time (s) including the way home when it returns.

    ``points`` are in ``frame`` metres at heights above home. Without ``start`` the flight begins on the
    ground at ``home`` (a launch); with it, the vehicle is already at ``start`` and the legs behind it are
    not judged. ``battery=None`` skips the energy rule (a plan previewed without a vehicle).
    """
    route = ([start] if start is not None else []) + list(points)
    local_zones = [
        NoFlyZone(polygon=frame.to_local(z.geometry), floor_m=z.floor_m, ceiling_m=z.ceiling_m, name=z.name)
        for z in zones
    ]
    found = check_plan(
        route,
        home=home,
        nofly=local_zones,
        clearance_m=limits.clearance_m,
        max_alt_m=limits.max_alt_m,
        return_home=returns_home,
        return_alt_m=limits.return_alt_m,
    )
    out = [
        _from_violation(v, frame)
        for v in found
        # Flown already: the climb and transit from home to where the vehicle is now.
        if not (start is not None and v.where.kind == "outbound")
    ]
    speed = speed_m_s or (battery.cruise_speed_m_s if battery is not None else 10.0)
    time_s = _flight_time_s(route, home=home, start=start, returns_home=returns_home, speed_m_s=speed)
    if battery is None:
        return out, time_s
    model = energy_model(
        battery,
        reserve_pct=limits.reserve_pct,
        speed_m_s=speed,
        wind_east_m_s=limits.wind_east_m_s,
        wind_north_m_s=limits.wind_north_m_s,
    )
    if battery.charge_pct is None:
        out.append(
            Refusal(
                Rule.VEHICLE,
                "battery.unknown",
                kind="energy",
                message="the vehicle reports no battery charge; nothing that flies is allowed until it does",
            )
        )
        return out, time_s
    if model is None:
        out.append(
            Refusal(
                Rule.BATTERY,
                "battery.reserve",
                kind="energy",
                message=f"battery {battery.charge_pct:.0f}% is at or below the"
                f" {limits.reserve_pct:g}% reserve",
                figures={"charge_pct": battery.charge_pct, "reserve_pct": limits.reserve_pct},
            )
        )
        return out, time_s
    est = model.estimate(
        points if start is not None else route,
        home=home,
        start=start,
        return_home=returns_home or route[-1].alt_m > 0,
        return_alt_m=limits.return_alt_m,
    )
    time_s = est.time_s
    if est.unflyable_leg is not None:
        wind = math.hypot(limits.wind_east_m_s, limits.wind_north_m_s)
        out.append(
            Refusal(
                Rule.WIND,
                "wind.unflyable",
                kind="wind",
                message=f"a leg cannot be flown against the {wind:.1f} m/s wind",
                figures={"wind_m_s": wind},
            )
        )
    elif est.needed_wh > est.usable_wh:
        out.append(
            Refusal(
                Rule.BATTERY,
                "battery.energy",
                kind="energy",
                message=f"the flight and the way home need {est.needed_wh:.1f} Wh, but only"
                f" {est.usable_wh:.1f} Wh of the battery at {battery.charge_pct:.0f}% are usable above the"
                f" {limits.reserve_pct:g}% reserve",
                figures={
                    "needed_wh": est.needed_wh,
                    "usable_wh": est.usable_wh,
                    "charge_pct": battery.charge_pct,
                    "reserve_pct": limits.reserve_pct,
                },
            )
        )
    if battery.endurance_s is not None and start is None and est.time_s > battery.endurance_s:
        out.append(
            Refusal(
                Rule.ENDURANCE,
                "battery.endurance",
                kind="endurance",
                message=f"the flight takes {est.time_s:.0f} s, over the vehicle's {battery.endurance_s:.0f} s"
                " endurance",
                figures={"time_s": est.time_s, "endurance_s": battery.endurance_s},
            )
        )
    return out, time_s


def _flight_time_s(
    route: list[RoutePoint], *, home: XY, start: RoutePoint | None, returns_home: bool, speed_m_s: float
) -> float:
    """A rough flight time without a battery model (cruise speed, 3 m/s vertical, loiters)."""
    here = start if start is not None else RoutePoint(home[0], home[1], 0.0)
    total = 0.0
    for p in route[1:] if start is not None else route:
        total += math.dist(here.xy, p.xy) / speed_m_s + abs(p.alt_m - here.alt_m) / 3.0 + p.loiter_s
        here = p
    if returns_home:
        total += math.dist(here.xy, home) / speed_m_s + here.alt_m / 2.0
    return total


_KIND_RULE = {
    "nofly": (Rule.AIRSPACE, "airspace.nofly"),
    "outside_area": (Rule.AIRSPACE, "airspace.outside"),
    "too_low": (Rule.ALTITUDE, "altitude.floor"),
    "too_high": (Rule.ALTITUDE, "altitude.ceiling"),
    "energy": (Rule.BATTERY, "battery.energy"),
    "wind": (Rule.WIND, "wind.unflyable"),
}


def _from_violation(v: Violation, frame: LocalFrame) -> Refusal:
    rule, code = _KIND_RULE[v.kind]
    lat, lon = frame.point_to_wgs84(*v.where.xy)
    return Refusal(
        rule,
        code,
        v.message.replace(_metres_at(v), f"at {lat:.5f}, {lon:.5f}"),
        kind=v.kind,
        zone=v.zone or None,
        lat=lat,
        lon=lon,
        alt_m=v.where.alt_m,
        leg=v.where.kind,
        index=v.where.index,
    )


def _metres_at(v: Violation) -> str:
    """The local-metres location text check_plan writes, replaced by lat/lon for people."""
    return f"at ({v.where.xy[0]:.1f}, {v.where.xy[1]:.1f}) m"


__all__ = [
    "Battery",
    "NoFly",
    "PathLimits",
    "Refusal",
    "Rule",
    "energy_model",
    "path_refusals",
    "route_clearance_m",
]
