"""Camera and gimbal commands to a vehicle, sent through the service's one Commander (audited first).

``send`` is the one place these commands leave the video service (the API, dispatch automation and the
panel all call it); the Commander writes ``cmd.camera.<kind>`` to the audit log before the command goes out
and ``cmd.camera.<kind>.failed`` if it fails, as for every other vehicle command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from mission.errors import BadRequest
from mission.flights.commander import Commander, Refs
from mission.link.types import CameraControl, VehicleLink

CommandKind = Literal["take_photo", "start_video", "stop_video", "point_at", "point_angles"]


@dataclass(frozen=True, kw_only=True)
class CameraCommand:
    """One command for a vehicle's camera or gimbal."""

    kind: CommandKind
    lat: float | None = None
    lon: float | None = None
    alt_amsl_m: float | None = None
    pitch_deg: float | None = None
    yaw_deg: float | None = None
    incident_id: int | None = None
    reason: str = ""

    def check(self) -> None:
        """BadRequest naming what a command lacks (before anything is audited or sent)."""
        if self.kind == "point_at" and (self.lat is None or self.lon is None or self.alt_amsl_m is None):
            raise BadRequest("point_at needs lat, lon and alt_amsl_m", code="video.point_at_needs_position")
        if self.kind == "point_angles" and (self.pitch_deg is None or self.yaw_deg is None):
            raise BadRequest(
                "point_angles needs pitch_deg and yaw_deg", code="video.point_angles_needs_angles"
            )


@dataclass(frozen=True, slots=True)
class _CameraCall:
    """A CameraCommand as the Commander sends it, through the vehicle link's camera."""

    command: CameraCommand
    name: ClassVar[str] = "camera"

    def details(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self.command).items() if v not in (None, "") and k != "kind"}
        return {"camera": self.command.kind, **body}

    async def send(self, link: VehicleLink) -> None:
        camera: CameraControl = link.camera  # type: ignore[attr-defined]
        c = self.command
        if c.kind == "take_photo":
            await camera.take_photo()
        elif c.kind == "start_video":
            await camera.start_video()
        elif c.kind == "stop_video":
            await camera.stop_video()
        elif c.kind == "point_at":
            assert c.lat is not None and c.lon is not None and c.alt_amsl_m is not None
            await camera.point_at(c.lat, c.lon, c.alt_amsl_m)
        else:
            assert c.pitch_deg is not None and c.yaw_deg is not None
            await camera.point_angles(c.pitch_deg, c.yaw_deg)


async def send(*, commander: Commander, vehicle_id: int, command: CameraCommand, actor: str) -> None:
    """Send ``command`` through the Commander: audited (``cmd.camera``) before it goes out."""
    command.check()
    await commander.send(
        vehicle_id, _CameraCall(command), actor=actor, refs=Refs(incident_id=command.incident_id)
    )
