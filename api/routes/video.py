"""Live video and evidence over HTTP: status, recordings, verification, export, snapshots, camera commands.

Watching itself (WebRTC signaling) is the ``/ws/video`` websocket in api/routes/video_ws.py.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AnyRole, IdPath, SessionDep, get_runtime, require_roles
from api.pagination import Page, Paging
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.errors import LinkError
from mission.link.types import CameraInfo, GimbalInfo, VideoStreamInfo
from mission.video import evidence
from mission.video.commands import CameraCommand
from mission.video.models import EvidenceReport, RecordingRead, RecordingStart, SegmentRead, SnapshotRead
from mission.video.service import StreamStatus, VideoService

router = APIRouter(prefix="/api/v1/video", tags=["video"])
Operator = Annotated[Principal, Depends(require_roles(Role.pilot, Role.dispatcher))]

Custodian = Annotated[Principal, Depends(require_roles(Role.dispatcher))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


def get_video(request: Request) -> VideoService:
    """The running video service; 503 while it is not up or switched off."""
    video = getattr(get_runtime(request), "video", None)
    if not isinstance(video, VideoService):
        raise LinkError(
            "live video is switched off (video_enabled) or not running",
            code="api.video.live_video_switched_off",
        )
    return video


VideoDep = Annotated[VideoService, Depends(get_video)]


class StatusOut(BaseModel):
    """A vehicle's video: ``state`` live/idle/starting/stalled/unavailable, ``message`` for people."""

    vehicle_id: int
    state: str
    reason: str
    message: str
    camera: CameraInfo | None
    stream: VideoStreamInfo | None
    gimbal: GimbalInfo | None
    viewers: int
    ingest: bool
    fps: float
    width: int
    height: int
    codec: str | None
    transcoding: bool
    recording: RecordingRead | None


def _status_out(s: StreamStatus) -> StatusOut:
    message = "live" if s.state == "live" else (f"no video: {s.reason}" if s.reason else s.state)
    return StatusOut(
        vehicle_id=s.vehicle_id,
        state=s.state,
        reason=s.reason,
        message=message,
        camera=s.camera,
        stream=s.stream,
        gimbal=s.gimbal,
        viewers=s.viewers,
        ingest=s.ingest,
        fps=s.fps,
        width=s.width,
        height=s.height,
        codec=s.codec,
        transcoding=s.transcoding,
        recording=s.recording,
    )


class RecordingDetail(BaseModel):
    recording: RecordingRead
    segments: list[SegmentRead]


