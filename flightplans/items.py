"""Typed mission items and geofences: what a plan compiles to and what the link layer uploads.

All positions are WGS84 degrees; altitudes are metres above the home/takeoff point (relative), as
PX4 missions use them. Items are frozen: a compiled mission cannot be changed on its way to a vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Takeoff:
    """NAV_TAKEOFF (22): climb to ``alt_m`` above home."""

    alt_m: float
    kind: Literal["takeoff"] = "takeoff"


@dataclass(frozen=True, slots=True)
class Waypoint:
    """NAV_WAYPOINT (16). ``hold_s`` waits at the point; ``acceptance_m`` overrides PX4's radius."""

    lat: float
    lon: float
    alt_m: float
    hold_s: float = 0.0
    acceptance_m: float | None = None
    kind: Literal["waypoint"] = "waypoint"


@dataclass(frozen=True, slots=True)
class LoiterTime:
    """NAV_LOITER_TIME (19): circle/hold at a point for ``seconds`` (radius 0 = hover in place)."""

    lat: float
    lon: float
    alt_m: float
    seconds: float
    radius_m: float = 0.0
    kind: Literal["loiter_time"] = "loiter_time"


@dataclass(frozen=True, slots=True)
class ChangeSpeed:
    """DO_CHANGE_SPEED (178): ground speed for the following legs."""

    speed_m_s: float
    kind: Literal["change_speed"] = "change_speed"


@dataclass(frozen=True, slots=True)
class SetActuator:
    """DO_SET_ACTUATOR (187): payload output ``index`` (1..6, PX4 "Actuator Set N") to ``value`` in -1..1.

    Speakers, spotlights and sirens are mapped to actuator outputs per vehicle configuration.
    """

    index: int
    value: float
    kind: Literal["set_actuator"] = "set_actuator"


@dataclass(frozen=True, slots=True)
class Land:
    """NAV_LAND (21) at a point."""

    lat: float
    lon: float
    kind: Literal["land"] = "land"


@dataclass(frozen=True, slots=True)
class ReturnToLaunch:
    """NAV_RETURN_TO_LAUNCH (20)."""

    kind: Literal["return"] = "return"


MissionItem = Takeoff | Waypoint | LoiterTime | ChangeSpeed | SetActuator | Land | ReturnToLaunch


@dataclass(frozen=True, slots=True)
class FencePolygon:
    """A geofence polygon, ``points`` as (lat, lon); inclusion = stay inside, exclusion = stay out."""

    points: tuple[tuple[float, float], ...]
    inclusion: bool
    kind: Literal["polygon"] = "polygon"


@dataclass(frozen=True, slots=True)
class FenceCircle:
    """A circular geofence around (lat, lon)."""

    lat: float
    lon: float
    radius_m: float
    inclusion: bool
    kind: Literal["circle"] = "circle"


FenceShape = FencePolygon | FenceCircle


@dataclass(frozen=True, slots=True)
class Geofence:
    """What goes to a vehicle with its mission: operating area (inclusion) and no-fly zones (exclusion)."""

    shapes: tuple[FenceShape, ...]


@dataclass(frozen=True, slots=True)
class RallyPoint:
    """A safe point (MAVLink rally item, mission_type 2) the vehicle may return to instead of home."""

    lat: float
    lon: float
    alt_m: float
    kind: Literal["rally"] = "rally"
