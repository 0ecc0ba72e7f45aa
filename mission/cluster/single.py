"""SQLite serves one instance: a second one on the same database file is refused at once.

The lock is an exclusive ``flock`` on ``<database>.instance.lock``, held for the process's life (the kernel
drops it when the process dies, even by ``kill -9``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import Engine


class SecondInstance(RuntimeError):
    """Another instance already serves this SQLite database."""


class SingleInstanceLock:
    """``with SingleInstanceLock(engine):`` — SecondInstance if another process holds the database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._fd: int | None = None

    def __enter__(self) -> SingleInstanceLock:
        database = self._engine.url.database
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
