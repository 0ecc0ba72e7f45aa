"""Mission, geofence and rally storage with PX4's upload validation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.geo import LocalFrame, point_in_polygon

MISSION = 0
FENCE = 1
RALLY = 2

# MAV_MISSION_RESULT
MISSION_ACCEPTED = 0
MISSION_UNSUPPORTED_FRAME = 2
MISSION_UNSUPPORTED = 3
MISSION_INVALID_PARAM1 = 6
MISSION_INVALID_SEQUENCE = 13

# MAV_CMD ids used in missions
NAV_WAYPOINT = 16
NAV_LOITER_UNLIM = 17
NAV_LOITER_TIME = 19
NAV_RETURN_TO_LAUNCH = 20
NAV_LAND = 21
NAV_TAKEOFF = 22
NAV_DELAY = 93
DO_CHANGE_SPEED = 178
DO_SET_ACTUATOR = 187
DO_GRIPPER = 211
DO_WINCH = 42600
FENCE_RETURN_POINT = 5000
FENCE_POLYGON_INCLUSION = 5001
FENCE_POLYGON_EXCLUSION = 5002
FENCE_CIRCLE_INCLUSION = 5003
FENCE_CIRCLE_EXCLUSION = 5004
RALLY_POINT = 5100

NAV_COMMANDS = frozenset(
    {NAV_WAYPOINT, NAV_LOITER_UNLIM, NAV_LOITER_TIME, NAV_RETURN_TO_LAUNCH, NAV_LAND, NAV_TAKEOFF}
)
# DO_ / camera / gimbal items PX4 accepts in a mission; the sim records or ignores them
_ACCEPTED_DO_COMMANDS = frozenset(
    {
        NAV_DELAY,
        DO_CHANGE_SPEED,
        DO_SET_ACTUATOR,
        DO_GRIPPER,
        DO_WINCH,
        80,  # NAV_ROI
        112,  # CONDITION_DELAY
        195,  # DO_SET_ROI_LOCATION
        197,  # DO_SET_ROI_NONE
        203,  # DO_DIGICAM_CONTROL
        205,  # DO_MOUNT_CONTROL
        206,  # DO_SET_CAM_TRIGG_DIST
        214,  # DO_SET_CAM_TRIGG_INTERVAL
        530,  # SET_CAMERA_MODE
        1000,  # DO_GIMBAL_MANAGER_PITCHYAW
        2000,  # IMAGE_START_CAPTURE
        2001,  # IMAGE_STOP_CAPTURE
        2500,  # VIDEO_START_CAPTURE
        2501,  # VIDEO_STOP_CAPTURE
    }
)
MISSION_COMMANDS = NAV_COMMANDS | _ACCEPTED_DO_COMMANDS
FENCE_COMMANDS = frozenset(
    {
        FENCE_RETURN_POINT,
        FENCE_POLYGON_INCLUSION,
        FENCE_POLYGON_EXCLUSION,
        FENCE_CIRCLE_INCLUSION,
        FENCE_CIRCLE_EXCLUSION,
    }
)
RALLY_COMMANDS = frozenset({RALLY_POINT})

# MAV_FRAME: GLOBAL, GLOBAL_RELATIVE_ALT, GLOBAL_INT, GLOBAL_RELATIVE_ALT_INT, GLOBAL_TERRAIN_ALT(_INT)
GLOBAL_FRAMES = frozenset({0, 3, 5, 6, 10, 11})
AMSL_FRAMES = frozenset({0, 5})
MISSION_FRAME = 2


@dataclass(frozen=True)
class MissionItem:
    """One stored item exactly as MISSION_ITEM_INT carries it (x/y are degE7 for global frames)."""

    seq: int
    frame: int
    command: int
    current: int
    autocontinue: int
    param1: float
    param2: float
    param3: float
    param4: float
    x: int
    y: int
    z: float
    mission_type: int = MISSION

    @property
    def lat(self) -> float:
        """Latitude in degrees (global frames)."""
        return self.x / 1e7

    @property
    def lon(self) -> float:
        """Longitude in degrees (global frames)."""
        return self.y / 1e7

    @property
    def alt_m(self) -> float:
        """z: altitude in the item's frame (relative to home for frames 3/6, AMSL for 0/5)."""
        return self.z

    @property
    def params(self) -> tuple[float, float, float, float]:
        """param1..param4."""
        return (self.param1, self.param2, self.param3, self.param4)

    @property
    def has_position(self) -> bool:
        """True when the item names a position (PX4 treats lat=lon=0 as "here")."""
        return self.frame in GLOBAL_FRAMES and not (self.x == 0 and self.y == 0)


