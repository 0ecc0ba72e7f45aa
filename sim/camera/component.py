"""A vehicle's MAVLink camera (component 100) and the autopilot's gimbal manager, as PX4 setups have them.

Camera protocol (https://mavlink.io/en/services/camera.html): a 1 Hz HEARTBEAT of type CAMERA, and on request
(MAV_CMD_REQUEST_MESSAGE or the older REQUEST_* commands) CAMERA_INFORMATION, CAMERA_SETTINGS,
STORAGE_INFORMATION, CAMERA_CAPTURE_STATUS, CAMERA_IMAGE_CAPTURED, VIDEO_STREAM_INFORMATION (the RTSP URI,
resolution, frame rate and encoding) and VIDEO_STREAM_STATUS. Commands: SET_CAMERA_MODE, IMAGE_START_CAPTURE
(one photo: ACK, then CAMERA_IMAGE_CAPTURED), VIDEO_START/STOP_CAPTURE (recording on the camera's card),
VIDEO_START/STOP_STREAMING. Anything else sent to the camera: UNSUPPORTED.

Gimbal protocol v2 with the manager in the autopilot (component 1) and a gimbal device it drives itself
(gimbal_device_id 1), as PX4 does with a PWM/CAN gimbal: GIMBAL_MANAGER_INFORMATION and
GIMBAL_DEVICE_INFORMATION on request, GIMBAL_MANAGER_STATUS and GIMBAL_DEVICE_ATTITUDE_STATUS streamed;
DO_SET_ROI_LOCATION / DO_SET_ROI_NONE from anyone, DO_GIMBAL_MANAGER_PITCHYAW and the SET_PITCHYAW /
SET_ATTITUDE messages only from the primary controller once one took control (DO_GIMBAL_MANAGER_CONFIGURE).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymavlink.dialects.v20 import common as mavlink

from sim.camera.codec import AccessUnit, Packetizer, sdp_fmtp
from sim.camera.config import CameraConfig
from sim.camera.render import CameraPose, Peer
from sim.camera.rtsp import RtspServer
from sim.camera.source import VideoSource

if TYPE_CHECKING:
    from sim.vehicle import SimVehicle

CAMERA_COMPID = mavlink.MAV_COMP_ID_CAMERA  # 100
AUTOPILOT_COMPID = 1
GIMBAL_DEVICE_ID = 1  # a gimbal the autopilot drives itself (non-MAVLink device)

_ACCEPTED, _DENIED, _UNSUPPORTED = 0, 2, 3
_MAV_TYPE_CAMERA = 30
_MAV_AUTOPILOT_INVALID = 8
_CAMERA_MSGS = frozenset({259, 260, 261, 262, 263, 269, 270})
_GIMBAL_MSGS = frozenset({280, 281, 283, 285})
_GIMBAL_COMMANDS = frozenset({195, 197, 1000, 1001})
_LEGACY_REQUESTS = {521: 259, 522: 260, 525: 261, 527: 262, 2504: 269, 2505: 270}
_ONCE = frozenset({2000, 2500, 2501})  # a resend of these within the window must not act twice
_DEDUPE_WALL_S = 1.5
_ENCODING = {"h264": mavlink.VIDEO_STREAM_ENCODING_H264, "h265": mavlink.VIDEO_STREAM_ENCODING_H265}
_CAMERA_CAPS = (
    mavlink.CAMERA_CAP_FLAGS_CAPTURE_VIDEO
    | mavlink.CAMERA_CAP_FLAGS_CAPTURE_IMAGE
    | mavlink.CAMERA_CAP_FLAGS_HAS_MODES
    | mavlink.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM
)
_GIMBAL_CAPS = (
    mavlink.GIMBAL_MANAGER_CAP_FLAGS_HAS_PITCH_AXIS
    | mavlink.GIMBAL_MANAGER_CAP_FLAGS_HAS_YAW_AXIS
    | mavlink.GIMBAL_MANAGER_CAP_FLAGS_HAS_YAW_FOLLOW
    | mavlink.GIMBAL_MANAGER_CAP_FLAGS_HAS_YAW_LOCK
    | mavlink.GIMBAL_MANAGER_CAP_FLAGS_CAN_POINT_LOCATION_GLOBAL
)
_PITCH_MIN_DEG, _PITCH_MAX_DEG = -90.0, 30.0


@dataclass(frozen=True, slots=True)
class CapturedImage:
    """A photo the camera took (kept as metadata; its picture is the frame of that moment)."""

    index: int
    time_utc_us: int
    lat: float
    lon: float
    alt_rel_m: float
    file_url: str


def _fixed(text: str, size: int) -> list[int]:
    raw = text.encode()[:size]
    return list(raw) + [0] * (size - len(raw))


def _finite(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value)


class SimCamera:
    """The camera, its RTSP stream and the gimbal of one simulated vehicle."""

    def __init__(
        self, *, vehicle: SimVehicle, config: CameraConfig, peers: Callable[[], Sequence[SimVehicle]]
    ) -> None:
        self.vehicle = vehicle
        self.config = config
        self.sysid = vehicle.sysid
        self._peers = peers
        self._mav = mavlink.MAVLink(None, srcSystem=vehicle.sysid, srcComponent=CAMERA_COMPID)
        self.mode = mavlink.CAMERA_MODE_VIDEO
        self.photos: list[CapturedImage] = []
        self.recording_since: float | None = None
        self.gimbal_pitch_deg = -90.0
        self.gimbal_yaw_deg = 0.0
        self.roi: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
        self.primary_control: tuple[int, int] = (0, 0)
        self.commands_received: list[tuple[int, int, tuple[float, ...]]] = []  # (compid, command, params)
        self._recent: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._next_heartbeat = 0.0
        self._next_gimbal = 0.0
        self._packetizer = Packetizer(config.codec)
        self.source = VideoSource(
            config=config,
            pose=self.pose,
            peers=self._peer_states,
            on_access_unit=self._on_access_unit,
            name=str(vehicle.sysid),
        )
        port = 0 if config.rtsp_port_base is None else config.rtsp_port_base + vehicle.index
        self.server = RtspServer(
            host=config.rtsp_host,
            port=port,
            describe=self._describe,
            on_play=self.source.want,
            on_leave=self.source.unwant,
            title=f"skywarden sim camera, vehicle {vehicle.sysid}",
        )

    # ---- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The RTSP URI the camera announces."""
        return self.server.url

    async def start(self) -> None:
        """Open the RTSP port (the encoder starts only when a client plays)."""
        await self.server.start()

    async def close(self) -> None:
        """Stop streaming and close the port."""
        await self.server.close()
        await self.source.close()

    # ---- what the picture shows --------------------------------------------------------------------
    def pose(self) -> CameraPose:
        """The vehicle's position and where the gimbal points, for the renderer."""
        ap = self.vehicle.autopilot
        lat, lon = ap.latlon()
        return CameraPose(
            sysid=self.sysid,
            lat=lat,
            lon=lon,
            alt_rel_m=ap.alt_rel_m,
            heading_deg=ap.heading_deg,
            gimbal_pitch_deg=self.gimbal_pitch_deg,
            gimbal_yaw_deg=self.gimbal_yaw_deg,
            roi=None if self.roi is None else (self.roi[0], self.roi[1]),
            recording=self.recording_since is not None,
        )

    def _peer_states(self) -> list[Peer]:
        out = []
        for other in self._peers():
            if other is self.vehicle:
                continue
            lat, lon = other.autopilot.latlon()
            out.append(Peer(sysid=other.sysid, lat=lat, lon=lon, alt_rel_m=other.autopilot.alt_rel_m))
        return out

    def _describe(self) -> tuple[str, str]:
        return sdp_fmtp(self.config.codec, self.source.encoder().parameter_sets)

    def _on_access_unit(self, au: AccessUnit) -> None:
        self.server.broadcast(self._packetizer.packets(au), keyframe=au.keyframe)

    def aimed_angles(self) -> tuple[float, float]:
        """(pitch, yaw relative to the nose) the gimbal holds now, in degrees."""
        if self.roi is None:
            return self.gimbal_pitch_deg, self.gimbal_yaw_deg
        ap = self.vehicle.autopilot
        lat, lon = ap.latlon()
        north = math.radians(self.roi[0] - lat) * 6_378_137.0
        east = math.radians(self.roi[1] - lon) * 6_378_137.0 * math.cos(math.radians(lat))
        dist = math.hypot(north, east)
        pitch = -math.degrees(math.atan2(max(0.5, ap.alt_rel_m), dist))
        yaw = (math.degrees(math.atan2(east, north)) - ap.heading_deg + 180.0) % 360.0 - 180.0
        return pitch, yaw

    # ---- the wire ----------------------------------------------------------------------------------
    def _send(self, msg: Any) -> None:
        buf = msg.pack(self._mav)
        self._mav.seq = (self._mav.seq + 1) & 0xFF
        self.vehicle.send_datagram(buf)

    def _boot_ms(self) -> int:
        return self.vehicle._boot_ms()

    def tick(self, now: float) -> None:
        """From the vehicle's tick: the camera's heartbeat and the gimbal's status streams."""
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + 1.0
            self._send(self._mav.heartbeat_encode(_MAV_TYPE_CAMERA, _MAV_AUTOPILOT_INVALID, 0, 0, 4, 3))
        if now >= self._next_gimbal:
            self._next_gimbal = now + 0.5
            self._send_gimbal_status()
            self._send_gimbal_attitude()

    def handle(self, msg: Any) -> bool:
        """Take a message meant for the camera or the gimbal manager; False leaves it to the autopilot."""
        kind = msg.get_type()
        if kind in ("COMMAND_LONG", "COMMAND_INT"):
            if msg.target_system not in (0, self.sysid):
                return False
            if kind == "COMMAND_LONG":
                params = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
            else:
                params = (msg.param1, msg.param2, msg.param3, msg.param4, float(msg.x), float(msg.y), msg.z)
            command, target = msg.command, msg.target_component
            requested = int(params[0]) if command == 512 and _finite(params[0]) else -1
            if target == CAMERA_COMPID or (target == 0 and requested in _CAMERA_MSGS):
                self._camera_command(msg, command, params)
                return True
            if target in (0, AUTOPILOT_COMPID) and (command in _GIMBAL_COMMANDS or requested in _GIMBAL_MSGS):
                self._gimbal_command(msg, command, params, int_frame=kind == "COMMAND_INT")
                return True
            return False
        if kind in ("GIMBAL_MANAGER_SET_PITCHYAW", "GIMBAL_MANAGER_SET_ATTITUDE"):
            if msg.target_system not in (0, self.sysid) or msg.target_component not in (0, AUTOPILOT_COMPID):
                return False
            if self._in_control(msg):
                if kind == "GIMBAL_MANAGER_SET_PITCHYAW":
                    self._point(math.degrees(msg.pitch), math.degrees(msg.yaw))
                else:
                    w, x, y, z = msg.q
                    if all(_finite(v) for v in (w, x, y, z)):
                        pitch = math.degrees(math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x)))))
                        yaw = math.degrees(math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
                        self._point(pitch, yaw)
            return True
        return False

    def _ack(self, msg: Any, command: int, result: int, *, from_autopilot: bool = False) -> None:
        ack = self._mav.command_ack_encode(command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent())
        if from_autopilot:
            self.vehicle._send(ack)
        else:
            self._send(ack)

    # ---- camera ------------------------------------------------------------------------------------
    def _camera_command(self, msg: Any, command: int, p: tuple[float, ...]) -> None:
        self.commands_received.append((CAMERA_COMPID, command, p))
        now = time.monotonic()
        key = (command, p)
        if command in _ONCE:
            recent = self._recent.get(key)
            if recent is not None and now - recent[0] < _DEDUPE_WALL_S:
                self._ack(msg, command, recent[1])
                return
        send_after: Callable[[], None] | None = None
        result = _ACCEPTED
        if command == 512 or command in _LEGACY_REQUESTS:
            wanted = _LEGACY_REQUESTS.get(command, int(p[0]) if _finite(p[0]) else -1)
            if wanted not in _CAMERA_MSGS:
                result = _UNSUPPORTED
            else:
                index = int(p[1]) if _finite(p[1]) else -1
                send_after = functools.partial(self._send_camera_message, wanted, index)
        elif command == 530:  # SET_CAMERA_MODE
            mode = int(p[1]) if _finite(p[1]) else -1
            if mode in (mavlink.CAMERA_MODE_IMAGE, mavlink.CAMERA_MODE_VIDEO):
                self.mode = mode
                send_after = functools.partial(self._send_camera_message, 260, -1)
            else:
                result = _DENIED
        elif command == 2000:  # IMAGE_START_CAPTURE: one photo (param3 = 1) is all this camera does
            count = int(p[2]) if _finite(p[2]) else 1
            if count != 1:
                result = _DENIED
            else:
                send_after = self._take_photo
        elif command == 2001:  # IMAGE_STOP_CAPTURE
            pass
        elif command == 2500:  # VIDEO_START_CAPTURE
            if self.recording_since is None:
                self.recording_since = now
            send_after = functools.partial(self._send_camera_message, 262, -1)
        elif command == 2501:  # VIDEO_STOP_CAPTURE
            self.recording_since = None
            send_after = functools.partial(self._send_camera_message, 262, -1)
        elif command in (2502, 2503):  # VIDEO_START/STOP_STREAMING: the RTSP stream is always on offer
            pass
        else:
            result = _UNSUPPORTED
        if command in _ONCE:
            self._recent = {k: v for k, v in self._recent.items() if now - v[0] < _DEDUPE_WALL_S}
            self._recent[key] = (now, result)
        self._ack(msg, command, result)
        if send_after is not None and result == _ACCEPTED:
            send_after()

    def _take_photo(self) -> None:
        ap = self.vehicle.autopilot
        lat, lon = ap.latlon()
        index = len(self.photos)
        photo = CapturedImage(
            index=index,
            time_utc_us=int(time.time() * 1e6),
            lat=lat,
            lon=lon,
            alt_rel_m=ap.alt_rel_m,
            file_url=f"file:///sdcard/DCIM/UAV{self.sysid}_{index + 1:04d}.JPG",
        )
        self.photos.append(photo)
        self._send_camera_message(263, index)
        self._send_camera_message(262, -1)

    def _send_camera_message(self, msg_id: int, index: int) -> None:
        c = self.config
        boot = self._boot_ms()
        if msg_id == 259:
            self._send(
                self._mav.camera_information_encode(
                    boot,
                    _fixed(c.vendor, 32),
                    _fixed(c.model, 32),
                    0x01000000,
                    4.5,
                    6.17,
                    4.55,
                    c.width,
                    c.height,
                    0,
                    _CAMERA_CAPS,
                    0,
                    b"",
                    GIMBAL_DEVICE_ID,
                )
            )
        elif msg_id == 260:
            self._send(self._mav.camera_settings_encode(boot, self.mode, float("nan"), float("nan")))
        elif msg_id == 261:
            self._send(
                self._mav.storage_information_encode(
                    boot,
                    1,
                    1,
                    mavlink.STORAGE_STATUS_READY,
                    61035.0,
                    1024.0,
                    60011.0,
                    90.0,
                    60.0,
                    mavlink.STORAGE_TYPE_MICROSD,
                    b"sdcard",
                )
            )
        elif msg_id == 262:
            recording_ms = (
                0 if self.recording_since is None else int((time.monotonic() - self.recording_since) * 1000)
            )
            self._send(
                self._mav.camera_capture_status_encode(
                    boot,
                    0,
                    1 if self.recording_since is not None else 0,
                    0.0,
                    recording_ms,
                    60011.0,
                    len(self.photos),
                )
            )
        elif msg_id == 263:
            if not 0 <= index < len(self.photos):
                return
            photo = self.photos[index]
            ap = self.vehicle.autopilot
            self._send(
                self._mav.camera_image_captured_encode(
                    boot,
                    photo.time_utc_us,
                    0,
                    int(photo.lat * 1e7),
                    int(photo.lon * 1e7),
                    int((ap.home_amsl_m + photo.alt_rel_m) * 1000),
                    int(photo.alt_rel_m * 1000),
                    [1.0, 0.0, 0.0, 0.0],
                    photo.index,
                    1,
                    photo.file_url.encode(),
                )
            )
        elif msg_id in (269, 270):
            flags = mavlink.VIDEO_STREAM_STATUS_FLAGS_RUNNING
            if msg_id == 269:
                self._send(
                    self._mav.video_stream_information_encode(
                        1,
                        1,
                        mavlink.VIDEO_STREAM_TYPE_RTSP,
                        flags,
                        c.fps,
                        c.width,
                        c.height,
                        c.bitrate_bps,
                        0,
                        int(c.hfov_deg),
                        b"live",
                        self.url.encode(),
                        _ENCODING[c.codec],
                    )
                )
            else:
                self._send(
                    self._mav.video_stream_status_encode(
                        1, flags, c.fps, c.width, c.height, c.bitrate_bps, 0, int(c.hfov_deg)
                    )
                )

    # ---- gimbal manager (component 1) -----------------------------------------------------------------
    def _in_control(self, msg: Any) -> bool:
        primary = self.primary_control
        return primary == (0, 0) or primary == (msg.get_srcSystem(), msg.get_srcComponent())

    def _point(self, pitch_deg: float, yaw_deg: float) -> None:
        if _finite(pitch_deg):
            self.gimbal_pitch_deg = max(_PITCH_MIN_DEG, min(_PITCH_MAX_DEG, pitch_deg))
        if _finite(yaw_deg):
            self.gimbal_yaw_deg = (yaw_deg + 180.0) % 360.0 - 180.0
        self.roi = None

    def _gimbal_command(self, msg: Any, command: int, p: tuple[float, ...], *, int_frame: bool) -> None:
        self.commands_received.append((AUTOPILOT_COMPID, command, p))
        result = _ACCEPTED
        send_after: Callable[[], None] | None = None
        if command == 512:
            wanted = int(p[0])
            send_after = {
                280: self._send_gimbal_manager_information,
                281: self._send_gimbal_status,
                283: self._send_gimbal_device_information,
                285: self._send_gimbal_attitude,
            }[wanted]
        elif command == 195:  # DO_SET_ROI_LOCATION
            if int_frame:
                lat, lon = p[4] / 1e7, p[5] / 1e7
            else:
                lat, lon = p[4], p[5]
            if not (_finite(lat) and _finite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180) or (
                lat == 0 and lon == 0
            ):
                result = _DENIED
            else:
                alt = p[6] if _finite(p[6]) else self.vehicle.autopilot.home_amsl_m
                self.roi = (lat, lon, alt)
        elif command == 197:  # DO_SET_ROI_NONE
            self.roi = None
        elif command == 1000:  # DO_GIMBAL_MANAGER_PITCHYAW
            if not self._in_control(msg):
                result = _DENIED
            else:
                self._point(p[0], p[1])
        elif command == 1001:  # DO_GIMBAL_MANAGER_CONFIGURE
            sysid, compid = p[0], p[1]
            if _finite(sysid) and _finite(compid):
                if sysid == -1:  # the sender takes control
                    self.primary_control = (msg.get_srcSystem(), msg.get_srcComponent())
                elif sysid == -2:  # release
                    self.primary_control = (0, 0)
                elif sysid >= 0:
                    self.primary_control = (int(sysid), int(compid))
            send_after = self._send_gimbal_status
        self._ack(msg, command, result, from_autopilot=True)
        if send_after is not None and result == _ACCEPTED:
            send_after()

    def _send_gimbal_manager_information(self) -> None:
        self.vehicle._send(
            self._mav.gimbal_manager_information_encode(
                self._boot_ms(),
                _GIMBAL_CAPS,
                GIMBAL_DEVICE_ID,
                0.0,
                0.0,
                math.radians(_PITCH_MIN_DEG),
                math.radians(_PITCH_MAX_DEG),
                -math.pi,
                math.pi,
            )
        )

    def _send_gimbal_device_information(self) -> None:
        self.vehicle._send(
            self._mav.gimbal_device_information_encode(
                self._boot_ms(),
                b"skywarden-sim",
                b"SIM-GIMBAL-2AX",
                b"",
                0,
                0,
                0,
                _GIMBAL_CAPS & 0xFFFF,
                0,
                0.0,
                0.0,
                math.radians(_PITCH_MIN_DEG),
                math.radians(_PITCH_MAX_DEG),
                -math.pi,
                math.pi,
                GIMBAL_DEVICE_ID,
            )
        )

    def _send_gimbal_status(self) -> None:
        sysid, compid = self.primary_control
        self.vehicle._send(
            self._mav.gimbal_manager_status_encode(
                self._boot_ms(),
                mavlink.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME,
                GIMBAL_DEVICE_ID,
                sysid,
                compid,
                0,
                0,
            )
        )

    def _send_gimbal_attitude(self) -> None:
        pitch, yaw = (math.radians(a) for a in self.aimed_angles())
        cp, sp, cy, sy = math.cos(pitch / 2), math.sin(pitch / 2), math.cos(yaw / 2), math.sin(yaw / 2)
        q = [cp * cy, -sp * sy, sp * cy, cp * sy]
        self.vehicle._send(
            self._mav.gimbal_device_attitude_status_encode(
                0,
                0,
                self._boot_ms(),
                mavlink.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME,
                q,
                float("nan"),
                float("nan"),
                float("nan"),
                0,
                float("nan"),
                float("nan"),
                GIMBAL_DEVICE_ID,
            )
        )


async def attach_cameras(vehicles: Sequence[SimVehicle], config: CameraConfig | None) -> None:
    """Give every vehicle of a fleet its camera (one RTSP port each) when the fleet's config has one."""
    if config is None:
        return
    for vehicle in vehicles:
        camera = SimCamera(vehicle=vehicle, config=config, peers=lambda: vehicles)
        await camera.start()
        vehicle.camera = camera
