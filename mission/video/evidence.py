"""Recordings as evidence: segments with their hashes in the audit log, verifying, exporting, retention.

Each closed segment gets a row and an audit entry (``video.segment``) holding its SHA-256 and a chain hash
``sha256(previous chain hash + segment sha256)``; the audit log is itself hash-chained. ``verify`` recomputes
every file's hash and both chains and names each file that is missing, altered, or out of its chain.

A recording the service was killed in the middle of is not closed at the next start but resumed: the segment
files written and never stored are hashed then and chained in (marked ``recovered`` in the audit log), the
interruption is audited, and the next segment's ``gap_before_s`` is the real time lost, counted in ``gaps``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
from sqlmodel import Session, col, select

from mission.audit import service as audit
from mission.audit.clock import as_utc, utcnow
from mission.audit.models import AuditEntry
from mission.errors import Conflict, NotFound
from mission.video.models import (
    EvidenceProblem,
    EvidenceReport,
    Recording,
    RecordingRead,
    RecordingSegment,
    RecordingState,
    SegmentRead,
)
from mission.video.recorder import SegmentFile, file_sha256

GENESIS = "0" * 64


def chain_hash(prev_chain: str, sha256: str) -> str:
    """The chain link of a segment: sha256 over the previous link and this segment's hash (hex text)."""
    return hashlib.sha256((prev_chain + sha256).encode()).hexdigest()


