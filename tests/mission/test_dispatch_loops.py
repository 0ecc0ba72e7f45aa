"""The overwatch loop outlives any error in one tick (logged), and keeps ticking."""

from __future__ import annotations

import asyncio
import logging

from mission.dispatch.config import DispatchConfig
from mission.dispatch.overwatch import Overwatch


class FlakyTicks(Overwatch):
    """An overwatch whose first ticks fail the way a bug or a bad row would."""

    ticks = 0

    async def tick(self) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise RuntimeError("a bug in one tick")
        if self.ticks == 2:
            raise KeyError("a row without the expected field")


async def test_the_overwatch_loop_logs_and_survives_unexpected_errors(caplog):
    # The overridden tick reads nothing: the loop itself is under test.
    overwatch = FlakyTicks(
        engine=None,  # type: ignore[arg-type]
        hub=None,  # type: ignore[arg-type]
        candidates=None,  # type: ignore[arg-type]
        orders=None,  # type: ignore[arg-type]
        config=DispatchConfig(overwatch_period_wall_s=0.01),
        close=None,  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.ERROR, logger="mission.dispatch.overwatch"):
        loop = asyncio.create_task(overwatch.run())
        for _ in range(200):
            if overwatch.ticks >= 4:
                break
            await asyncio.sleep(0.01)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert overwatch.ticks >= 4
    failures = [r for r in caplog.records if "overwatch tick failed unexpectedly" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None
