"""``MavsdkCamera``: a vehicle's MAVLink camera and gimbal through MAVSDK's camera and gimbal plugins.

Discovery is MAVSDK's: it asks every component that sends a heartbeat for CAMERA_INFORMATION and
GIMBAL_MANAGER_INFORMATION, and ``status()`` reads its cached lists (no Python callback per message). The
camera plugin knows a stream's URI and resolution but not its encoding and asks for it only every 20 s, so
VIDEO_STREAM_INFORMATION is requested and read through MAVSDK's MavlinkDirect plugin (one callback per
announcement, a few per minute). Commands run on the link's executor and fail as ``LinkError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mavsdk.plugins.camera import Camera
from mavsdk.plugins.gimbal import ControlMode, Gimbal, GimbalMode, SendMode
from mavsdk.plugins.mavlink_direct import MavlinkDirect, MavlinkMessage

from mission.errors import LinkError
from mission.link.types import CameraInfo, CameraStatus, GimbalInfo, VideoStreamInfo

log = logging.getLogger(__name__)

Run = Callable[..., Awaitable[Any]]  # the link's _command(action, fn, *args)
_GCS_SYSID, _GCS_COMPID = 245, 190  # MAVSDK's own address as a ground station
_ENCODINGS = {1: "h264", 2: "h265"}
_STREAM_TYPES = {0: "rtsp", 1: "rtp_udp", 2: "tcp_mpeg", 3: "mpeg_ts"}
_REQUEST_MESSAGE = 512
_VIDEO_STREAM_INFORMATION = 269


def _text(value: Any) -> str:
    if isinstance(value, list):  # char arrays may come as lists of codes
        return bytes(int(v) for v in value if int(v)).decode("utf-8", "replace")
    return str(value or "").rstrip("\x00")


def parse_stream_info(fields: dict[str, Any], *, component_id: int, now: float) -> VideoStreamInfo:
    """A VIDEO_STREAM_INFORMATION message's fields (MavlinkDirect JSON) as a typed record."""
    return VideoStreamInfo(
        component_id=component_id,
        stream_id=int(fields.get("stream_id", 0)),
        uri=_text(fields.get("uri", "")),
        encoding=_ENCODINGS.get(int(fields.get("encoding", 0) or 0), "unknown"),
        stream_type=_STREAM_TYPES.get(int(fields.get("type", 0) or 0), "rtsp"),
        width_px=int(fields.get("resolution_h", 0) or 0),
        height_px=int(fields.get("resolution_v", 0) or 0),
        fps=float(fields.get("framerate", 0.0) or 0.0),
        bitrate_bps=int(fields.get("bitrate", 0) or 0),
        hfov_deg=int(fields.get("hfov", 0) or 0),
        running=bool(int(fields.get("flags", 0) or 0) & 1),
        received_at=now,
    )