def create_recording(
    *,
    session: Session,
    vehicle_id: int,
    actor: str,
    reason: str,
    incident_id: int | None,
    stream_uri: str,
    codec: str,
) -> Recording:
    """A new recording row (its directory is named after its id) and its audit entry."""
    row = Recording(
        vehicle_id=vehicle_id,
        incident_id=incident_id,
        reason=reason,
        started_by=actor,
        stream_uri=stream_uri,
        codec=codec,
        directory="",
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    row.directory = f"vehicle-{vehicle_id}/recording-{row.id}"
    session.add(row)
    audit.record(
        session=session,
        actor=actor,
        action="video.record.start",
        target=f"recording:{row.id}",
        details={
            "vehicle_id": vehicle_id,
            "incident_id": incident_id,
            "reason": reason,
            "stream": stream_uri,
        },
    )
    return row


def finish_recording(*, session: Session, recording_id: int, actor: str) -> Recording:
    """Mark a recording stopped (its last segment is stored by the recorder) and audit it."""
    row = get_recording(session=session, recording_id=recording_id)
    if row.state == RecordingState.RECORDING.value:
        row.state = RecordingState.STOPPED.value
        row.stopped_at = utcnow()
        row.stopped_by = actor
        session.add(row)
        audit.record(
            session=session,
            actor=actor,
            action="video.record.stop",
            target=f"recording:{recording_id}",
            details={"vehicle_id": row.vehicle_id, "incident_id": row.incident_id},
        )
    return row


def get_recording(*, session: Session, recording_id: int) -> Recording:
    row = session.get(Recording, recording_id)
    if row is None:
        raise NotFound(
            f"recording {recording_id} does not exist",
            code="video.recording_does_not_exist",
            params={"recording_id": recording_id},
        )
    return row


def list_recordings(
    *,
    session: Session,
    limit: int,
    offset: int,
    vehicle_id: int | None = None,
    incident_id: int | None = None,
) -> tuple[list[RecordingRead], int]:
    query = select(Recording)
    if vehicle_id is not None:
        query = query.where(col(Recording.vehicle_id) == vehicle_id)
    if incident_id is not None:
        query = query.where(col(Recording.incident_id) == incident_id)
    rows = list(session.exec(query.order_by(col(Recording.id).desc())).all())
    return [RecordingRead.model_validate(r) for r in rows[offset : offset + limit]], len(rows)


def segments_of(*, session: Session, recording_id: int) -> list[RecordingSegment]:
    return list(
        session.exec(
            select(RecordingSegment)
            .where(col(RecordingSegment.recording_id) == recording_id)
            .order_by(col(RecordingSegment.seq))
        ).all()
    )


def store_segment(
    *,
    session: Session,
    storage: Path,
    segment: SegmentFile,
    actor: str,
    gap_tolerance_s: float,
    recovered: str = "",
) -> RecordingSegment:
    """A closed segment's row and audit entry, chained to the recording's previous segment.

    ``recovered`` says how a segment never closed by its recorder (the service died) was taken in.
    """
    rec = get_recording(session=session, recording_id=segment.recording_id)
    prev = rec.last_chain_hash
    link = chain_hash(prev, segment.sha256)
    relative = str(segment.path.relative_to(storage))
    entry = audit.record(
        session=session,
        actor=actor,
        action="video.segment",
        target=f"recording:{rec.id}",
        details={
            "seq": segment.seq,
            "file": relative,
            "sha256": segment.sha256,
            "prev_chain": prev,
            "chain": link,
            "bytes": segment.bytes,
            "frames": segment.frames,
            "duration_s": segment.duration_s,
            "gap_before_s": segment.gap_before_s,
            **({"recovered": recovered} if recovered else {}),
        },
    )
    row = RecordingSegment(
        recording_id=segment.recording_id,
        seq=segment.seq,
        file=relative,
        started_at=segment.started_at,
        ended_at=segment.ended_at,
        duration_s=segment.duration_s,
        frames=segment.frames,
        bytes=segment.bytes,
        sha256=segment.sha256,
        prev_chain_hash=prev,
        chain_hash=link,
        gap_before_s=segment.gap_before_s,
        max_frame_gap_s=segment.max_frame_gap_s,
        audit_seq=entry.seq,
    )
    session.add(row)
    rec.last_chain_hash = link
    rec.segment_count += 1
    rec.bytes_total += segment.bytes
    rec.duration_s = round(rec.duration_s + segment.duration_s, 3)
    if segment.gap_before_s > gap_tolerance_s or segment.max_frame_gap_s > 3 * gap_tolerance_s:
        rec.gaps += 1
    session.add(rec)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class Interrupted:
    """A recording that was running when the service died, to be resumed from ``next_seq``."""

    recording_id: int
    vehicle_id: int
    directory: str
    next_seq: int
    last_end: datetime | None


def recover_interrupted(
    *, session: Session, storage: Path, actor: str, gap_tolerance_s: float
) -> list[Interrupted]:
    """Every recording still marked recording: its unstored segment files chained in, the stop audited."""
    found = []
    for rec in session.exec(
        select(Recording).where(col(Recording.state) == RecordingState.RECORDING.value)
    ).all():
        assert rec.id is not None
        stored = {s.file for s in segments_of(session=session, recording_id=rec.id)}
        directory = storage / rec.directory
        orphans = sorted(
            p
            for p in (directory.glob("seg-*.mp4") if directory.is_dir() else [])
            if str(p.relative_to(storage)) not in stored
        )
        recovered = []
        for path in orphans:
            segment = _orphan_segment(
                session=session, recording_id=rec.id, path=path, seq=rec.segment_count + 1
            )
            store_segment(
                session=session,
                storage=storage,
                segment=segment,
                actor=actor,
                gap_tolerance_s=gap_tolerance_s,
                recovered="written before the service died, never closed; hashed at the next start",
            )
            recovered.append(segment.seq)
        last = segments_of(session=session, recording_id=rec.id)
        last_end = as_utc(last[-1].ended_at) if last else None
        audit.record(
            session=session,
            actor=actor,
            action="video.record.interrupted",
            target=f"recording:{rec.id}",
            details={
                "vehicle_id": rec.vehicle_id,
                "last_segment_end": last_end.isoformat() if last_end else None,
                "detected_at": utcnow().isoformat(),
                "recovered_segments": recovered,
            },
        )
        found.append(
            Interrupted(
                recording_id=rec.id,
                vehicle_id=rec.vehicle_id,
                directory=rec.directory,
                next_seq=rec.segment_count + 1,
                last_end=last_end,
            )
        )
    return found


def _orphan_segment(*, session: Session, recording_id: int, path: Path, seq: int) -> SegmentFile:
    """A segment file left open by a killed recorder, described from what it holds and when it was written."""
    frames, first, last, rate, time_base = 0, None, None, 15.0, 1 / 90_000
    try:
        with av.open(str(path)) as f:
            stream = f.streams.video[0]
            time_base = float(stream.time_base or time_base)
            rate = float(stream.average_rate or stream.guessed_rate or rate)
            for packet in f.demux(stream):
                if packet.pts is None:
                    continue
                frames += 1
                first = packet.pts if first is None else first
                last = packet.pts
    except (av.error.FFmpegError, IndexError, OSError):
        pass  # cut off mid-fragment: what was read stands, the rest is unreadable
    duration = (last - first) * time_base + 1 / rate if first is not None and last is not None else 0.0
    ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    started = ended - timedelta(seconds=duration)
    previous = segments_of(session=session, recording_id=recording_id)
    gap = max(0.0, (started - as_utc(previous[-1].ended_at)).total_seconds() - 1 / rate) if previous else 0.0
    return SegmentFile(
        recording_id=recording_id,
        seq=seq,
        path=path,
        started_at=started,
        ended_at=ended,
        duration_s=round(duration, 3),
        frames=frames,
        bytes=path.stat().st_size,
        sha256=file_sha256(path),
        gap_before_s=round(gap, 3),
        max_frame_gap_s=0.0,
    )


def verify(*, session: Session, storage: Path, recording_ids: Sequence[int]) -> EvidenceReport:
    """Recompute every segment's file hash and both chains; each break is named."""
    problems: list[EvidenceProblem] = []
    checked = 0
    audit_report = audit.verify(session=session)
    if not audit_report.ok:
        for p in audit_report.problems:
            problems.append(
                EvidenceProblem(
                    recording_id=0, seq=None, kind="audit_chain", message=f"audit log: {p.message}"
                )
            )
    for rid in recording_ids:
        rec = get_recording(session=session, recording_id=rid)
        entries = {
            e.seq: e
            for e in session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action) == "video.segment")
                .where(col(AuditEntry.target) == f"recording:{rid}")
            ).all()
        }
        logged = sorted((int(e.details.get("seq", 0)), e) for e in entries.values())
        rows = {s.seq: s for s in segments_of(session=session, recording_id=rid)}
        prev = GENESIS
        for seq, entry in logged:
            row = rows.get(seq)
            where = f"recording {rid} segment {seq}"
            if row is None:
                problems.append(
                    EvidenceProblem(
                        recording_id=rid,
                        seq=seq,
                        kind="missing_segment",
                        message=f"{where}: its row was removed (the audit log holds it)",
                    )
                )
                prev = str(entry.details.get("chain", prev))
                continue
            checked += 1
            details = entry.details
            if (
                details.get("sha256") != row.sha256
                or details.get("chain") != row.chain_hash
                or row.audit_seq != entry.seq
            ):
                problems.append(
                    EvidenceProblem(
                        recording_id=rid,
                        seq=seq,
                        kind="audit_mismatch",
                        message=f"{where}: its row no longer matches audit entry {entry.seq}",
                    )
                )
            if details.get("prev_chain") != prev or chain_hash(
                prev, str(details.get("sha256"))
            ) != details.get("chain"):
                problems.append(
                    EvidenceProblem(
                        recording_id=rid,
                        seq=seq,
                        kind="chain_broken",
                        message=f"{where}: does not chain to segment {seq - 1}",
                    )
                )
            path = storage / row.file
            if rec.state == RecordingState.PURGED.value:
                pass  # removed by the retention rule, on the record
            elif not path.is_file():
                problems.append(
                    EvidenceProblem(
                        recording_id=rid,
                        seq=seq,
                        kind="missing_file",
                        message=f"{where}: file {row.file} is missing",
                    )
                )
            elif file_sha256(path) != details.get("sha256"):
                problems.append(
                    EvidenceProblem(
                        recording_id=rid,
                        seq=seq,
                        kind="altered",
                        message=f"{where}: file {row.file} was altered (SHA-256 differs from the audit log)",
                    )
                )
            prev = str(details.get("chain", prev))
        expected = list(range(1, len(logged) + 1))
        if [seq for seq, _ in logged] != expected:
            problems.append(
                EvidenceProblem(
                    recording_id=rid,
                    seq=None,
                    kind="missing_segment",
                    message=f"recording {rid}: segment numbers are not consecutive",
                )
            )
        for seq in sorted(set(rows) - {s for s, _ in logged}):
            problems.append(
                EvidenceProblem(
                    recording_id=rid,
                    seq=seq,
                    kind="audit_mismatch",
                    message=f"recording {rid} segment {seq}: no audit entry holds its hash",
                )
            )
        if logged and rec.last_chain_hash != prev:
            problems.append(
                EvidenceProblem(
                    recording_id=rid,
                    seq=None,
                    kind="chain_broken",
                    message=f"recording {rid}: its last chain hash does not match its last segment",
                )
            )
    return EvidenceReport(
        ok=not problems, recordings=len(recording_ids), segments_checked=checked, problems=problems
    )


