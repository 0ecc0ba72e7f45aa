"""``VideoService``: discovery, on-demand ingest, WebRTC viewers, evidence recordings, snapshots.

Built by the Runtime. One ``StreamIngest`` per vehicle however many viewers and recordings use it; it
starts with the first viewer or recording and stops ``idle_stop_s`` after the last one is gone. Nothing here
waits on a vehicle or a stream longer than the configured timeouts, and none of it runs on the telemetry or
command paths: a dead stream costs a status line, not a hung request.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import av
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.audit import service as audit
from mission.auth.roles import Role
from mission.control import service as control
from mission.db import session_scope
from mission.errors import Conflict, NotFound, PermissionDenied, VehicleUnavailable
from mission.fleet.manager import VehicleProfile
from mission.flights.commander import Commander
from mission.incidents.models import Incident
from mission.link.types import CameraControl, CameraInfo, GimbalInfo, VehicleLink, VideoStreamInfo
from mission.telemetry.events import Event
from mission.telemetry.hub import TelemetryHub
from mission.video import commands, evidence, relay
from mission.video.automation import DispatchVideo
from mission.video.config import VideoConfig
from mission.video.errors import VideoUnavailable
from mission.video.ingest import StreamIngest, untranscodable
from mission.video.models import (
    EvidenceReport,
    Recording,
    RecordingRead,
    SnapshotRead,
    VideoSnapshot,
)
from mission.video.recorder import SegmentFile, SegmentRecorder, file_sha256

log = logging.getLogger(__name__)
_GAP_TOLERANCE_S = 0.2  # a pause longer than 200 ms between segments or 600 ms inside one is a gap


class Fleet(Protocol):
    """What the video service needs of the fleet manager."""

    def link(self, vehicle_id: int) -> VehicleLink: ...
    def profile(self, vehicle_id: int) -> VehicleProfile: ...
    def profiles(self) -> list[VehicleProfile]: ...


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A vehicle's video as the panel shows it; ``reason`` says why there is none."""

    vehicle_id: int
    state: str  # live | idle | starting | stalled | unavailable
    reason: str
    camera: CameraInfo | None
    stream: VideoStreamInfo | None
    gimbal: GimbalInfo | None
    viewers: int
    ingest: bool
    fps: float
    width: int
    height: int
    codec: str | None  # the camera's
    transcoding: bool  # its pictures are encoded again as H.264 for browsers (one encoder per stream)
    recording: RecordingRead | None


@dataclass(frozen=True, slots=True)
class ViewerAnswer:
    viewer_id: str
    sdp: str


