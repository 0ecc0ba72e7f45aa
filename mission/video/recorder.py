"""Recording a stream as evidence: fragmented-MP4 segments cut at keyframes, each hashed when it closes.

The ingest thread hands every packet to ``SegmentRecorder.write`` (a remux, no decoding); a segment is closed
at the first keyframe after ``segment_s`` (or when the stream restarts or the recording stops) and
``on_segment`` gets its SHA-256, timing and gaps. Closing from the event loop takes the same lock, so a
stalled stream can still be stopped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)
_MP4_OPTIONS = {"movflags": "+frag_keyframe+empty_moov+default_base_moof"}


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """A closed segment, ready to be stored and chained into the audit log."""

    recording_id: int
    seq: int
    path: Path
    started_at: datetime
    ended_at: datetime
    duration_s: float
    frames: int
    bytes: int
    sha256: str
    gap_before_s: float
    max_frame_gap_s: float


def file_sha256(path: Path) -> str:
    """SHA-256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SegmentRecorder:
    """Writes one recording's segments; ``write`` runs in the ingest thread, ``close`` anywhere."""

    def __init__(
        self,
        *,
        recording_id: int,
        directory: Path,
        segment_s: float,
        on_segment: Callable[[SegmentFile], None],
        first_seq: int = 1,
        prev_end: datetime | None = None,
    ) -> None:
        """``first_seq`` and ``prev_end`` continue a recording resumed after a restart (its gap counted)."""
        self.recording_id = recording_id
        self.directory = directory
        self.segment_s = segment_s
        self._on_segment = on_segment
        self._lock = threading.Lock()
        self._out: Any = None
        self._ostream: Any = None
        self._template: Any = None
        self._path: Path | None = None
        self._seq = first_seq - 1
        self._first_pts = 0
        self._last_pts: int | None = None
        self._frame_period_s = 1 / 15
        self._time_base = 1 / 90000
        self._started_at: datetime | None = None
        self._last_wall: datetime | None = None
        self._prev_end: datetime | None = prev_end
        self._frames = 0
        self._max_gap_s = 0.0
        self._gap_before_s = 0.0
        self.closed = False

    @property
    def next_seq(self) -> int:
        """The number the next segment will have."""
        return self._seq + 1

    def write(self, packet: Any, *, arrived_at: float) -> None:
        """Add one demuxed packet (its ``stream`` is the input template); rotate at keyframes."""
        with self._lock:
            if self.closed:
                return
            keyframe = bool(packet.is_keyframe)
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                return
            if self._out is not None and packet.stream is not self._template:
                self._finish()  # the stream restarted: its own segment, with the gap counted
            if self._out is None:
                if not keyframe:
                    return  # a segment must start with a keyframe to play on its own
                self._open(packet, pts, arrived_at)
            elif keyframe and (pts - self._first_pts) * self._time_base >= self.segment_s:
                self._finish(end_pts=pts)  # the stream goes on: this segment lasts until the next begins
                self._open(packet, pts, arrived_at)
            if self._last_pts is not None:
                gap = (pts - self._last_pts) * self._time_base
                self._max_gap_s = max(self._max_gap_s, gap)
            self._last_pts = pts
            copy = av.Packet(bytes(packet))
            copy.pts = copy.dts = pts - self._first_pts
            copy.time_base = packet.time_base
            copy.is_keyframe = keyframe
            copy.stream = self._ostream
            self._out.mux(copy)
            self._frames += 1
            self._last_wall = datetime.fromtimestamp(arrived_at, UTC)

    def close(self) -> None:
        """Close the open segment (if any) and take no more packets."""
        with self._lock:
            self.closed = True
            if self._out is not None:
                self._finish()

    def _open(self, packet: Any, pts: int, arrived_at: float) -> None:
        self._seq += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / f"seg-{self._seq:05d}.mp4"
        self._out = av.open(str(self._path), "w", format="mp4", options=_MP4_OPTIONS)
        self._ostream = self._out.add_stream_from_template(packet.stream)
        self._template = packet.stream
        self._time_base = float(packet.time_base or 1 / 90000)
        rate = packet.stream.average_rate or packet.stream.guessed_rate
        self._frame_period_s = 1 / float(rate) if rate else 1 / 15
        self._first_pts = pts
        self._last_pts = None
        self._frames = 0
        self._max_gap_s = 0.0
        self._started_at = datetime.fromtimestamp(arrived_at, UTC)
        self._gap_before_s = (
            0.0
            if self._prev_end is None
            else max(0.0, (self._started_at - self._prev_end).total_seconds() - self._frame_period_s)
        )

    def _finish(self, end_pts: int | None = None) -> None:
        out, path = self._out, self._path
        self._out = self._ostream = self._template = None
        if out is None or path is None or self._started_at is None:
            return
        try:
            out.close()
        except av.error.FFmpegError as err:  # an empty or broken segment still gets hashed as it is
            log.warning("recording %d: closing %s: %s", self.recording_id, path.name, err)
        ended = self._last_wall or self._started_at
        if end_pts is not None:
            duration = (end_pts - self._first_pts) * self._time_base
        elif self._last_pts is not None:  # the last picture shows for one frame period
            duration = (self._last_pts - self._first_pts) * self._time_base + self._frame_period_s
        else:
            duration = 0.0
        self._prev_end = ended
        segment = SegmentFile(
            recording_id=self.recording_id,
            seq=self._seq,
            path=path,
            started_at=self._started_at,
            ended_at=ended,
            duration_s=round(duration, 3),
            frames=self._frames,
            bytes=path.stat().st_size,
            sha256=file_sha256(path),
            gap_before_s=round(self._gap_before_s, 3),
            max_frame_gap_s=round(self._max_gap_s, 3),
        )
        try:
            self._on_segment(segment)
        except Exception:  # the hash is in the log line at least
            log.exception(
                "recording %d: segment %d (%s) not stored", self.recording_id, segment.seq, segment.sha256
            )