def validate_item(item: MissionItem) -> int:
    """PX4's per-item check on receipt: MAV_MISSION_RESULT (0 = accepted)."""
    if item.mission_type == MISSION:
        if item.command not in MISSION_COMMANDS:
            return MISSION_UNSUPPORTED
        positional = item.command in NAV_COMMANDS and item.command != NAV_RETURN_TO_LAUNCH
        if positional and item.frame not in GLOBAL_FRAMES:
            return MISSION_UNSUPPORTED_FRAME
        return MISSION_ACCEPTED
    if item.mission_type == FENCE:
        if item.command not in FENCE_COMMANDS:
            return MISSION_UNSUPPORTED
        if item.frame not in GLOBAL_FRAMES:
            return MISSION_UNSUPPORTED_FRAME
        if item.command in (FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION) and item.param1 < 3:
            return MISSION_INVALID_PARAM1
        if item.command in (FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION) and not item.param1 > 0:
            return MISSION_INVALID_PARAM1
        return MISSION_ACCEPTED
    if item.mission_type == RALLY:
        if item.command not in RALLY_COMMANDS:
            return MISSION_UNSUPPORTED
        if item.frame not in GLOBAL_FRAMES:
            return MISSION_UNSUPPORTED_FRAME
        return MISSION_ACCEPTED
    return MISSION_UNSUPPORTED


def validate_plan(items: list[MissionItem]) -> int:
    """Whole-plan checks after the last item: polygon vertex groups must be complete."""
    if not items or items[0].mission_type != FENCE:
        return MISSION_ACCEPTED
    i = 0
    while i < len(items):
        item = items[i]
        if item.command in (FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION):
            count = int(item.param1)
            group = items[i : i + count]
            if len(group) < count or any(g.command != item.command or int(g.param1) != count for g in group):
                return MISSION_INVALID_SEQUENCE
            i += count
        else:
            i += 1
    return MISSION_ACCEPTED


@dataclass(frozen=True)
class FenceArea:
    """A polygon (north/east vertices) or circle (centre + radius) of the loaded geofence."""

    inclusion: bool
    polygon_ne: tuple[tuple[float, float], ...] = ()
    centre_ne: tuple[float, float] = (0.0, 0.0)
    radius_m: float = 0.0
    polygon_latlon: tuple[tuple[float, float], ...] = ()
    centre_latlon: tuple[float, float] = (0.0, 0.0)

    def contains(self, north_m: float, east_m: float) -> bool:
        """True when the point is inside this area."""
        if self.polygon_ne:
            return point_in_polygon(north_m, east_m, self.polygon_ne)
        return math.hypot(north_m - self.centre_ne[0], east_m - self.centre_ne[1]) <= self.radius_m


@dataclass(frozen=True)
class Geofence:
    """The uploaded geofence as areas in the home frame."""

    areas: tuple[FenceArea, ...]

    @property
    def empty(self) -> bool:
        """True when no area is loaded."""
        return not self.areas

    def breached(self, north_m: float, east_m: float) -> bool:
        """Outside every inclusion area (when any) or inside an exclusion area."""
        inclusions = [a for a in self.areas if a.inclusion]
        if inclusions and not any(a.contains(north_m, east_m) for a in inclusions):
            return True
        return any(a.contains(north_m, east_m) for a in self.areas if not a.inclusion)


def build_geofence(items: list[MissionItem], frame: LocalFrame) -> Geofence:
    """Turn validated fence items into areas."""
    areas: list[FenceArea] = []
    i = 0
    while i < len(items):
        item = items[i]
        if item.command in (FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION):
            count = int(item.param1)
            group = items[i : i + count]
            latlon = tuple((g.lat, g.lon) for g in group)
            areas.append(
                FenceArea(
                    inclusion=item.command == FENCE_POLYGON_INCLUSION,
                    polygon_ne=tuple(frame.to_ne(lat, lon) for lat, lon in latlon),
                    polygon_latlon=latlon,
                )
            )
            i += count
            continue
        if item.command in (FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION):
            areas.append(
                FenceArea(
                    inclusion=item.command == FENCE_CIRCLE_INCLUSION,
                    centre_ne=frame.to_ne(item.lat, item.lon),
                    radius_m=float(item.param1),
                    centre_latlon=(item.lat, item.lon),
                )
            )
        i += 1
    return Geofence(areas=tuple(areas))
