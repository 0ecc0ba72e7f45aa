"""Alembic environment: runs against the app's engine when given one, else SKYWARDEN_DATABASE_URL."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Engine

from api.migrations import target_metadata
from mission.db import DEFAULT_DATABASE_URL, make_engine

config = context.config
metadata = target_metadata()

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _engine() -> tuple[Engine, bool]:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine, False
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "SKYWARDEN_DATABASE_URL", DEFAULT_DATABASE_URL
    )
    return make_engine(url), True


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "SKYWARDEN_DATABASE_URL", DEFAULT_DATABASE_URL
    )
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine, owned = _engine()
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