def incident_recordings(*, session: Session, incident_id: int) -> list[Recording]:
    rows = list(
        session.exec(
            select(Recording).where(col(Recording.incident_id) == incident_id).order_by(col(Recording.id))
        ).all()
    )
    if not rows:
        raise NotFound(
            f"incident {incident_id} has no video recordings",
            code="video.incident_has_no_recordings",
            params={"incident_id": incident_id},
        )
    return rows


def export_incident(*, session: Session, storage: Path, incident_id: int, actor: str) -> bytes:
    """The incident's segments zipped with ``manifest.json`` (hashes, chains, audit entries, verification)."""
    recordings = incident_recordings(session=session, incident_id=incident_id)
    report = verify(
        session=session, storage=storage, recording_ids=[r.id for r in recordings if r.id is not None]
    )
    manifest: dict[str, Any] = {
        "incident_id": incident_id,
        "exported_at": utcnow().isoformat(),
        "exported_by": actor,
        "verification": report.model_dump(),
        "recordings": [],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for rec in recordings:
            assert rec.id is not None
            segs = segments_of(session=session, recording_id=rec.id)
            manifest["recordings"].append(
                {
                    **RecordingRead.model_validate(rec).model_dump(mode="json"),
                    "segments": [
                        {
                            **SegmentRead.model_validate(s).model_dump(mode="json"),
                            "audit_hash": _audit_hash(session, s.audit_seq),
                            "recovered": _recovered(session, s.audit_seq),
                        }
                        for s in segs
                    ],
                    "interruptions": interruptions(session=session, recording_id=rec.id),
                }
            )
            for s in segs:
                path = storage / s.file
                if path.is_file():
                    zf.write(path, arcname=s.file)
        body = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False)
        zf.writestr("manifest.json", body)
        zf.writestr("manifest.json.sha256", hashlib.sha256(body.encode()).hexdigest() + "  manifest.json\n")
    audit.record(
        session=session,
        actor=actor,
        action="video.export",
        target=f"incident:{incident_id}",
        details={
            "recordings": [r.id for r in recordings],
            "manifest_sha256": hashlib.sha256(body.encode()).hexdigest(),
            "verified": report.ok,
        },
    )
    return buffer.getvalue()


