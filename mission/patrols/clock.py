"""Clocks the scheduler and dispatcher run on: the wall clock, or a simulated one that runs faster."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Now (aware UTC) and a sleep measured on the same clock."""

    def now(self) -> datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class AcceleratedClock:
    """Simulated time that starts at ``start`` and runs ``speed`` times faster than the wall clock.

    >>> clock = AcceleratedClock(datetime(2026, 1, 1, tzinfo=UTC), speed=60)
    >>> clock.now() >= datetime(2026, 1, 1, tzinfo=UTC)
    True
    """

    def __init__(self, start: datetime, *, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.start = start
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)
