"""PX4 parameters the simulated autopilot uses, with PX4's defaults and its bytewise encoding.

Defaults are PX4 v1.17's for the SIH quadcopter (checked with `param show` on ../shared/px4-sitl).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

PARAM_TYPE_INT32 = 6  # MAV_PARAM_TYPE_INT32
PARAM_TYPE_REAL32 = 9  # MAV_PARAM_TYPE_REAL32


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its PX4 name, MAVLink type and default."""

    name: str
    param_type: int
    default: float


PARAM_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("MIS_TAKEOFF_ALT", PARAM_TYPE_REAL32, 2.5),
    ParamSpec("RTL_RETURN_ALT", PARAM_TYPE_REAL32, 30.0),
    ParamSpec("MPC_XY_CRUISE", PARAM_TYPE_REAL32, 5.0),
    ParamSpec("MPC_XY_VEL_MAX", PARAM_TYPE_REAL32, 12.0),
    ParamSpec("MPC_Z_VEL_MAX_UP", PARAM_TYPE_REAL32, 3.0),
    ParamSpec("MPC_Z_VEL_MAX_DN", PARAM_TYPE_REAL32, 1.5),
    ParamSpec("MPC_LAND_SPEED", PARAM_TYPE_REAL32, 0.7),
    ParamSpec("MPC_LAND_ALT1", PARAM_TYPE_REAL32, 10.0),
    ParamSpec("MPC_LAND_ALT2", PARAM_TYPE_REAL32, 5.0),
    ParamSpec("MPC_LAND_ALT3", PARAM_TYPE_REAL32, 1.0),
    ParamSpec("MPC_LAND_CRWL", PARAM_TYPE_REAL32, 0.3),
    ParamSpec("MPC_TKO_SPEED", PARAM_TYPE_REAL32, 1.5),
    ParamSpec("MPC_TKO_RAMP_T", PARAM_TYPE_REAL32, 3.0),
    ParamSpec("COM_SPOOLUP_TIME", PARAM_TYPE_REAL32, 1.0),
    ParamSpec("MPC_ACC_HOR", PARAM_TYPE_REAL32, 3.0),
    ParamSpec("MPC_YAWRAUTO_MAX", PARAM_TYPE_REAL32, 60.0),
    ParamSpec("NAV_ACC_RAD", PARAM_TYPE_REAL32, 2.0),
    ParamSpec("NAV_MC_ALT_RAD", PARAM_TYPE_REAL32, 0.8),
    ParamSpec("BAT_LOW_THR", PARAM_TYPE_REAL32, 0.15),
    ParamSpec("BAT_CRIT_THR", PARAM_TYPE_REAL32, 0.07),
    ParamSpec("BAT_EMERGEN_THR", PARAM_TYPE_REAL32, 0.05),
    ParamSpec("BAT1_N_CELLS", PARAM_TYPE_INT32, 6),
    # 3 = return at critical, land at emergency (the behaviour the issue asks for)
    ParamSpec("COM_LOW_BAT_ACT", PARAM_TYPE_INT32, 3),
    # 2 = hold on breach (PX4's default; 3 = return, 5 = land)
    ParamSpec("GF_ACTION", PARAM_TYPE_INT32, 2),
    ParamSpec("COM_FAIL_ACT_T", PARAM_TYPE_REAL32, 5.0),  # hold this long before a failsafe's return/land
    ParamSpec("COM_DISARM_LAND", PARAM_TYPE_REAL32, 2.0),
    ParamSpec("COM_DISARM_PRFLT", PARAM_TYPE_REAL32, 10.0),
    ParamSpec("SYS_AUTOSTART", PARAM_TYPE_INT32, 10040),
    ParamSpec("MAV_TYPE", PARAM_TYPE_INT32, 2),
)


def encode_param_value(value: float, param_type: int) -> float:
    """PX4 sends integers bytewise inside the float field (MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE)."""
    if param_type == PARAM_TYPE_INT32:
        return struct.unpack("<f", struct.pack("<i", int(value)))[0]
    return float(value)


def decode_param_value(raw: float, param_type: int) -> float:
    """Inverse of `encode_param_value`."""
    if param_type == PARAM_TYPE_INT32:
        return float(struct.unpack("<i", struct.pack("<f", raw))[0])
    return float(raw)


class ParamStore:
    """Named parameter values in a stable index order, as PX4's param list."""

    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        self._specs = {spec.name: spec for spec in PARAM_SPECS}
        self._names = [spec.name for spec in PARAM_SPECS]
        self._values = {spec.name: float(spec.default) for spec in PARAM_SPECS}
        for name, value in (overrides or {}).items():
            if name not in self._specs:
                raise ValueError(f"unknown parameter {name!r}; known: {', '.join(self._names)}")
            self.set(name, value)

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> list[str]:
        """Parameter names in index order."""
        return list(self._names)

    def index_of(self, name: str) -> int:
        """Index of `name` in the list."""
        return self._names.index(name)

    def name_at(self, index: int) -> str | None:
        """Name at `index`, or None when out of range."""
        return self._names[index] if 0 <= index < len(self._names) else None

    def spec(self, name: str) -> ParamSpec:
        """The spec of `name`."""
        return self._specs[name]

    def set(self, name: str, value: float) -> float:
        """Set `name` (integers are truncated); returns the stored value."""
        if not math.isfinite(value):
            raise ValueError(f"parameter {name} must be finite, got {value}")
        spec = self._specs[name]
        stored = float(int(value)) if spec.param_type == PARAM_TYPE_INT32 else float(value)
        self._values[name] = stored
        return stored
