"""Public records of a simulated vehicle: flight modes, its state snapshot and payload events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# PX4 custom modes: name -> (main mode, sub mode)
PX4_MODES: dict[str, tuple[int, int]] = {
    "manual": (1, 0),
    "altctl": (2, 0),
    "posctl": (3, 0),
    "orbit": (3, 1),
    "ready": (4, 1),
    "takeoff": (4, 2),
    "hold": (4, 3),
    "mission": (4, 4),
    "return": (4, 5),
    "land": (4, 6),
    "offboard": (6, 0),
}
MODE_BY_MAIN_SUB: dict[tuple[int, int], str] = {v: k for k, v in PX4_MODES.items()}


def px4_custom_mode(mode: str) -> int:
    """The HEARTBEAT custom_mode of a PX4 mode name."""
    main, sub = PX4_MODES[mode]
    return (main << 16) | (sub << 24)


# MAV_LANDED_STATE
LANDED_ON_GROUND = 1
LANDED_IN_AIR = 2
LANDED_TAKEOFF = 3
LANDED_LANDING = 4
LANDED_STATE_NAMES = {
    LANDED_ON_GROUND: "on_ground",
    LANDED_IN_AIR: "in_air",
    LANDED_TAKEOFF: "takeoff",
    LANDED_LANDING: "landing",
}


@dataclass(frozen=True, slots=True)
class VehicleState:
    """A frozen snapshot of one vehicle, read by tests and tools (never sent over the link)."""

    lat: float
    lon: float
    alt_rel_m: float
    alt_amsl_m: float
    heading_deg: float
    ground_speed_m_s: float
    climb_m_s: float
    mode: str
    armed: bool
    landed_state: str
    battery_pct: float
    battery_wh_left: float
    battery_voltage_v: float
    mission_seq: int
    mission_count: int
    mission_state: str
    gps_ok: bool
    sim_time_s: float


@dataclass(frozen=True, slots=True)
class PayloadEvent:
    """An actuator (or gripper/winch) action the vehicle performed, and where."""

    sim_time_s: float
    index: int
    value: float
    lat: float
    lon: float
    alt_rel_m: float
    source: Literal["mission", "command"]
    kind: Literal["actuator", "gripper", "winch"] = "actuator"
