"""Alembic migrations for every table, and the helpers the CLI and the app use to run them."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

MIGRATIONS_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = MIGRATIONS_DIR.parent / "alembic.ini"

# Every module that defines tables; Alembic compares the database against these.
MODEL_MODULES: tuple[str, ...] = (
    "mission.fleet.models",
    "mission.airspace.models",
    "mission.audit.models",
    "mission.auth.models",
    "mission.missions.models",
    "mission.control.models",
    "mission.incidents.models",
    "mission.patrols.models",
    "mission.payload.models",
    "mission.security_events.models",
    "mission.flights.models",
    "mission.video.models",
    "mission.cordons.models",
    "mission.cluster.models",
    "mission.reports.models",
)


def target_metadata() -> MetaData:
    """SQLModel's metadata with every table module imported."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return SQLModel.metadata


def alembic_config(*, engine: Engine | None = None, url: str | None = None) -> Config:
    """An Alembic config for our migrations, bound to ``engine`` (preferred) or ``url``."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["engine"] = engine
    config.attributes["configure_logging"] = False
    return config


def upgrade(engine: Engine, *, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision``."""
    command.upgrade(alembic_config(engine=engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