class CameraRecording(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool = Field(description="start (true) or stop (false) recording on the vehicle's own storage")


class GimbalRoi(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    alt_amsl_m: float | None = Field(
        default=None,
        ge=-500,
        le=9000,
        allow_inf_nan=False,
        description="default: ground at the vehicle's home",
    )
    incident_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class GimbalAngles(BaseModel):
    """Point the camera along a road or a sector: pitch down from the horizon, yaw from the nose."""

    model_config = ConfigDict(extra="forbid")

    pitch_deg: float = Field(ge=-90, le=30, allow_inf_nan=False)
    yaw_deg: float = Field(ge=-180, le=180, allow_inf_nan=False)


class CommandOut(BaseModel):
    vehicle_id: int
    command: str
    message: str


class PurgeOut(BaseModel):
    purged: list[int]


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incident_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


@router.get(
    "/vehicles", response_model=list[StatusOut], summary="Every vehicle's camera, stream and recording"
)
def list_status(video: VideoDep, _who: AnyRole) -> list[StatusOut]:
    return [_status_out(s) for s in video.statuses()]


@router.get("/vehicles/{vehicle_id}", response_model=StatusOut, summary="One vehicle's video status")
def vehicle_status(vehicle_id: IdPath, video: VideoDep, _who: AnyRole) -> StatusOut:
    return _status_out(video.status(vehicle_id))


@router.post(
    "/vehicles/{vehicle_id}/recordings",
    response_model=RecordingRead,
    status_code=status.HTTP_201_CREATED,
    summary="Start an evidence recording of the vehicle's stream",
)
async def start_recording(
    vehicle_id: IdPath, video: VideoDep, who: Operator, data: RecordingStart | None = None
) -> RecordingRead:
    return await video.start_recording(
        vehicle_id, actor=who.username, reason="manual", incident_id=data.incident_id if data else None
    )


@router.post("/recordings/{recording_id}/stop", response_model=RecordingRead, summary="Stop a recording")
async def stop_recording(recording_id: IdPath, video: VideoDep, who: Operator) -> RecordingRead:
    return await video.stop_recording(recording_id, actor=who.username)


@router.get("/recordings", response_model=Page[RecordingRead], summary="Recordings, newest first")
def list_recordings(
    session: SessionDep,
    paging: Paging,
    _who: AnyRole,
    vehicle_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Page[RecordingRead]:
    items, total = evidence.list_recordings(
        session=session,
        limit=paging.limit,
        offset=paging.offset,
        vehicle_id=vehicle_id,
        incident_id=incident_id,
    )
    return paging.page(items, total)


@router.get(
    "/recordings/{recording_id}", response_model=RecordingDetail, summary="A recording and its segments"
)
def recording_detail(recording_id: IdPath, session: SessionDep, _who: AnyRole) -> RecordingDetail:
    row = evidence.get_recording(session=session, recording_id=recording_id)
    segs = evidence.segments_of(session=session, recording_id=recording_id)
    return RecordingDetail(
        recording=RecordingRead.model_validate(row), segments=[SegmentRead.model_validate(s) for s in segs]
    )


@router.get(
    "/recordings/{recording_id}/verify",
    response_model=EvidenceReport,
    summary="Prove a recording untouched: every segment's SHA-256 against the audit log, and both chains",
)
async def verify_recording(recording_id: IdPath, video: VideoDep, _who: Operator) -> EvidenceReport:
    return await asyncio.to_thread(video.verify, recording_ids=[recording_id])


@router.get(
    "/incidents/{incident_id}/export",
    summary="An incident's video as a zip: segments plus manifest.json (hashes, chains, audit entries)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
async def export_incident(incident_id: IdPath, video: VideoDep, request: Request, who: Custodian) -> Response:
    def build() -> bytes:
        from mission.db import session_scope

        with session_scope(request.app.state.engine) as session:
            return evidence.export_incident(
                session=session, storage=video.storage, incident_id=incident_id, actor=who.username
            )

    body = await asyncio.to_thread(build)
    return Response(
        content=body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}-video.zip"'},
    )


@router.post("/retention/purge", response_model=PurgeOut, summary="Apply the retention rule now")
async def purge(video: VideoDep, _who: Admin) -> PurgeOut:
    return PurgeOut(purged=await asyncio.to_thread(video.purge))


@router.post(
    "/vehicles/{vehicle_id}/snapshots",
    response_model=SnapshotRead,
    status_code=status.HTTP_201_CREATED,
    summary="A still of the live picture, stored and hashed into the audit log",
)
async def take_snapshot(
    vehicle_id: IdPath, video: VideoDep, who: Operator, data: SnapshotIn | None = None
) -> SnapshotRead:
    return await video.snapshot(
        vehicle_id, actor=who.username, incident_id=data.incident_id if data else None
    )


@router.get("/snapshots/{snapshot_id}.jpg", response_class=FileResponse, summary="A snapshot's JPEG")
def snapshot_image(snapshot_id: IdPath, video: VideoDep, who: AnyRole) -> FileResponse:
    video.check_watcher(who.role.value)
    return FileResponse(video.snapshot_file(snapshot_id), media_type="image/jpeg")


@router.post(
    "/vehicles/{vehicle_id}/camera/photo", response_model=CommandOut, summary="Take a photo on the vehicle"
)
async def take_photo(vehicle_id: IdPath, video: VideoDep, who: Operator) -> CommandOut:
    await video.command(vehicle_id, CameraCommand(kind="take_photo"), actor=who.username)
    return CommandOut(
        vehicle_id=vehicle_id, command="take_photo", message="photo taken on the vehicle's camera"
    )


@router.post(
    "/vehicles/{vehicle_id}/camera/recording",
    response_model=CommandOut,
    summary="Start or stop recording on the vehicle's own storage",
)
async def camera_recording(
    vehicle_id: IdPath, data: CameraRecording, video: VideoDep, who: Operator
) -> CommandOut:
    command = CameraCommand(kind="start_video") if data.on else CameraCommand(kind="stop_video")
    await video.command(vehicle_id, command, actor=who.username)
    return CommandOut(
        vehicle_id=vehicle_id,
        command=command.kind,
        message=f"vehicle recording {'started' if data.on else 'stopped'}",
    )


@router.post(
    "/vehicles/{vehicle_id}/gimbal/roi", response_model=CommandOut, summary="Point the gimbal at a location"
)
async def gimbal_roi(
    vehicle_id: IdPath, data: GimbalRoi, video: VideoDep, request: Request, who: Operator
) -> CommandOut:
    alt = data.alt_amsl_m
    if alt is None:
        alt = get_runtime(request).fleet.profile(vehicle_id).home_alt_m
    command = CameraCommand(
        kind="point_at", lat=data.lat, lon=data.lon, alt_amsl_m=alt, incident_id=data.incident_id
    )
    await video.command(vehicle_id, command, actor=who.username)
    return CommandOut(
        vehicle_id=vehicle_id, command="point_at", message=f"gimbal pointed at {data.lat:.5f}, {data.lon:.5f}"
    )


@router.post(
    "/vehicles/{vehicle_id}/gimbal/angles",
    response_model=CommandOut,
    summary="Aim the gimbal by pitch and yaw (along a road or a sector)",
)
async def gimbal_angles(vehicle_id: IdPath, data: GimbalAngles, video: VideoDep, who: Operator) -> CommandOut:
    command = CameraCommand(kind="point_angles", pitch_deg=data.pitch_deg, yaw_deg=data.yaw_deg)
    await video.command(vehicle_id, command, actor=who.username)
    return CommandOut(
        vehicle_id=vehicle_id,
        command="point_angles",
        message=f"gimbal at pitch {data.pitch_deg:.0f}, yaw {data.yaw_deg:.0f}",
    )
