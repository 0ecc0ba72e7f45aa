"""PX4 SITL in tests: ``px4_fleet`` starts fresh PX4 vehicles for one test, or skips saying why it cannot.

    async def test_x(px4_fleet):
        vehicles = await px4_fleet(2, homes=[dock_home(0), dock_home(1)])

Each test gets its own PX4 processes (a fresh boot costs ~2 s and leaves nothing behind: no parameters,
mission or fence from an earlier test), in workdirs under the test's temp dir, ``--no-log``, at
``px4_speed()`` (env ``SKYWARDEN_PX4_SPEED``). Instance numbers are claimed machine-wide by
``sim.px4sitl`` so parallel tests and other checkouts never collide. Without the bundle every PX4 test is
skipped with the reason (a clone without ``../shared`` still passes).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest

from mission.scenario import DOCKS, HOME_ALT_M
from sim.px4sitl import Home, Px4Busy, Px4Fleet, Px4Instance, Px4Unavailable, launch, missing_reason

SPEED_ENV = "SKYWARDEN_PX4_SPEED"
# Lockstep speed factor of PX4 in tests. Measured on the 2-core test machine with other jobs running: 4 keeps
# every PX4 test passing (a PX4 at 4x costs ~40 % of a core); above that under load PX4 misses its own
# deadlines (EKF resets, late heartbeats) and flights stop following their timings.
DEFAULT_SPEED = 4.0

PX4_CRUISE_M_S = 5.0  # PX4 1.17's MPC_XY_CRUISE default: missions and gotos fly at it unless told otherwise
BUSY_WAIT_S = 60.0  # waiting for free PX4 instance numbers while other tests hold them

Px4Factory = Callable[..., Awaitable[list[Px4Instance]]]


def px4_speed() -> float:
    """The speed factor PX4 runs at in tests (``SKYWARDEN_PX4_SPEED``, default ``DEFAULT_SPEED``)."""
    raw = os.environ.get(SPEED_ENV)
    if not raw:
        return DEFAULT_SPEED
    try:
        speed = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{SPEED_ENV} must be a number, got {raw!r}") from None
    if not 0 < speed <= 20:
        raise pytest.UsageError(f"{SPEED_ENV} must be in (0, 20], got {speed}")
    return speed


def require_px4() -> None:
    """Skip the calling test with the reason when PX4 SITL cannot run here."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(f"PX4 SITL not available: {reason}")


def dock_home(index: int) -> Home:
    """The demo dock ``index`` (mod 7) as a PX4 home: lat, lon, the district's ground level AMSL."""
    dock = DOCKS[index % len(DOCKS)]
    return (dock.lat, dock.lon, HOME_ALT_M)


async def start_fleet(
    count: int,
    *,
    workdir: Path,
    homes: Sequence[Home] | None = None,
    speed: float | None = None,
    params: Mapping[str, float | int] | None = None,
) -> Px4Fleet:
    """``count`` fresh PX4s (skip without the bundle; wait while other tests hold the instance numbers)."""
    require_px4()
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            return await launch(
                count,
                homes=list(homes) if homes is not None else [dock_home(i) for i in range(count)],
                workdir=workdir,
                speed=speed if speed is not None else px4_speed(),
                params=params,
            )
        except Px4Busy as err:  # other tests (or checkouts) fly PX4 right now: wait for numbers
            if time.monotonic() > deadline:
                pytest.fail(f"PX4 SITL did not start within {BUSY_WAIT_S:.0f} s: {err}")
            await asyncio.sleep(1.0)
        except Px4Unavailable as err:
            pytest.fail(f"PX4 SITL did not start: {err}")


@pytest.fixture
async def px4_fleet(tmp_path: Path) -> AsyncIterator[Px4Factory]:
    """Factory: ``await make(n, homes=..., speed=..., params=...)`` starts n fresh PX4s, stopped after."""
    started: list[Px4Fleet] = []

    async def make(
        count: int,
        *,
        homes: Sequence[Home] | None = None,
        speed: float | None = None,
        params: Mapping[str, float | int] | None = None,
    ) -> list[Px4Instance]:
        fleet = await start_fleet(
            count, workdir=tmp_path / f"px4-run-{len(started)}", homes=homes, speed=speed, params=params
        )
        started.append(fleet)
        return list(fleet.instances)

    try:
        yield make
    finally:
        for fleet in reversed(started):
            await fleet.stop()
