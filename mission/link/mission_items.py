"""Typed mission items <-> MAVLink MISSION_ITEM_INT fields, and the checks done before anything is uploaded.

Pure code (no mavsdk): ``mavsdk_link`` turns ``MavlinkItem`` into MissionRaw items. Frames and commands
follow what PX4 accepts (see /work/shared/MAVLINK.md): positions in MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
DO_* commands in MAV_FRAME_MISSION.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from flightplans.items import (
    ChangeSpeed,
    Land,
    LoiterTime,
    MissionItem,
    ReturnToLaunch,
    SetActuator,
    Takeoff,
    Waypoint,
)

FRAME_GLOBAL_RELATIVE_ALT_INT = 6
FRAME_MISSION = 2

CMD_NAV_WAYPOINT = 16
CMD_NAV_LOITER_TIME = 19
CMD_NAV_RETURN_TO_LAUNCH = 20
CMD_NAV_LAND = 21
CMD_NAV_TAKEOFF = 22
CMD_DO_CHANGE_SPEED = 178
CMD_DO_SET_ACTUATOR = 187

# Names for error messages: an operator should read "DO_SET_RELAY", not "181".
COMMAND_NAMES: dict[int, str] = {
    16: "NAV_WAYPOINT",
    17: "NAV_LOITER_UNLIM",
    18: "NAV_LOITER_TURNS",
    19: "NAV_LOITER_TIME",
    20: "NAV_RETURN_TO_LAUNCH",
    21: "NAV_LAND",
    22: "NAV_TAKEOFF",
    34: "DO_ORBIT",
    93: "NAV_DELAY",
    178: "DO_CHANGE_SPEED",
    181: "DO_SET_RELAY",
    183: "DO_SET_SERVO",
    187: "DO_SET_ACTUATOR",
    211: "DO_GRIPPER",
    42600: "DO_WINCH",
}

# PX4 fails a whole mission upload (MAV_MISSION_UNSUPPORTED) on these; orbit is a live command only.
PX4_UNSUPPORTED_IN_MISSION = frozenset({34, 181, 183})


@dataclass(frozen=True, slots=True)
class RawMissionItem:
    """An escape hatch: one MISSION_ITEM_INT as is (``x``/``y`` are degrees, scaled by 1e7 on the wire).

    Sent without the typed checks, so the vehicle decides; used for items flightplans has no type for.
    """

    command: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    frame: int = FRAME_MISSION
    kind: Literal["raw"] = "raw"

    @property
    def name(self) -> str:
        """MAVLink command name, e.g. ``DO_SET_RELAY``."""
        return COMMAND_NAMES.get(self.command, f"MAV_CMD {self.command}")


LinkMissionItem = MissionItem | RawMissionItem


@dataclass(frozen=True, slots=True)
class MavlinkItem:
    """The fields of one MISSION_ITEM_INT (``x``/``y`` already scaled to int)."""

    seq: int
    frame: int
    command: int
    param1: float
    param2: float
    param3: float
    param4: float
    x: int
    y: int
    z: float


def describe(item: LinkMissionItem, seq: int) -> str:
    """``item 2 (DO_SET_RELAY, command 181)``: how errors name an item."""
    if isinstance(item, RawMissionItem):
        return f"item {seq} ({item.name}, command {item.command})"
    return f"item {seq} ({item.kind})"


def check_items(items: Sequence[LinkMissionItem]) -> None:
    """Raise ValueError naming the first typed item a vehicle would reject or fly wrongly."""
    if not items:
        raise ValueError("the mission has no items")
    for seq, item in enumerate(items):
        problem = _item_problem(item)
        if problem:
            raise ValueError(f"{describe(item, seq)}: {problem}")


def _item_problem(item: LinkMissionItem) -> str | None:
    match item:
        case RawMissionItem():
            if not 0 <= item.command <= 65535:
                return "command must be 0..65535"
            return None
        case Takeoff():
            return _alt_problem(item.alt_m, positive=True)
        case Waypoint():
            if item.hold_s < 0 or not math.isfinite(item.hold_s):
                return f"hold_s must be >= 0, got {item.hold_s}"
            if item.acceptance_m is not None and not (0 < item.acceptance_m < 1000):
                return f"acceptance_m must be in (0, 1000), got {item.acceptance_m}"
            return _position_problem(item.lat, item.lon) or _alt_problem(item.alt_m)
        case LoiterTime():
            if item.seconds < 0 or not math.isfinite(item.seconds):
                return f"seconds must be >= 0, got {item.seconds}"
            if item.radius_m < 0 or not math.isfinite(item.radius_m):
                return f"radius_m must be >= 0, got {item.radius_m}"
            return _position_problem(item.lat, item.lon) or _alt_problem(item.alt_m)
        case ChangeSpeed():
            if not (0 < item.speed_m_s <= 100):
                return f"speed_m_s must be in (0, 100], got {item.speed_m_s}"
            return None
        case SetActuator():
            if not 1 <= item.index <= 6:
                return f"actuator index must be 1..6, got {item.index}"
            if item.index > 4:
                # Actuators 5 and 6 ride in MISSION_ITEM_INT's integer x/y, which cannot say "unchanged" (NaN)
                # for the others; a live set_actuator() can address them.
                return f"actuator {item.index} cannot be set from a mission item; use actuators 1..4"
            if not -1.0 <= item.value <= 1.0:
                return f"actuator value must be in -1..1, got {item.value}"
            return None
        case Land():
            return _position_problem(item.lat, item.lon)
        case ReturnToLaunch():
            return None
    return f"unsupported mission item type {type(item).__name__}"


def _position_problem(lat: float, lon: float) -> str | None:
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        return f"latitude must be in -90..90, got {lat}"
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        return f"longitude must be in -180..180, got {lon}"
    if lat == 0 and lon == 0:
        return "position is (0, 0): a missing coordinate, not a place to fly"
    return None


def _alt_problem(alt_m: float, *, positive: bool = False) -> str | None:
    if not math.isfinite(alt_m) or alt_m < -100 or alt_m > 10000:
        return f"altitude must be a finite number of metres above home, got {alt_m}"
    if positive and alt_m <= 0:
        return f"altitude must be above home (> 0 m), got {alt_m}"
    return None


def _deg_e7(deg: float) -> int:
    return round(deg * 1e7)


def to_mavlink(
    items: Sequence[LinkMissionItem], *, takeoff_at: tuple[float, float] | None
) -> list[MavlinkItem]:
    """Encode checked items; ``takeoff_at`` (lat, lon) is NAV_TAKEOFF's position (else PX4 flies to 0, 0)."""
    check_items(items)
    out: list[MavlinkItem] = []
    nan = math.nan
    for seq, item in enumerate(items):
        rel, mis = FRAME_GLOBAL_RELATIVE_ALT_INT, FRAME_MISSION
        match item:
            case Takeoff():
                lat, lon = takeoff_at if takeoff_at else (0.0, 0.0)
                row = (rel, CMD_NAV_TAKEOFF, 0.0, 0.0, 0.0, nan, _deg_e7(lat), _deg_e7(lon), item.alt_m)
            case Waypoint():
                accept = item.acceptance_m or 0.0
                x, y = _deg_e7(item.lat), _deg_e7(item.lon)
                row = (rel, CMD_NAV_WAYPOINT, item.hold_s, accept, 0.0, nan, x, y, item.alt_m)
            case LoiterTime():
                x, y = _deg_e7(item.lat), _deg_e7(item.lon)
                row = (rel, CMD_NAV_LOITER_TIME, item.seconds, 0.0, item.radius_m, 0.0, x, y, item.alt_m)
            case ChangeSpeed():
                # param1 1 = ground speed, param3 -1 = leave throttle alone
                row = (mis, CMD_DO_CHANGE_SPEED, 1.0, item.speed_m_s, -1.0, 0.0, 0, 0, 0.0)
            case SetActuator():
                # params 1..4 are actuators 1..4, NaN = leave unchanged (check_items refuses 5 and 6)
                params = [nan, nan, nan, nan]
                params[item.index - 1] = item.value
                p1, p2, p3, p4 = params
                row = (mis, CMD_DO_SET_ACTUATOR, p1, p2, p3, p4, 0, 0, 0.0)
            case Land():
                row = (rel, CMD_NAV_LAND, 0.0, 0.0, 0.0, nan, _deg_e7(item.lat), _deg_e7(item.lon), 0.0)
            case ReturnToLaunch():
                row = (mis, CMD_NAV_RETURN_TO_LAUNCH, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0)
            case RawMissionItem():
                x, y = _deg_e7(item.x), _deg_e7(item.y)
                p1, p2, p3, p4 = item.param1, item.param2, item.param3, item.param4
                row = (item.frame, item.command, p1, p2, p3, p4, x, y, item.z)
            case _:
                raise ValueError(
                    f"{describe(item, seq)}: unsupported mission item type {type(item).__name__}"
                )
        frame, command, p1, p2, p3, p4, x, y, z = row
        out.append(MavlinkItem(seq, frame, command, p1, p2, p3, p4, x, y, z))
    return out


