"""Fixtures: a sim fleet plus a pymavlink ground station on the port the vehicle sends to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sim import SimConfig, SimFleet, SimVehicle
from tests.sim.gcs import Gcs

HOME = (39.82, 109.98, 1100.0)

FlyFactory = Callable[..., Awaitable[tuple[SimFleet, SimVehicle, Gcs]]]


@pytest.fixture
async def fly() -> AsyncIterator[FlyFactory]:
    """Factory: `fleet, vehicle, gcs = await fly(speed=20, config=SimConfig(...))`."""
    opened: list[tuple[SimFleet, Gcs]] = []

    async def _make(
        *, speed: float = 20.0, config: SimConfig | None = None
    ) -> tuple[SimFleet, SimVehicle, Gcs]:
        gcs = Gcs()
        port = await gcs.open()
        fleet = SimFleet(count=1, base_port=port, speed=speed, home=HOME, config=config)
        opened.append((fleet, gcs))
        await fleet.start()
        await gcs.wait_connected()
        return fleet, fleet.vehicles[0], gcs

    yield _make
    for fleet, gcs in opened:
        await fleet.close()
        gcs.close()