class MavsdkCamera:
    """CameraControl for one vehicle: discovery from MAVSDK's caches, commands through ``run``."""

    def __init__(self, *, system: Any, vehicle_id: int, run: Run) -> None:
        self._vehicle_id = vehicle_id
        self._run = run
        self._loop = asyncio.get_running_loop()
        self._camera: Camera | None = Camera(system)
        self._gimbal: Gimbal | None = Gimbal(system)
        self._direct: MavlinkDirect | None = MavlinkDirect(system)
        self._stream: VideoStreamInfo | None = None
        self._stream_seen = asyncio.Event()
        self._in_control: int | None = None
        self._subscription = self._direct.subscribe_message("VIDEO_STREAM_INFORMATION", self._on_stream_info)

    # ---- discovery ---------------------------------------------------------------------------------
    def _on_stream_info(self, message: MavlinkMessage, _user_data: object) -> None:  # MAVSDK's thread
        try:
            fields = json.loads(message.fields_json)
            info = parse_stream_info(fields, component_id=message.component_id, now=time.time())
        except (ValueError, TypeError) as err:
            log.warning("vehicle %d: unreadable VIDEO_STREAM_INFORMATION: %s", self._vehicle_id, err)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._set_stream, info)

    def _set_stream(self, info: VideoStreamInfo) -> None:
        if self._stream != info:
            log.info("vehicle %d: video stream %s (%s)", self._vehicle_id, info.uri, info.encoding)
        self._stream = info
        self._stream_seen.set()

    def _camera_info(self) -> CameraInfo | None:
        camera = self._camera
        if camera is None:
            return None
        # MAVSDK lists every component that answered CAMERA_INFORMATION; the first one is the camera used.
        for info in camera.camera_list().cameras:
            return CameraInfo(
                component_id=int(info.component_id),
                vendor=info.vendor_name,
                model=info.model_name,
                width_px=int(info.horizontal_resolution_px),
                height_px=int(info.vertical_resolution_px),
            )
        return None

    def _gimbal_info(self) -> GimbalInfo | None:
        gimbal = self._gimbal
        if gimbal is None:
            return None
        for item in gimbal.gimbal_list().gimbals:
            return GimbalInfo(
                gimbal_id=int(item.gimbal_id),
                vendor=item.vendor_name,
                model=item.model_name,
                manager_component_id=int(item.gimbal_manager_component_id),
                device_id=int(item.gimbal_device_id),
            )
        return None

    def status(self) -> CameraStatus:
        """Camera, stream and gimbal as announced so far."""
        camera = self._camera_info()
        stream = self._stream
        if camera is not None and stream is not None and stream.component_id != camera.component_id:
            stream = None  # a stream of another component than the camera in use
        return CameraStatus(camera=camera, stream=stream, gimbal=self._gimbal_info())

    async def request_stream_info(self, timeout_s: float = 3.0) -> VideoStreamInfo | None:
        """Ask the camera for VIDEO_STREAM_INFORMATION (MAVSDK itself asks only every 20 s)."""
        camera = self._camera_info()
        direct = self._direct
        if camera is None or direct is None:
            return None
        self._stream_seen.clear()
        command = MavlinkMessage(
            message_name="COMMAND_LONG",
            system_id=_GCS_SYSID,
            component_id=_GCS_COMPID,
            target_system_id=self._vehicle_id,
            target_component_id=camera.component_id,
            fields_json=json.dumps(
                {
                    "target_system": self._vehicle_id,
                    "target_component": camera.component_id,
                    "command": _REQUEST_MESSAGE,
                    "confirmation": 0,
                    "param1": float(_VIDEO_STREAM_INFORMATION),
                    **{f"param{i}": 0.0 for i in range(2, 8)},
                }
            ),
        )
        await self._run("request video stream information", direct.send_command, command, retries=0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stream_seen.wait(), timeout_s)
        return self.status().stream

    # ---- commands ----------------------------------------------------------------------------------
    def _require_camera(self, action: str) -> tuple[Camera, int]:
        camera, info = self._camera, self._camera_info()
        if camera is None or info is None:
            raise self._link_error(action, "no camera announced (no CAMERA_INFORMATION from the vehicle)")
        return camera, info.component_id

    def _require_gimbal(self, action: str) -> tuple[Gimbal, int]:
        gimbal, info = self._gimbal, self._gimbal_info()
        if gimbal is None or info is None:
            raise self._link_error(
                action, "no gimbal announced (no GIMBAL_MANAGER_INFORMATION from the vehicle)"
            )
        return gimbal, info.gimbal_id

    def _link_error(self, action: str, why: str) -> LinkError:
        return LinkError(
            f"vehicle {self._vehicle_id}: {action} failed: {why}",
            vehicle_id=self._vehicle_id,
            action=action,
            code="link.failed",
        )

    async def take_photo(self) -> None:
        """One still on the camera's own storage (IMAGE_START_CAPTURE)."""
        camera, component = self._require_camera("take photo")
        await self._run("take photo", camera.take_photo, component, retries=0)

    async def start_video(self) -> None:
        """Record on the camera's own storage (VIDEO_START_CAPTURE)."""
        camera, component = self._require_camera("start video")
        await self._run("start video", camera.start_video, component, retries=0)

    async def stop_video(self) -> None:
        """Stop recording on the camera (VIDEO_STOP_CAPTURE)."""
        camera, component = self._require_camera("stop video")
        await self._run("stop video", camera.stop_video, component, retries=0)

    async def point_at(self, lat: float, lon: float, alt_amsl_m: float) -> None:
        """Region of interest (DO_SET_ROI_LOCATION to the gimbal manager)."""
        if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
            raise self._link_error("point gimbal", f"position ({lat}, {lon}) is not a WGS84 lat/lon")
        if not math.isfinite(alt_amsl_m):
            raise self._link_error("point gimbal", f"altitude {alt_amsl_m} is not a number")
        gimbal, gimbal_id = self._require_gimbal("point gimbal")
        await self._run("point gimbal", gimbal.set_roi_location, gimbal_id, lat, lon, float(alt_amsl_m))

    async def point_angles(self, pitch_deg: float, yaw_deg: float) -> None:
        """Pitch and yaw (DO_GIMBAL_MANAGER_PITCHYAW), taking primary control of the gimbal first."""
        if not (math.isfinite(pitch_deg) and -90 <= pitch_deg <= 30):
            raise self._link_error("aim gimbal", f"pitch must be in -90..30 degrees, got {pitch_deg}")
        if not (math.isfinite(yaw_deg) and -180 <= yaw_deg <= 180):
            raise self._link_error("aim gimbal", f"yaw must be in -180..180 degrees, got {yaw_deg}")
        gimbal, gimbal_id = self._require_gimbal("aim gimbal")
        if self._in_control != gimbal_id:
            await self._run("take gimbal control", gimbal.take_control, gimbal_id, ControlMode.PRIMARY)
            self._in_control = gimbal_id
        await self._run(
            "aim gimbal",
            gimbal.set_angles,
            gimbal_id,
            0.0,
            float(pitch_deg),
            float(yaw_deg),
            GimbalMode.YAW_FOLLOW,
            SendMode.ONCE,
        )

    def close(self) -> None:
        """Destroy the plugins (before the MAVSDK system goes)."""
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.unsubscribe_message(self._subscription)
        for plugin in (direct, self._gimbal, self._camera):
            if plugin is not None:
                plugin.destroy()
        self._gimbal = self._camera = None
