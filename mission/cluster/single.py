"""SQLite serves one instance: a second one on the same database file is refused at once.

The lock is an exclusive ``flock`` on ``<database>.instance.lock``, held for the process's life (the kernel
drops it when the process dies, even by ``kill -9``).

PostgreSQL serves one instance alone or several as a cluster, never a mix: an instance without
``cluster=true`` next to clustered ones would command, watchdog and reconcile their vehicles. A lone instance
holds an exclusive session advisory lock, each clustered one the same lock shared, so whichever comes second
is refused at once. The lock is per database and schema, held on its own connection for the process's life
(PostgreSQL drops it when that connection closes, also on ``kill -9``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


class SecondInstance(RuntimeError):
    """Another instance already serves this SQLite database."""


_PG_KEY = "skywarden-instances"  # hashed with the database and schema into the advisory lock's key


class SingleInstanceLock:
    """``with SingleInstanceLock(engine, cluster=...):`` — SecondInstance if the database is served otherwise.

    SQLite: one instance per file. PostgreSQL: one lone instance, or any number of clustered ones.
    """

    def __init__(self, engine: Engine, *, cluster: bool = False) -> None:
        self._engine = engine
        self._cluster = cluster
        self._fd: int | None = None
        self._pg: Connection | None = None

    def _lock_postgres(self) -> None:
        conn = self._engine.connect()
        try:
            where = conn.execute(text("SELECT current_database() || '/' || current_schema()")).scalar_one()
            fn = "pg_try_advisory_lock_shared" if self._cluster else "pg_try_advisory_lock"
            got = conn.execute(
                text(f"SELECT {fn}(hashtext(:key))"), {"key": f"{_PG_KEY}:{where}"}
            ).scalar_one()
            conn.commit()  # session lock: it outlives the transaction, held until the connection closes
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            if self._cluster:
                raise SecondInstance(
                    "a skywarden instance without cluster=true already serves the PostgreSQL database "
                    f"{where}; instances sharing a database must all run clustered: stop it, or start "
                    "every instance with SKYWARDEN_CLUSTER=true (or --instance-id)"
                )
            raise SecondInstance(
                f"skywarden instances already serve the PostgreSQL database {where}; another one joins them "
                "only clustered: start it with SKYWARDEN_CLUSTER=true (or --instance-id), as every other"
            )
        self._pg = conn

    def __enter__(self) -> SingleInstanceLock:
        database = self._engine.url.database
        if self._engine.dialect.name == "postgresql":
            self._lock_postgres()
            return self
        if self._engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return self
        path = Path(database).resolve().with_suffix(Path(database).suffix + ".instance.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SecondInstance(
                f"another skywarden instance already serves the SQLite database {database}; SQLite is for "
                "one instance: several instances need PostgreSQL (SKYWARDEN_DATABASE_URL=postgresql+psycopg://"
                "...) and SKYWARDEN_CLUSTER=true"
            ) from None
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._pg is not None:
            # Closed, not returned to the pool: the session ends and the advisory lock goes with it.
            self._pg.invalidate()
            self._pg.close()
            self._pg = None