def interruptions(*, session: Session, recording_id: int) -> list[dict[str, Any]]:
    """The times the service died while recording and when recording resumed, from the audit log."""
    return [
        {"action": e.action, "at": as_utc(e.at).isoformat(), "audit_seq": e.seq, **e.details}
        for e in session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.target) == f"recording:{recording_id}")
            .where(col(AuditEntry.action).in_(["video.record.interrupted", "video.record.resume"]))
            .order_by(col(AuditEntry.seq))
        ).all()
    ]


def _recovered(session: Session, seq: int) -> str | None:
    entry = session.exec(select(AuditEntry).where(col(AuditEntry.seq) == seq)).first()
    return str(entry.details["recovered"]) if entry and entry.details.get("recovered") else None


def _audit_hash(session: Session, seq: int) -> str | None:
    entry = session.exec(select(AuditEntry).where(col(AuditEntry.seq) == seq)).first()
    return entry.hash if entry else None


def purge_expired(
    *, session: Session, storage: Path, retention_days: float, actor: str, now: datetime | None = None
) -> list[int]:
    """Remove the files of recordings stopped longer ago than the retention; rows and audit entries stay."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    purged = []
    for rec in session.exec(
        select(Recording).where(col(Recording.state) == RecordingState.STOPPED.value)
    ).all():
        if rec.stopped_at is None or as_utc(rec.stopped_at) > cutoff:
            continue
        directory = storage / rec.directory
        if directory.is_dir():
            shutil.rmtree(directory)
        rec.state = RecordingState.PURGED.value
        rec.purged_at = utcnow()
        session.add(rec)
        audit.record(
            session=session,
            actor=actor,
            action="video.purge",
            target=f"recording:{rec.id}",
            details={
                "retention_days": retention_days,
                "stopped_at": as_utc(rec.stopped_at).isoformat(),
                "segments": rec.segment_count,
            },
        )
        assert rec.id is not None
        purged.append(rec.id)
    return purged


def require_stoppable(rec: Recording) -> None:
    if rec.state != RecordingState.RECORDING.value:
        raise Conflict(
            f"recording {rec.id} is {rec.state}, not recording",
            code="video.recording_not_recording",
            params={"recording_id": rec.id, "state": rec.state},
        )
