"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from api import migrations
from mission.db import make_engine

ROOT = Path(__file__).resolve().parents[1]


def _head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()


def test_every_table_module_is_migrated() -> None:
    """A models module with tables that MODEL_MODULES does not list would be missing from the migration."""
    with_tables = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "mission").rglob("*.py")
        if "table=True" in p.read_text(encoding="utf-8")
    )
    assert with_tables, "no table modules found"
    assert set(with_tables) <= set(migrations.MODEL_MODULES), set(with_tables) - set(migrations.MODEL_MODULES)


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    """``engine`` is upgraded to head by the fixture; autogenerate must find nothing left to do."""
    metadata = migrations.target_metadata()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == []
    assert set(metadata.tables) <= tables
    assert migrations.current_revision(engine) == _head()


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrations.upgrade(engine)
        command.downgrade(migrations.alembic_config(engine=engine), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrations.upgrade(engine)
        assert migrations.current_revision(engine) == _head()
    finally:
        engine.dispose()
