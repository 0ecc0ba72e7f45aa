"""Suite-wide fixtures: every test must leave no asyncio task running."""

from __future__ import annotations

import asyncio

import pytest

# ``make test`` runs the suite in two passes (scripts/run-tests): first everything else on two xdist
# workers, then these alone, one at a time. They need the machine to themselves: real PX4 in lockstep
# (a PX4 test failed while another PX4 test ran beside it), several ``skywarden serve`` processes and their
# simulators (tests/cluster), a Chromium measuring the panel beside a flying fleet (tests/browser), and the
# gate property test's stream of service restarts.
SERIAL_PATHS = ("tests/cluster/", "tests/browser/", "tests/integration/test_gate_property.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if item.get_closest_marker("px4") is not None or where.startswith(SERIAL_PATHS):
            item.add_marker(pytest.mark.serial)


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
