"""Suite-wide fixtures: every test must leave no asyncio task running."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(autouse=True)
async def _no_leaked_tasks():
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    if leaked:
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"test left {len(leaked)} task(s) running: {sorted(t.get_name() for t in leaked)}")


# Shared database fixtures (db_url over SQLite and PostgreSQL, a migrated engine, a session).
from tests.conftest_db import db_url, engine, session  # noqa: E402, F401

# Fresh PX4 SITL vehicles for a test (skipped, with the reason, where the bundle is missing).
from tests.support.px4 import px4_fleet  # noqa: E402, F401
from tests.support.vehicles import vehicle_kind  # noqa: E402, F401  (sim, and px4 where the bundle is)
