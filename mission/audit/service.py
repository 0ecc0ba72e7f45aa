"""Append to and verify the hash-chained audit log.

Each entry's hash is sha256 over a canonical JSON of (seq, at, actor, action, target, details, prev_hash);
each entry carries its predecessor's hash. ``verify`` recomputes the chain and names every edited or
removed entry; the head row catches removal of the newest entries too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from mission.audit.clock import as_utc, utcnow
from mission.audit.models import GENESIS_HASH, AuditEntry, AuditHead, AuditProblem, AuditRead, AuditReport


def canonical_json(value: Any) -> str:
    """The one JSON text for ``value``: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """sha256 hex over the canonical JSON of an entry's fields."""
    body = {
        "seq": seq,
        "at": as_utc(at).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    """The head row, locked for this transaction (a row lock on PostgreSQL, the write lock on SQLite)."""
    # An UPDATE first: it takes the lock before we read, so two writers cannot both read the same head.
    lock = update(AuditHead).where(col(AuditHead.id) == 1).values(seq=AuditHead.seq)
    if session.execute(lock).rowcount == 0:  # type: ignore[attr-defined]
        _create_head(session)
        session.execute(lock)
    head = session.get(AuditHead, 1, populate_existing=True)
    assert head is not None
    return head


def _create_head(session: Session) -> None:
    """Insert the head row unless a concurrent writer just did (the first write into an empty log)."""
    last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)).first()
    values = {"id": 1, "seq": last.seq if last else 0, "hash": last.hash if last else GENESIS_HASH}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(AuditHead).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(AuditHead).values(**values).on_conflict_do_nothing())


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditRead:
    """Append an entry in the caller's transaction (it commits or rolls back with the change it describes)."""
    details_json: dict[str, Any] = json.loads(canonical_json(dict(details or {})))
    head = _lock_head(session)
    seq = head.seq + 1
    at = utcnow()
    digest = entry_hash(
        seq=seq, at=at, actor=actor, action=action, target=target, details=details_json, prev_hash=head.hash
    )
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        details=details_json,
        prev_hash=head.hash,
        hash=digest,
    )
    head.seq, head.hash = seq, digest
    session.add(entry)
    session.add(head)
    session.flush()
    return AuditRead.model_validate(entry)


def list_entries(
    *, session: Session, limit: int, offset: int, actor: str | None = None, action: str | None = None
) -> tuple[Sequence[AuditRead], int]:
    """A page of entries, newest first, optionally filtered by actor or action prefix, and the total."""
    query = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if actor is not None:
        query, count = query.where(AuditEntry.actor == actor), count.where(AuditEntry.actor == actor)
    if action is not None:
        like = col(AuditEntry.action).startswith(action)
        query, count = query.where(like), count.where(like)
    total = session.exec(count).one()
    rows = session.exec(query.order_by(col(AuditEntry.seq).desc()).offset(offset).limit(limit)).all()
    return [AuditRead.model_validate(r) for r in rows], total


SEARCH_SCAN_MAX = 50_000  # entries a vehicle/incident search looks through (newest first)


def _about(entry: AuditEntry, kind: str, ident: int) -> bool:
    """Whether an entry concerns vehicle/incident ``ident``: its target, or its details naming it."""
    if entry.target == f"{kind}:{ident}":
        return True
    details = entry.details or {}
    return details.get(f"{kind}_id") == ident or (
        isinstance(details.get("refs"), dict) and details["refs"].get(f"{kind}_id") == ident
    )


def search_entries(
    *,
    session: Session,
    limit: int,
    offset: int,
    actor: str | None = None,
    action: str | None = None,
    vehicle_id: int | None = None,
    incident_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Sequence[AuditRead], int]:
    """A page of entries, newest first, by user, action prefix, vehicle, incident and time, and the total.

    A vehicle or an incident matches an entry's target (``vehicle:3``) or its details (``vehicle_id``).
    """
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(col(AuditEntry.action).startswith(action))
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.at) < until)
    query = query.order_by(col(AuditEntry.seq).desc())
    if vehicle_id is None and incident_id is None:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.offset(offset).limit(limit)).all()
        return [AuditRead.model_validate(r) for r in rows], total
    found = [
        r
        for r in session.exec(query.limit(SEARCH_SCAN_MAX)).all()
        if (vehicle_id is None or _about(r, "vehicle", vehicle_id))
        and (incident_id is None or _about(r, "incident", incident_id))
    ]
    return [AuditRead.model_validate(r) for r in found[offset : offset + limit]], len(found)


def verify(*, session: Session) -> AuditReport:
    """Recompute the chain; every edited, removed or re-linked entry is named in the report."""
    problems: list[AuditProblem] = []
    prev_seq, prev_hash = 0, GENESIS_HASH
    checked = 0
    for entry in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))):
        checked += 1
        if entry.seq != prev_seq + 1:
            missing = (
                f"entry {prev_seq + 1}"
                if entry.seq == prev_seq + 2
                else f"entries {prev_seq + 1}..{entry.seq - 1}"
            )
            problems.append(
                AuditProblem(
                    seq=prev_seq + 1,
                    kind="missing",
                    message=f"{missing} removed (the log jumps from {prev_seq} to {entry.seq})",
                )
            )
        elif entry.prev_hash != prev_hash:
            problems.append(
                AuditProblem(
                    seq=entry.seq,
                    kind="relinked",
                    message=f"entry {entry.seq} does not carry the hash of entry {prev_seq}",
                )
            )
        recomputed = entry_hash(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            details=entry.details,
            prev_hash=entry.prev_hash,
        )
        if recomputed != entry.hash:
            problems.append(
                AuditProblem(
                    seq=entry.seq,
                    kind="edited",
                    message=f"entry {entry.seq} ({entry.action} by {entry.actor}) was edited: "
                    "its content no longer matches its hash",
                )
            )
        prev_seq, prev_hash = entry.seq, entry.hash
    head = session.get(AuditHead, 1)
    head_seq = head.seq if head else 0
    if head is None and checked:
        problems.append(AuditProblem(seq=prev_seq, kind="missing", message="the chain head row was removed"))
    if head_seq > prev_seq:
        missing = f"entry {head_seq}" if head_seq == prev_seq + 1 else f"entries {prev_seq + 1}..{head_seq}"
        problems.append(
            AuditProblem(
                seq=prev_seq + 1,
                kind="missing",
                message=f"{missing} removed from the end (head says {head_seq}, last entry is {prev_seq})",
            )
        )
    elif head is not None and head_seq == prev_seq and head.hash != prev_hash and checked:
        problems.append(
            AuditProblem(
                seq=prev_seq,
                kind="edited",
                message=f"entry {prev_seq} was replaced: its hash differs from the one the head recorded",
            )
        )
    return AuditReport(ok=not problems, checked=checked, head_seq=head_seq, problems=problems)
