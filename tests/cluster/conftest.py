"""Cluster fixtures: a migrated private schema in the test PostgreSQL, with vehicles registered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from mission.db import make_engine, session_scope
from mission.fleet import service as fleet
from mission.fleet.models import VehicleCreate
from tests.conftest_db import private_pg_schema


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A private schema in the test PostgreSQL (dropped afterwards), as a URL."""
    with private_pg_schema("c") as url:
        yield url


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    """An engine on the migrated private schema."""
    from api import migrations

    engine = make_engine(pg_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


def register(engine: Engine, count: int, *, base_port: int = 20000) -> list[int]:
    """``count`` vehicles in the registry; their ids."""
    ids = []
    with session_scope(engine) as session:
        for i in range(count):
            row = fleet.create(
                session=session,
                data=VehicleCreate(
                    name=f"v{i + 1}",
                    connection_url=f"udpin://0.0.0.0:{base_port + i}",
                    sysid=i + 1,
                    home_lat=39.82,
                    home_lon=109.98,
                ),
            )
            ids.append(row.id)
    return ids