def from_mavlink(raw: Sequence[MavlinkItem]) -> list[LinkMissionItem]:
    """Decode a downloaded mission; anything without a typed equivalent comes back as RawMissionItem."""
    return [_decode(item) for item in raw]


def _decode(m: MavlinkItem) -> LinkMissionItem:
    lat, lon = m.x / 1e7, m.y / 1e7
    positional = m.frame in (3, 6)  # GLOBAL_RELATIVE_ALT(_INT): the only frame typed items use
    if m.command == CMD_NAV_TAKEOFF and positional:
        return Takeoff(alt_m=m.z)
    if m.command == CMD_NAV_WAYPOINT and positional:
        acceptance = m.param2 if m.param2 > 0 else None
        return Waypoint(lat=lat, lon=lon, alt_m=m.z, hold_s=m.param1, acceptance_m=acceptance)
    if m.command == CMD_NAV_LOITER_TIME and positional:
        return LoiterTime(lat=lat, lon=lon, alt_m=m.z, seconds=m.param1, radius_m=abs(m.param3))
    if m.command == CMD_NAV_LAND and positional:
        return Land(lat=lat, lon=lon)
    if m.command == CMD_NAV_RETURN_TO_LAUNCH:
        return ReturnToLaunch()
    if m.command == CMD_DO_CHANGE_SPEED and m.param2 > 0:
        return ChangeSpeed(speed_m_s=m.param2)
    if m.command == CMD_DO_SET_ACTUATOR:
        set_params = [i for i, p in enumerate((m.param1, m.param2, m.param3, m.param4)) if not math.isnan(p)]
        if len(set_params) == 1 and m.x == 0 and m.y == 0:
            index = set_params[0] + 1
            return SetActuator(index=index, value=(m.param1, m.param2, m.param3, m.param4)[index - 1])
    return RawMissionItem(
        command=m.command,
        param1=m.param1,
        param2=m.param2,
        param3=m.param3,
        param4=m.param4,
        x=lat,
        y=lon,
        z=m.z,
        frame=m.frame,
    )


def unsupported_suspects(items: Sequence[LinkMissionItem]) -> list[str]:
    """Items a PX4 vehicle is likely to have rejected: raw items, known-unsupported commands first."""
    known = [
        describe(i, s)
        for s, i in enumerate(items)
        if isinstance(i, RawMissionItem) and i.command in PX4_UNSUPPORTED_IN_MISSION
    ]
    if known:
        return known
    return [describe(i, s) for s, i in enumerate(items) if isinstance(i, RawMissionItem)]
