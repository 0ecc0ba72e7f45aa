"""Evidence recordings of drone video: recordings, their segments (hashed into the audit log), snapshots."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow


class RecordingState(StrEnum):
    RECORDING = "recording"
    STOPPED = "stopped"
    PURGED = "purged"  # files removed by the retention rule; rows and audit entries kept


class Recording(SQLModel, table=True):
    """One continuous evidence recording of one vehicle's stream."""

    __tablename__ = "video_recordings"

    id: int | None = Field(default=None, primary_key=True)
    vehicle_id: int = Field(index=True)
    incident_id: int | None = Field(default=None, index=True)
    reason: str = Field(default="manual", max_length=32)  # manual | dispatch
    started_by: str = Field(max_length=64)
    stopped_by: str | None = Field(default=None, max_length=64)
    state: str = Field(default=RecordingState.RECORDING.value, max_length=16, index=True)
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    stopped_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    purged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    stream_uri: str = Field(default="", max_length=500)
    codec: str = Field(default="h264", max_length=16)
    directory: str = Field(max_length=500)  # relative to the video storage directory
    segment_count: int = 0
    bytes_total: int = 0
    duration_s: float = 0.0
    gaps: int = 0
    last_chain_hash: str = Field(default="0" * 64, max_length=64)


class RecordingSegment(SQLModel, table=True):
    """One fragmented-MP4 file of a recording: its SHA-256 and the chain hash linking it to the previous."""

    __tablename__ = "video_segments"

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="video_recordings.id", index=True)
    seq: int  # 1-based within the recording
    file: str = Field(max_length=500)  # relative to the video storage directory
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    ended_at: datetime = Field(sa_type=DateTime(timezone=True))
    duration_s: float
    frames: int
    bytes: int
    sha256: str = Field(max_length=64)
    prev_chain_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)  # sha256(prev_chain_hash + sha256)
    gap_before_s: float = 0.0  # time missing between the previous segment's end and this one's start
    max_frame_gap_s: float = 0.0
    audit_seq: int  # the audit entry that recorded this segment's hash


class VideoSnapshot(SQLModel, table=True):
    """A still taken from the live stream, hashed into the audit log."""

    __tablename__ = "video_snapshots"

    id: int | None = Field(default=None, primary_key=True)
    vehicle_id: int = Field(index=True)
    incident_id: int | None = Field(default=None, index=True)
    taken_by: str = Field(max_length=64)
    taken_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    file: str = Field(max_length=500)
    sha256: str = Field(max_length=64)
    width: int
    height: int
    audit_seq: int


class RecordingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    vehicle_id: int
    incident_id: int | None
    reason: str
    started_by: str
    stopped_by: str | None
    state: str
    started_at: UtcDatetime
    stopped_at: UtcDatetime | None
    purged_at: UtcDatetime | None
    codec: str
    segment_count: int
    bytes_total: int
    duration_s: float
    gaps: int
    last_chain_hash: str


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    file: str
    started_at: UtcDatetime
    ended_at: UtcDatetime
    duration_s: float
    frames: int
    bytes: int
    sha256: str
    prev_chain_hash: str
    chain_hash: str
    gap_before_s: float
    max_frame_gap_s: float
    audit_seq: int


class SnapshotRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    vehicle_id: int
    incident_id: int | None
    taken_by: str
    taken_at: UtcDatetime
    sha256: str
    width: int
    height: int
    audit_seq: int


class EvidenceProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    recording_id: int
    seq: int | None
    kind: str  # missing_file | altered | chain_broken | audit_mismatch | missing_segment | audit_chain
    message: str


class EvidenceReport(BaseModel):
    """Whether a recording's files are the ones whose hashes the audit log holds, and what is not."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    recordings: int
    segments_checked: int
    problems: list[EvidenceProblem]


class RecordingStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incident_id: int | None = PydField(default=None, ge=1, le=2**31 - 1)
