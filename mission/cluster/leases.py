"""Lease operations on PostgreSQL: one statement each, timed by the database's ``now()``.

Every function takes a SQLAlchemy connection or session inside the caller's transaction. A vehicle lease is
taken only when it is free or expired, and taking it raises its epoch; renewing keeps the epoch. ``fence``
is the check a command makes in the same transaction as its audit entry: the row is locked (``FOR SHARE``)
so a takeover cannot commit between the check and the audit entry, and a stale owner's command is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from mission.errors import Conflict


class StaleOwner(Conflict):
    """A command from an instance that no longer owns the vehicle (its epoch is not the lease's)."""


@dataclass(frozen=True, slots=True)
class Lease:
    vehicle_id: int
    owner: str
    epoch: int


def heartbeat(conn: Any, *, instance_id: str, base_url: str, ttl_s: float) -> None:
    """Say this instance is alive for ``ttl_s`` more seconds."""
    conn.execute(
        text(
            "INSERT INTO cluster_instances (instance_id, base_url, started_at, expires_at) "
            "VALUES (:me, :url, now(), now() + make_interval(secs => :ttl)) "
            "ON CONFLICT (instance_id) DO UPDATE SET base_url = :url, "
            "expires_at = now() + make_interval(secs => :ttl)"
        ),
        {"me": instance_id, "url": base_url, "ttl": ttl_s},
    )


def live_instances(conn: Any) -> dict[str, str]:
    """Every instance alive now -> its base URL."""
    rows = conn.execute(
        text("SELECT instance_id, base_url FROM cluster_instances WHERE expires_at > now() ORDER BY 1")
    )
    return {r[0]: r[1] for r in rows}


def leave(conn: Any, *, instance_id: str) -> None:
    """A clean stop: this instance's leases and its row end now, so the others take over at once."""
    conn.execute(text("UPDATE vehicle_leases SET expires_at = now() WHERE owner = :me"), {"me": instance_id})
    conn.execute(text("UPDATE leader_leases SET expires_at = now() WHERE owner = :me"), {"me": instance_id})
    conn.execute(text("DELETE FROM cluster_instances WHERE instance_id = :me"), {"me": instance_id})


def renew(conn: Any, *, instance_id: str, ttl_s: float) -> dict[int, int]:
    """Extend every lease this instance still holds; vehicle id -> epoch of those kept.

    A lease that expired but was not taken is still this instance's at the same epoch (only ``claim``
    changes the owner, under the same row lock), so it is renewed too.
    """
    rows = conn.execute(
        text(
            "UPDATE vehicle_leases SET expires_at = now() + make_interval(secs => :ttl) "
            "WHERE owner = :me RETURNING vehicle_id, epoch"
        ),
        {"me": instance_id, "ttl": ttl_s},
    )
    return {r[0]: r[1] for r in rows}


def claim(conn: Any, *, instance_id: str, vehicle_ids: Iterable[int], ttl_s: float) -> dict[int, int]:
    """Take the leases of those vehicles that are free or expired; vehicle id -> new epoch of those taken."""
    ids = sorted(set(vehicle_ids))
    if not ids:
        return {}
    rows = conn.execute(
        text(
            "INSERT INTO vehicle_leases (vehicle_id, owner, epoch, acquired_at, expires_at) "
            "SELECT v, :me, 1, now(), now() + make_interval(secs => :ttl) "
            "FROM unnest(CAST(:ids AS integer[])) v "
            "ON CONFLICT (vehicle_id) DO UPDATE SET owner = :me, epoch = vehicle_leases.epoch + 1, "
            "acquired_at = now(), expires_at = now() + make_interval(secs => :ttl) "
            "WHERE vehicle_leases.expires_at <= now() RETURNING vehicle_id, epoch"
        ),
        {"me": instance_id, "ids": ids, "ttl": ttl_s},
    )
    return {r[0]: r[1] for r in rows}


def release(conn: Any, *, instance_id: str, vehicle_ids: Iterable[int]) -> None:
    """Give leases up now (balancing); whoever claims them next raises the epoch."""
    ids = sorted(set(vehicle_ids))
    if ids:
        conn.execute(
            text(
                "UPDATE vehicle_leases SET expires_at = now() "
                "WHERE owner = :me AND vehicle_id = ANY(CAST(:ids AS integer[]))"
            ),
            {"me": instance_id, "ids": ids},
        )


def owners(conn: Any) -> dict[int, Lease]:
    """Every unexpired vehicle lease."""
    rows = conn.execute(text("SELECT vehicle_id, owner, epoch FROM vehicle_leases WHERE expires_at > now()"))
    return {r[0]: Lease(vehicle_id=r[0], owner=r[1], epoch=r[2]) for r in rows}


def unowned(conn: Any, *, vehicle_ids: Iterable[int]) -> list[int]:
    """Those of ``vehicle_ids`` with no lease or an expired one."""
    ids = sorted(set(vehicle_ids))
    if not ids:
        return []
    rows = conn.execute(
        text(
            "SELECT v FROM unnest(CAST(:ids AS integer[])) v LEFT JOIN vehicle_leases l ON l.vehicle_id = v "
            "WHERE l.vehicle_id IS NULL OR l.expires_at <= now() ORDER BY v"
        ),
        {"ids": ids},
    )
    return [r[0] for r in rows]


def fence(conn: Any, *, vehicle_id: int, instance_id: str, epoch: int) -> None:
    """StaleOwner unless ``instance_id`` holds ``vehicle_id`` at ``epoch``; locks the row until commit."""
    row = conn.execute(
        text("SELECT owner, epoch FROM vehicle_leases WHERE vehicle_id = :v FOR SHARE"), {"v": vehicle_id}
    ).first()
    if row is None:
        raise StaleOwner(
            f"vehicle {vehicle_id}: command refused: this instance ({instance_id}, epoch {epoch}) no longer "
            "owns it (nobody does)",
            code="cluster.vehicle_owned_by_nobody",
            params={"vehicle_id": vehicle_id, "instance_id": instance_id, "epoch": epoch},
        )
    if row[0] != instance_id or row[1] != epoch:
        raise StaleOwner(
            f"vehicle {vehicle_id}: command refused: this instance ({instance_id}, epoch {epoch}) no longer "
            f"owns it ({row[0]} at epoch {row[1]} does)",
            code="cluster.vehicle_owned_by_other",
            params={
                "vehicle_id": vehicle_id,
                "instance_id": instance_id,
                "epoch": epoch,
                "owner": row[0],
                "owner_epoch": row[1],
            },
        )


def lead(conn: Any, *, name: str, instance_id: str, ttl_s: float) -> int | None:
    """Take or keep the leader lease ``name``; its epoch while this instance leads, else None."""
    row = conn.execute(
        text(
            "INSERT INTO leader_leases (name, owner, epoch, acquired_at, expires_at) "
            "VALUES (:n, :me, 1, now(), now() + make_interval(secs => :ttl)) "
            "ON CONFLICT (name) DO UPDATE SET "
            "epoch = CASE WHEN leader_leases.owner = :me THEN leader_leases.epoch "
            "ELSE leader_leases.epoch + 1 END, "
            "acquired_at = CASE WHEN leader_leases.owner = :me "
            "THEN leader_leases.acquired_at ELSE now() END, "
            "owner = :me, expires_at = now() + make_interval(secs => :ttl) "
            "WHERE leader_leases.owner = :me OR leader_leases.expires_at <= now() RETURNING epoch"
        ),
        {"n": name, "me": instance_id, "ttl": ttl_s},
    ).first()
    return None if row is None else int(row[0])


def leader(conn: Any, *, name: str) -> str | None:
    """The instance holding the unexpired leader lease ``name``, if any."""
    row = conn.execute(
        text("SELECT owner FROM leader_leases WHERE name = :n AND expires_at > now()"), {"n": name}
    ).first()
    return None if row is None else str(row[0])
