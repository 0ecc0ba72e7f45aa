"""Camera and gimbal commands to a vehicle: each is written to the audit log before it is sent.

``send`` is the one place these commands leave the service (the API, dispatch automation and the panel all
call it), so they can later be routed through the service's single command chokepoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy.engine import Engine

from mission.audit import service as audit
from mission.db import session_scope
from mission.errors import BadRequest
from mission.link.types import CameraControl

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


async def send(
    *, engine: Engine, camera: CameraControl, vehicle_id: int, command: CameraCommand, actor: str
) -> None:
    """Audit ``command`` (``camera.<kind>``), then send it; a failure is audited too and re-raised."""
    details = {k: v for k, v in asdict(command).items() if v not in (None, "") and k != "kind"}
    with session_scope(engine) as session:
        audit.record(
            session=session,
            actor=actor,
            action=f"camera.{command.kind}",
            target=f"vehicle:{vehicle_id}",
            details=details,
        )
    try:
        if command.kind == "take_photo":
            await camera.take_photo()
        elif command.kind == "start_video":
            await camera.start_video()
        elif command.kind == "stop_video":
            await camera.stop_video()
        elif command.kind == "point_at":
            if command.lat is None or command.lon is None or command.alt_amsl_m is None:
                raise BadRequest("point_at needs lat, lon and alt_amsl_m")
            await camera.point_at(command.lat, command.lon, command.alt_amsl_m)
        elif command.kind == "point_angles":
            if command.pitch_deg is None or command.yaw_deg is None:
                raise BadRequest("point_angles needs pitch_deg and yaw_deg")
            await camera.point_angles(command.pitch_deg, command.yaw_deg)
        else:
            raise BadRequest(f"unknown camera command {command.kind!r}")
    except Exception as err:
        with session_scope(engine) as session:
            audit.record(
                session=session,
                actor=actor,
                action=f"camera.{command.kind}.failed",
                target=f"vehicle:{vehicle_id}",
                details={**details, "error": str(err)[:500]},
            )
        raise