class VideoService:
    """The service's video: ``async with VideoService(...) as video``."""

    def __init__(
        self, *, engine: Engine, fleet: Fleet, hub: TelemetryHub, commander: Commander, config: VideoConfig
    ) -> None:
        self._commander = commander
        self._engine = engine
        self._fleet = fleet
        self._hub = hub
        self.config = config
        self.storage = config.storage_dir.resolve()
        self._ingests: dict[int, StreamIngest] = {}
        self._idle_since: dict[int, float] = {}
        self._claims: dict[int, int] = {}  # vehicle -> requests between asking for its ingest and using it
        self._viewers: dict[str, relay.Viewer] = {}
        self._recorders: dict[int, tuple[int, SegmentRecorder]] = {}  # recording id -> (vehicle, recorder)
        self._reasons: dict[int, str] = {}
        self._dropped: dict[str, str] = {}  # viewer id -> why it was dropped (the newest few hundred)
        self._segments: asyncio.Queue[SegmentFile] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._locks: dict[int, asyncio.Lock] = {}
        self._unattached: dict[int, SegmentRecorder] = {}  # resumed recordings waiting for their stream
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> VideoService:
        self._loop = asyncio.get_running_loop()
        for interrupted in await asyncio.to_thread(self._recover_interrupted):
            self._resume(interrupted)
        self._tasks = [
            asyncio.create_task(self._attach_resumed(), name="video:resume"),
            asyncio.create_task(self._store_segments(), name="video:segments"),
            asyncio.create_task(self._housekeeping(), name="video:housekeeping"),
            asyncio.create_task(self._retention(), name="video:retention"),
            asyncio.create_task(
                DispatchVideo(
                    engine=self._engine,
                    hub=self._hub,
                    video=self,
                    record=self.config.auto_record,
                    point=self.config.gimbal_on_scene,
                ).run(),
                name="video:dispatch",
            ),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        others = [t for t in self._tasks if t.get_name() != "video:segments"]
        (writer,) = [t for t in self._tasks if t.get_name() == "video:segments"]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for viewer in list(self._viewers.values()):
            await self._drop_viewer(viewer, "service stopping")
        for rid in list(self._recorders):
            with contextlib.suppress(Exception):
                await self.stop_recording(rid, actor="system:shutdown")
        await asyncio.gather(*(ing.stop() for ing in self._ingests.values()), return_exceptions=True)
        self._ingests.clear()
        await self._segments.join()  # every closed segment is stored before we go
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        self._tasks = []

    def _recover_interrupted(self) -> list[evidence.Interrupted]:
        """Recordings the service died in: their unstored segments chained in, the interruption audited."""
        with session_scope(self._engine) as session:
            return evidence.recover_interrupted(
                session=session,
                storage=self.storage,
                actor="system:restart",
                gap_tolerance_s=_GAP_TOLERANCE_S,
            )

    def _resume(self, interrupted: evidence.Interrupted) -> None:
        """The recording goes on as new segments of itself once its vehicle's stream is back."""
        loop = asyncio.get_running_loop()
        recorder = SegmentRecorder(
            recording_id=interrupted.recording_id,
            directory=self.storage / interrupted.directory,
            segment_s=self.config.segment_s,
            on_segment=lambda seg: self._queue_segment(loop, seg),
            first_seq=interrupted.next_seq,
            prev_end=interrupted.last_end,
        )
        self._recorders[interrupted.recording_id] = (interrupted.vehicle_id, recorder)
        self._unattached[interrupted.recording_id] = recorder

    async def _attach_resumed(self) -> None:
        """Attach each resumed recording to its vehicle's stream as soon as there is one (retrying)."""
        while self._unattached:
            for rid, recorder in list(self._unattached.items()):
                vid = self._recorders[rid][0] if rid in self._recorders else None
                if vid is None:  # stopped meanwhile
                    self._unattached.pop(rid, None)
                    continue
                try:
                    with self._claim(vid):
                        ingest = await self._ensure_ingest(vid)
                except (NotFound, VideoUnavailable):
                    continue  # not registered again, connected or announced yet: try again (or stop it)
                if self._unattached.pop(rid, None) is None:
                    continue
                ingest.attach(recorder)
                await asyncio.to_thread(
                    self._audit,
                    "system:restart",
                    "video.record.resume",
                    f"recording:{rid}",
                    {"vehicle_id": vid, "next_seq": recorder.next_seq},
                )
                self._hub.emit(
                    Event(
                        kind="video.recording",
                        vehicle_id=vid,
                        data={"recording_id": rid, "state": "recording", "resumed": True},
                    )
                )
            if self._unattached:
                await asyncio.sleep(1.0)

    # ---- discovery and status ------------------------------------------------------------------------
    def _camera(self, vehicle_id: int) -> CameraControl:
        try:
            link = self._fleet.link(vehicle_id)
        except NotFound:
            raise
        except VehicleUnavailable as err:
            raise VideoUnavailable(
                f"vehicle not connected ({err})", vehicle_id=vehicle_id, code="video.vehicle_not_connected"
            ) from None
        camera = getattr(link, "camera", None)
        if not isinstance(camera, CameraControl):
            raise VideoUnavailable(
                "camera not announced (the vehicle link has no camera support)",
                vehicle_id=vehicle_id,
                code="video.link_has_no_camera",
            )
        return camera

    async def stream_info(self, vehicle_id: int) -> VideoStreamInfo:
        """The vehicle's announced stream, asked for when not known yet; VideoUnavailable naming why not."""
        camera = self._camera(vehicle_id)
        deadline = time.monotonic() + self.config.discovery_timeout_s
        status = camera.status()
        while status.camera is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = camera.status()
        if status.camera is None:
            raise VideoUnavailable(
                "camera not announced (no CAMERA_INFORMATION from the vehicle)",
                vehicle_id=vehicle_id,
                code="video.camera_not_announced",
            )
        stream = status.stream or await camera.request_stream_info(self.config.discovery_timeout_s)
        if stream is None or not stream.uri:
            raise VideoUnavailable(
                "camera announced no video stream (no VIDEO_STREAM_INFORMATION)",
                vehicle_id=vehicle_id,
                code="video.no_video_stream",
            )
        why = "" if stream.encoding == "unknown" else self._untranscodable(stream.encoding)
        if why:
            raise VideoUnavailable(
                why, vehicle_id=vehicle_id, code="video.unavailable", params={"reason": why}
            )
        return stream

    def status(self, vehicle_id: int) -> StreamStatus:
        """The vehicle's video now (never waits)."""
        self._fleet.profile(vehicle_id)  # NotFound for an unknown vehicle
        camera = stream = gimbal = None
        reason = self._reasons.get(vehicle_id, "")
        try:
            cam = self._camera(vehicle_id)
            found = cam.status()
            camera, stream, gimbal = found.camera, found.stream, found.gimbal
            if camera is None:
                reason = "camera not announced"
            elif stream is not None and stream.encoding != "unknown":
                reason = self._untranscodable(stream.encoding) or reason
        except VideoUnavailable as err:
            reason = err.reason
        ingest = self._ingests.get(vehicle_id)
        if ingest is not None and ingest.running:
            state = {"live": "live", "starting": "starting", "stalled": "stalled"}.get(
                ingest.state, "unavailable"
            )
            reason = ingest.reason if state != "live" else ""
        elif camera is not None and not reason:
            state = "idle"
        else:
            state = "unavailable"
        recording = self._active_recording(vehicle_id)
        viewers = sum(1 for v in self._viewers.values() if v.vehicle_id == vehicle_id)
        return StreamStatus(
            vehicle_id=vehicle_id,
            state=state,
            reason=reason if state != "live" else "",
            camera=camera,
            stream=stream,
            gimbal=gimbal,
            viewers=viewers,
            ingest=ingest is not None and ingest.running,
            fps=round(ingest.fps, 1) if ingest else 0.0,
            width=ingest.width if ingest else (stream.width_px if stream else 0),
            height=ingest.height if ingest else (stream.height_px if stream else 0),
            codec=ingest.codec if ingest else (stream.encoding if stream else None),
            transcoding=ingest is not None and ingest.running and ingest.transcoding,
            recording=recording,
        )

    def _untranscodable(self, encoding: str) -> str:
        return untranscodable(encoding, transcode=self.config.transcode)

    def statuses(self) -> list[StreamStatus]:
        """Every registered vehicle's video."""
        return [self.status(p.id) for p in sorted(self._fleet.profiles(), key=lambda p: p.id)]

    def _active_recording(self, vehicle_id: int) -> RecordingRead | None:
        rids = [rid for rid, (vid, _) in self._recorders.items() if vid == vehicle_id]
        if not rids:
            return None
        with Session(self._engine) as session:
            row = session.get(Recording, max(rids))
            return RecordingRead.model_validate(row) if row else None

    # ---- ingest --------------------------------------------------------------------------------------
    def _on_ingest_state(self, ingest: StreamIngest) -> None:
        if ingest.state != "live":
            self._reasons[ingest.vehicle_id] = ingest.reason
        else:
            self._reasons.pop(ingest.vehicle_id, None)
        self._hub.emit(
            Event(
                kind="video.status",
                vehicle_id=ingest.vehicle_id,
                data={"state": ingest.state, "reason": ingest.reason},
            )
        )

    async def _ensure_ingest(self, vehicle_id: int) -> StreamIngest:
        lock = self._locks.setdefault(vehicle_id, asyncio.Lock())
        async with lock:
            ingest = self._ingests.get(vehicle_id)
            if ingest is not None and ingest.running:
                self._idle_since.pop(vehicle_id, None)
                return ingest
            if ingest is not None:  # ended (an unsupported codec) or stopped: look again
                del self._ingests[vehicle_id]
            try:
                stream = await self.stream_info(vehicle_id)
            except VideoUnavailable as err:
                self._reasons[vehicle_id] = err.reason
                raise
            ingest = StreamIngest(
                vehicle_id=vehicle_id,
                stream=stream,
                rtsp_transport=self.config.rtsp_transport,
                open_timeout_s=self.config.open_timeout_s,
                read_timeout_s=self.config.read_timeout_s,
                on_state=self._on_ingest_state,
                transcode=self.config.transcode,
            )
            ingest.start()
            self._ingests[vehicle_id] = ingest
            self._idle_since.pop(vehicle_id, None)
            return ingest

    def ingest_count(self, vehicle_id: int) -> int:
        """Running ingests of the vehicle's stream (0 or 1)."""
        ingest = self._ingests.get(vehicle_id)
        return 1 if ingest is not None and ingest.running else 0

    def _users(self, vehicle_id: int) -> int:
        viewers = sum(1 for v in self._viewers.values() if v.vehicle_id == vehicle_id)
        recorders = sum(1 for vid, _ in self._recorders.values() if vid == vehicle_id)
        return viewers + recorders + self._claims.get(vehicle_id, 0)

    @contextlib.contextmanager
    def _claim(self, vehicle_id: int) -> Iterator[None]:
        """Hold the vehicle's ingest while a viewer, recording or snapshot waits for it to come up.

        Without it the idle stop (``idle_stop_s``) could end an ingest that a first viewer is still waiting
        for: on a loaded machine opening a stream takes longer than the idle delay.
        """
        self._claims[vehicle_id] = self._claims.get(vehicle_id, 0) + 1
        try:
            yield
        finally:
            left = self._claims[vehicle_id] - 1
            if left:
                self._claims[vehicle_id] = left
            else:
                del self._claims[vehicle_id]

    async def _live_ingest(self, vehicle_id: int) -> StreamIngest:
        ingest = await self._ensure_ingest(vehicle_id)
        # a little longer than the ingest's own open timeout, so that its reason is the one given
        wait = self.config.open_timeout_s + 1.0
        if not await ingest.wait_live(wait):
            reason, uri = ingest.reason, ingest.stream.uri
            if reason:
                raise VideoUnavailable(
                    reason, vehicle_id=vehicle_id, code="video.unavailable", params={"reason": reason}
                )
            if ingest.running:
                raise VideoUnavailable(
                    f"stream unreachable ({uri}: no answer in time, {wait:.0f} s)",
                    vehicle_id=vehicle_id,
                    code="video.stream_unreachable",
                    params={"uri": uri, "s": f"{wait:.0f}"},
                )
            raise VideoUnavailable(
                f"stream stopped before it came up ({uri})",
                vehicle_id=vehicle_id,
                code="video.stream_stopped",
                params={"uri": uri},
            )
        return ingest

    # ---- viewers -------------------------------------------------------------------------------------
    def check_watcher(self, role: str) -> None:
        """Observers watch only where the deployment allows it."""
        if role == Role.observer.value and not self.config.observers_allowed:
            raise PermissionDenied(
                "observers may not watch video on this deployment (video_observers_allowed is off)",
                code="video.observers_may_not_watch",
            )

    async def open_viewer(self, vehicle_id: int, *, offer_sdp: str, user: str, role: str) -> ViewerAnswer:
        """Answer a WebRTC offer with the vehicle's live stream."""
        self.check_watcher(role)
        self._fleet.profile(vehicle_id)
        if sum(1 for v in self._viewers.values() if v.vehicle_id == vehicle_id) >= self.config.max_viewers:
            raise Conflict(
                f"vehicle {vehicle_id} already has {self.config.max_viewers} viewers (video_max_viewers)",
                code="video.too_many_viewers",
                params={"vehicle_id": vehicle_id, "max_viewers": self.config.max_viewers},
            )
        with self._claim(vehicle_id):
            ingest = await self._live_ingest(vehicle_id)
            sink = ingest.subscribe(max_frames=self.config.viewer_queue_frames, name=f"viewer:{user}")
            try:
                viewer, sdp = await relay.open_viewer(
                    vehicle_id=vehicle_id, user=user, offer_sdp=offer_sdp, sink=sink
                )
            except BaseException:
                ingest.unsubscribe(sink)
                raise
            self._viewers[viewer.id] = viewer
        self._idle_since.pop(vehicle_id, None)

        @viewer.pc.on("connectionstatechange")
        async def _changed() -> None:
            if viewer.pc.connectionState in ("failed", "closed"):
                await self._drop_viewer(viewer, f"connection {viewer.pc.connectionState}")

        await asyncio.to_thread(
            self._audit, user, "video.watch", f"vehicle:{vehicle_id}", {"viewer": viewer.id}
        )
        return ViewerAnswer(viewer_id=viewer.id, sdp=sdp)

    async def close_viewer(self, viewer_id: str, *, reason: str = "viewer left") -> None:
        """Hang up one viewer (unknown ids are ignored: it may have gone already)."""
        viewer = self._viewers.get(viewer_id)
        if viewer is not None:
            await self._drop_viewer(viewer, reason)

    def viewer_reason(self, viewer_id: str) -> str | None:
        """Why a viewer was dropped, or None while it watches."""
        viewer = self._viewers.get(viewer_id)
        return None if viewer is not None else self._dropped.get(viewer_id)

    async def _drop_viewer(self, viewer: relay.Viewer, reason: str) -> None:
        if self._viewers.pop(viewer.id, None) is None:
            return
        self._dropped[viewer.id] = reason
        while len(self._dropped) > 500:
            del self._dropped[next(iter(self._dropped))]
        ingest = self._ingests.get(viewer.vehicle_id)
        if ingest is not None:
            ingest.unsubscribe(viewer.sink)
        await relay.close_viewer(viewer, reason=reason)
        self._hub.emit(
            Event(
                kind="video.viewer_closed",
                vehicle_id=viewer.vehicle_id,
                data={"viewer": viewer.id, "reason": reason},
            )
        )

    def viewers(self, vehicle_id: int | None = None) -> list[relay.Viewer]:
        return [v for v in self._viewers.values() if vehicle_id is None or v.vehicle_id == vehicle_id]

    # ---- recordings ----------------------------------------------------------------------------------
    async def start_recording(
        self, vehicle_id: int, *, actor: str, reason: str = "manual", incident_id: int | None = None
    ) -> RecordingRead:
        """Record the vehicle's stream as evidence (one recording per vehicle at a time)."""
        for rid, (vid, _) in self._recorders.items():
            if vid == vehicle_id:
                if incident_id is not None:
                    await asyncio.to_thread(self._tag_incident, rid, incident_id, actor)
                return self._recording(rid)
        with self._claim(vehicle_id):
            ingest = await self._ensure_ingest(vehicle_id)
            row = await asyncio.to_thread(
                self._create_recording, vehicle_id, actor, reason, incident_id, ingest
            )
            assert row.id is not None
            loop = asyncio.get_running_loop()
            recorder = SegmentRecorder(
                recording_id=row.id,
                directory=self.storage / row.directory,
                segment_s=self.config.segment_s,
                on_segment=lambda seg: self._queue_segment(loop, seg),
            )
            ingest.attach(recorder)
            self._recorders[row.id] = (vehicle_id, recorder)
        self._hub.emit(
            Event(
                kind="video.recording",
                vehicle_id=vehicle_id,
                data={
                    "recording_id": row.id,
                    "state": "recording",
                    "incident_id": incident_id,
                    "reason": reason,
                },
            )
        )
        return RecordingRead.model_validate(row)

    def _queue_segment(self, loop: asyncio.AbstractEventLoop, segment: SegmentFile) -> None:
        loop.call_soon_threadsafe(self._segments.put_nowait, segment)  # from the ingest thread

    def _create_recording(
        self, vehicle_id: int, actor: str, reason: str, incident_id: int | None, ingest: StreamIngest
    ) -> Recording:
        with session_scope(self._engine) as session:
            return evidence.create_recording(
                session=session,
                vehicle_id=vehicle_id,
                actor=actor,
                reason=reason,
                incident_id=incident_id,
                stream_uri=ingest.stream.uri,
                codec=ingest.stream.encoding,
            )

    def _tag_incident(self, recording_id: int, incident_id: int, actor: str) -> None:
        with session_scope(self._engine) as session:
            row = evidence.get_recording(session=session, recording_id=recording_id)
            if row.incident_id is None:
                row.incident_id = incident_id
                session.add(row)
                audit.record(
                    session=session,
                    actor=actor,
                    action="video.record.tag",
                    target=f"recording:{recording_id}",
                    details={"incident_id": incident_id},
                )

    def _recording(self, recording_id: int) -> RecordingRead:
        with Session(self._engine) as session:
            return RecordingRead.model_validate(
                evidence.get_recording(session=session, recording_id=recording_id)
            )

    async def stop_recording(self, recording_id: int, *, actor: str) -> RecordingRead:
        """Stop a recording: its last segment is closed, hashed and stored before this returns."""
        entry = self._recorders.pop(recording_id, None)
        self._unattached.pop(recording_id, None)
        if entry is None:
            with Session(self._engine) as session:
                evidence.require_stoppable(evidence.get_recording(session=session, recording_id=recording_id))
        else:
            vid, recorder = entry
            ingest = self._ingests.get(vid)
            if ingest is not None:
                ingest.detach(recorder)
            await asyncio.to_thread(recorder.close)
            await self._segments.join()
        row = await asyncio.to_thread(self._finish, recording_id, actor)
        self._hub.emit(
            Event(
                kind="video.recording",
                vehicle_id=row.vehicle_id,
                data={"recording_id": recording_id, "state": "stopped", "incident_id": row.incident_id},
            )
        )
        return RecordingRead.model_validate(row)

    def _finish(self, recording_id: int, actor: str) -> Recording:
        with session_scope(self._engine) as session:
            return evidence.finish_recording(session=session, recording_id=recording_id, actor=actor)

    async def stop_incident_recordings(
        self, incident_id: int, *, actor: str, vehicle_id: int | None = None
    ) -> list[int]:
        """Stop every running recording of an incident (of one vehicle when given)."""
        with Session(self._engine) as session:
            tagged = {
                r.id
                for r in session.exec(
                    select(Recording).where(col(Recording.incident_id) == incident_id)
                ).all()
            }
        stopped = []
        for rid, (vid, _) in list(self._recorders.items()):
            if rid in tagged and (vehicle_id is None or vid == vehicle_id):
                await self.stop_recording(rid, actor=actor)
                stopped.append(rid)
        return stopped

    async def _store_segments(self) -> None:
        tolerance = _GAP_TOLERANCE_S
        while True:
            segment = await self._segments.get()
            try:
                await asyncio.to_thread(self._store, segment, tolerance)
            except Exception:
                log.exception(
                    "segment %d of recording %d not stored (sha256 %s)",
                    segment.seq,
                    segment.recording_id,
                    segment.sha256,
                )
            finally:
                self._segments.task_done()

    def _store(self, segment: SegmentFile, tolerance: float) -> None:
        with session_scope(self._engine) as session:
            evidence.store_segment(
                session=session,
                storage=self.storage,
                segment=segment,
                actor="system:video",
                gap_tolerance_s=tolerance,
            )

    def verify(self, *, recording_ids: list[int]) -> EvidenceReport:
        """Prove recordings untouched (files against the hashes in the audit log)."""
        with Session(self._engine) as session:
            return evidence.verify(session=session, storage=self.storage, recording_ids=recording_ids)

    # ---- snapshots and commands ----------------------------------------------------------------------
    async def snapshot(self, vehicle_id: int, *, actor: str, incident_id: int | None = None) -> SnapshotRead:
        """A JPEG of the live picture now, stored and hashed into the audit log."""
        with self._claim(vehicle_id):
            ingest = await self._live_ingest(vehicle_id)
        packets = [item.packet for item in ingest.gop]
        if not packets:
            raise VideoUnavailable(
                "no picture yet (waiting for a keyframe)", vehicle_id=vehicle_id, code="video.no_picture_yet"
            )
        return await asyncio.to_thread(self._store_snapshot, vehicle_id, packets, actor, incident_id)

    def _store_snapshot(
        self, vehicle_id: int, packets: list[Any], actor: str, incident_id: int | None
    ) -> SnapshotRead:
        decoder: Any = av.CodecContext.create("h264", "r")
        frame = None
        for packet in packets:
            for decoded in decoder.decode(av.Packet(bytes(packet))):
                frame = decoded
        if frame is None:
            raise VideoUnavailable(
                "the picture could not be decoded", vehicle_id=vehicle_id, code="video.picture_not_decoded"
            )
        encoder: Any = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
        encoder.time_base = fractions.Fraction(1, 25)
        data = b"".join(bytes(p) for p in encoder.encode(frame.reformat(format="yuvj420p")))
        data += b"".join(bytes(p) for p in encoder.encode(None))
        taken = datetime.now(UTC)
        relative = f"snapshots/vehicle-{vehicle_id}/{taken.strftime('%Y%m%dT%H%M%S%fZ')}.jpg"
        path = self.storage / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = file_sha256(path)
        with session_scope(self._engine) as session:
            entry = audit.record(
                session=session,
                actor=actor,
                action="video.snapshot",
                target=f"vehicle:{vehicle_id}",
                details={"file": relative, "sha256": digest, "incident_id": incident_id},
            )
            row = VideoSnapshot(
                vehicle_id=vehicle_id,
                incident_id=incident_id,
                taken_by=actor,
                taken_at=taken,
                file=relative,
                sha256=digest,
                width=frame.width,
                height=frame.height,
                audit_seq=entry.seq,
            )
            session.add(row)
            session.flush()
            return SnapshotRead.model_validate(row)

    def snapshot_file(self, snapshot_id: int) -> Path:
        """The stored JPEG of a snapshot."""
        with Session(self._engine) as session:
            row = session.get(VideoSnapshot, snapshot_id)
            if row is None:
                raise NotFound(
                    f"snapshot {snapshot_id} does not exist",
                    code="video.snapshot_does_not_exist",
                    params={"snapshot_id": snapshot_id},
                )
            path = self.storage / row.file
        if not path.is_file():
            raise NotFound(
                f"snapshot {snapshot_id}: its file is gone",
                code="video.snapshot_file_gone",
                params={"snapshot_id": snapshot_id},
            )
        return path

    async def command(self, vehicle_id: int, command: commands.CameraCommand, *, actor: str) -> None:
        """A camera or gimbal command, audited before it is sent; refused while another pilot has control."""
        self._fleet.profile(vehicle_id)
        if not actor.startswith("system:"):
            with Session(self._engine) as session:
                holder = control.holder_of(session=session, vehicle_id=vehicle_id)
            if holder is not None and holder != actor:
                raise PermissionDenied(
                    f"vehicle {vehicle_id} is controlled by {holder}; ask for a handoff",
                    code="control.vehicle_controlled_ask_them",
                    params={"vehicle_id": vehicle_id, "holder": holder},
                )
        camera = self._camera(vehicle_id)
        gimbal = command.kind in ("point_at", "point_angles")
        found = camera.status()
        deadline = time.monotonic() + self.config.discovery_timeout_s
        # a vehicle just linked may not have announced them yet (a loaded machine): wait a moment, not forever
        while (found.gimbal if gimbal else found.camera) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            found = camera.status()
        if gimbal and found.gimbal is None:
            raise VideoUnavailable(
                "gimbal not announced (no GIMBAL_MANAGER_INFORMATION)",
                vehicle_id=vehicle_id,
                code="video.gimbal_not_announced",
            )
        if not gimbal and found.camera is None:
            raise VideoUnavailable(
                "camera not announced (no CAMERA_INFORMATION)",
                vehicle_id=vehicle_id,
                code="video.camera_not_announced",
            )
        await commands.send(commander=self._commander, vehicle_id=vehicle_id, command=command, actor=actor)

    async def point_at_incident(self, vehicle_id: int, *, incident: Incident, actor: str) -> None:
        """Region of interest on the incident, at ground level (the vehicle's home altitude)."""
        ground = self._fleet.profile(vehicle_id).home_alt_m
        await self.command(
            vehicle_id,
            commands.CameraCommand(
                kind="point_at",
                lat=incident.lat,
                lon=incident.lon,
                alt_amsl_m=ground,
                incident_id=incident.id,
                reason="on scene",
            ),
            actor=actor,
        )

    def _audit(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        with session_scope(self._engine) as session:
            audit.record(session=session, actor=actor, action=action, target=target, details=details)

    # ---- background ----------------------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        """Once a second: discover cameras, stop unused ingests, drop stalled viewers."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self._tick(time.monotonic())
            except Exception:
                log.exception("video housekeeping failed")

    async def _tick(self, now: float) -> None:
        for profile in self._fleet.profiles():
            with contextlib.suppress(Exception):
                getattr(self._fleet.link(profile.id), "camera", None)  # starts MAVSDK's camera discovery
        for viewer in list(self._viewers.values()):
            since = viewer.sink.backlogged_since
            if since is not None and now - since > self.config.viewer_stall_s:
                await self._drop_viewer(
                    viewer, f"viewer stalled (could not take frames for {self.config.viewer_stall_s:.0f} s)"
                )
        for vid, ingest in list(self._ingests.items()):
            if not ingest.running:
                continue
            if self._users(vid):
                self._idle_since.pop(vid, None)
                continue
            idle = self._idle_since.setdefault(vid, now)
            if now - idle >= self.config.idle_stop_s:
                del self._ingests[vid]
                self._idle_since.pop(vid, None)
                await ingest.stop()
                self._hub.emit(
                    Event(kind="video.status", vehicle_id=vid, data={"state": "idle", "reason": ""})
                )

    async def _retention(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.purge)
            except Exception:
                log.exception("video retention failed")
            await asyncio.sleep(3600.0)

    def purge(self) -> list[int]:
        """Apply the retention rule now; the purged recording ids."""
        with session_scope(self._engine) as session:
            return evidence.purge_expired(
                session=session,
                storage=self.storage,
                retention_days=self.config.retention_days,
                actor="system:retention",
            )
