"""Database fixtures: every test that asks for ``db_url`` runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL tests each get a fresh schema (``search_path`` set on the URL) that is dropped afterwards.
``engine`` is migrated with the real Alembic migrations, so the suite also proves the migrations.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mission.db import make_engine

POSTGRES_URL = os.environ.get(
    "SKYWARDEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def private_pg_schema(prefix: str = "t") -> Iterator[str]:
    """A fresh schema in the test PostgreSQL, as a URL whose ``search_path`` is that schema; dropped after."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A URL of an empty database: a SQLite file, or a private schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'skywarden.db'}"
        return
    with private_pg_schema() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` migrated to head with the project's Alembic migrations."""
    from api import migrations

    eng = make_engine(db_url)
    migrations.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A plain session on the migrated database (commit explicitly where the test needs it)."""
    with Session(engine, expire_on_commit=False) as s:
        yield s
