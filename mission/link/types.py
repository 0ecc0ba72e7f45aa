"""What the rest of skywarden knows about a vehicle link: typed snapshots and the VehicleLink protocol.

Nothing here imports mavsdk; ``mission/link/mavsdk_link.py`` implements the protocol with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from flightplans.items import Geofence, MissionItem
from mission.link.mission_items import RawMissionItem


class FlightMode(StrEnum):
    UNKNOWN = "unknown"
    READY = "ready"
    MANUAL = "manual"
    ALTCTL = "altctl"
    POSCTL = "posctl"
    ORBIT = "orbit"
    TAKEOFF = "takeoff"
    HOLD = "hold"
    MISSION = "mission"
    RETURN = "return"
    LAND = "land"
    OFFBOARD = "offboard"


@dataclass(frozen=True, slots=True)
class MissionProgress:
    current: int  # index of the item being flown (0-based)
    total: int  # number of items in the mission; 0 when no mission is known
    finished: bool


@dataclass(frozen=True, slots=True)
class TelemetrySnapshot:
    """One throttled view of a vehicle, as the service sees it."""

    vehicle_id: int  # the link's MAVLink sysid; the fleet manager re-keys it to the registry id
    received_at: float  # time.time() when the link produced this snapshot
    link_up: bool
    lat: float | None
    lon: float | None
    alt_amsl_m: float | None
    alt_rel_m: float | None
    heading_deg: float | None
    ground_speed_m_s: float | None
    climb_m_s: float | None
    battery_pct: float | None  # 0..100
    battery_v: float | None
    mode: FlightMode
    armed: bool
    in_air: bool
    gps_ok: bool
    home_ok: bool
    mission: MissionProgress
    home_lat: float | None = None
    home_lon: float | None = None
    home_alt_amsl_m: float | None = None
    # The vehicle's own wall clock (unix seconds) from its newest SYSTEM_TIME, read with the position: PX4
    # streams it, the simulator sends it right after each position. None when the vehicle sends no wall clock.
    vehicle_time_unix: float | None = None
    # The altitude the vehicle's own RTL climbs to (PX4's RTL_RETURN_ALT, read after each connect); None until
    # read, or when the vehicle does not answer: the gate then judges returns at the service's setting.
    return_alt_m: float | None = None


@dataclass(frozen=True, slots=True)
class ActuatorResult:
    """What a payload command achieved: always accepted (COMMAND_ACK), confirmed only by output feedback.

    ``confirmed`` when the vehicle's own output report (SERVO_OUTPUT_RAW / ACTUATOR_OUTPUT_STATUS) showed
    a channel moving to the commanded value; ``note`` says why not otherwise (no outputs reported, or none
    mapped to the actuator set: PX4 accepts DO_SET_ACTUATOR even where nothing is connected).
    """

    confirmed: bool
    note: str = ""
    channel: int | None = None  # the output channel (1-based) that followed the command

    @property
    def delivery(self) -> str:
        """``confirmed`` or ``accepted``."""
        return "confirmed" if self.confirmed else "accepted"


@runtime_checkable
class VehicleLink(Protocol):
    """Commands and telemetry of one vehicle in domain terms. Every command raises LinkError on failure."""

    @property
    def vehicle_id(self) -> int: ...

    @property
    def latest(self) -> TelemetrySnapshot | None: ...

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self, timeout_s: float = 10.0) -> None: ...
    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until connected with GPS and home position ok (armable)."""
        ...

    async def arm(self, *, keep_mode: bool = False) -> None: ...
    async def disarm(self) -> None: ...
    async def takeoff(self, alt_m: float | None = None) -> None: ...
    async def upload_mission(self, items: Sequence[MissionItem | RawMissionItem]) -> None: ...
    async def download_mission(self) -> list[MissionItem | RawMissionItem]:
        """The vehicle's mission; items without a typed equivalent come back as RawMissionItem."""
        ...

    async def clear_mission(self) -> None: ...
    async def start_mission(self) -> None:
        """Switch to MISSION, retrying while PX4 refuses right after an upload."""
        ...

    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def hold(self) -> None: ...
    async def goto(self, lat: float, lon: float, alt_rel_m: float, yaw_deg: float | None = None) -> None: ...
    async def orbit(
        self,
        lat: float,
        lon: float,
        alt_rel_m: float,
        *,
        radius_m: float,
        speed_m_s: float,
        clockwise: bool = True,
    ) -> None: ...
    async def set_speed(self, speed_m_s: float) -> None: ...
    async def return_to_launch(self) -> None: ...
    async def land(self) -> None: ...
    async def set_actuator(self, index: int, value: float) -> ActuatorResult: ...
    async def upload_geofence(self, fence: Geofence) -> None: ...
    def snapshots(self) -> AsyncIterator[TelemetrySnapshot]:
        """Throttled snapshots (at the configured rate) until the link is closed."""
        ...


# ---- camera and gimbal (mission/link/camera.py) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """A camera the vehicle announced (CAMERA_INFORMATION)."""

    component_id: int
    vendor: str
    model: str
    width_px: int
    height_px: int


@dataclass(frozen=True, slots=True)
class VideoStreamInfo:
    """A video stream the camera announced (VIDEO_STREAM_INFORMATION)."""

    component_id: int
    stream_id: int
    uri: str
    encoding: str  # "h264", "h265" or "unknown"
    stream_type: str  # "rtsp", "rtp_udp", "tcp_mpeg", "mpeg_ts"
    width_px: int
    height_px: int
    fps: float
    bitrate_bps: int
    hfov_deg: int
    running: bool
    received_at: float


@dataclass(frozen=True, slots=True)
class GimbalInfo:
    """A gimbal behind a gimbal manager (gimbal protocol v2)."""

    gimbal_id: int  # MAVSDK's 1-based id
    vendor: str
    model: str
    manager_component_id: int
    device_id: int


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """What discovery knows of a vehicle's camera, stream and gimbal now (None = not announced)."""

    camera: CameraInfo | None
    stream: VideoStreamInfo | None
    gimbal: GimbalInfo | None


@runtime_checkable
class CameraControl(Protocol):
    """A vehicle's camera and gimbal; every command raises LinkError on failure."""

    def status(self) -> CameraStatus: ...
    async def request_stream_info(self, timeout_s: float = 3.0) -> VideoStreamInfo | None:
        """Ask the camera for VIDEO_STREAM_INFORMATION now; the answer, or None if none came."""
        ...

    async def take_photo(self) -> None: ...
    async def start_video(self) -> None: ...
    async def stop_video(self) -> None: ...
    async def point_at(self, lat: float, lon: float, alt_amsl_m: float) -> None:
        """Region of interest: the gimbal tracks this location."""
        ...

    async def point_angles(self, pitch_deg: float, yaw_deg: float) -> None:
        """Gimbal pitch (-90 = down) and yaw relative to the vehicle's nose."""
        ...
