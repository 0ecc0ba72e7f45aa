"""The audit log is a hash chain: verify names any edited or removed entry, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mission.audit import service as audit
from mission.audit.models import GENESIS_HASH, AuditEntry
from mission.db import session_scope


def _write(engine: Engine, n: int) -> None:
    with session_scope(engine) as s:
        for i in range(n):
            audit.record(
                session=s,
                actor="alice",
                action="mission.launch",
                target=f"mission:{i}",
                details={"alt_m": 40.5},
            )


def test_entries_chain_and_verify_clean(engine: Engine) -> None:
    _write(engine, 4)
    with session_scope(engine) as s:
        entries, total = audit.list_entries(session=s, limit=10, offset=0)
        report = audit.verify(session=s)
    assert total == 4
    chain = sorted(entries, key=lambda e: e.seq)
    assert [e.seq for e in chain] == [1, 2, 3, 4]
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert report.ok and report.checked == 4 and report.head_seq == 4


def test_edited_entry_is_named(engine: Engine) -> None:
    _write(engine, 5)
    with session_scope(engine) as s:
        s.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    with session_scope(engine) as s:
        report = audit.verify(session=s)
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited")]
    assert "entry 3" in report.problems[0].message


def test_edited_details_are_detected(engine: Engine) -> None:
    _write(engine, 3)
    with session_scope(engine) as s:
        s.execute(text("""UPDATE audit_log SET details = '{"alt_m": 400.5}' WHERE seq = 2"""))
    with session_scope(engine) as s:
        report = audit.verify(session=s)
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "edited")]


def test_removed_entry_is_named(engine: Engine) -> None:
    _write(engine, 5)
    with session_scope(engine) as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with session_scope(engine) as s:
        report = audit.verify(session=s)
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "missing")]
    assert "entry 2 removed" in report.problems[0].message


def test_removed_tail_is_named(engine: Engine) -> None:
    _write(engine, 5)
    with session_scope(engine) as s:
        s.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    with session_scope(engine) as s:
        report = audit.verify(session=s)
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "missing")]
    assert "entries 4..5" in report.problems[0].message


def test_rewritten_hash_still_breaks_the_link(engine: Engine) -> None:
    """Recomputing an edited entry's own hash does not help: the next entry no longer links to it."""
    _write(engine, 3)
    with session_scope(engine) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.seq == 2)).one()
        forged = audit.entry_hash(
            seq=entry.seq,
            at=entry.at,
            actor="mallory",
            action=entry.action,
            target=entry.target,
            details=entry.details,
            prev_hash=entry.prev_hash,
        )
        s.execute(text("UPDATE audit_log SET actor='mallory', hash=:h WHERE seq=2"), {"h": forged})
    with session_scope(engine) as s:
        report = audit.verify(session=s)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "relinked")]


def test_rolled_back_change_leaves_no_entry(engine: Engine) -> None:
    try:
        with session_scope(engine) as s:
            audit.record(session=s, actor="bob", action="zone.create")
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    with Session(engine) as s:
        assert audit.list_entries(session=s, limit=5, offset=0)[1] == 0
        assert audit.verify(session=s).ok


def test_concurrent_writers_keep_one_chain(engine: Engine) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            _write(engine, 5)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with session_scope(engine) as s:
        report = audit.verify(session=s)
    assert report.ok and report.checked == 20
