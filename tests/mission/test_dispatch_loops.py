"""The dispatcher's overwatch loop outlives any error in one tick (logged), and keeps ticking."""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import SQLModel

from mission.db import make_engine
from mission.dispatch.dispatcher import DispatchConfig, Dispatcher
from mission.telemetry.hub import TelemetryHub


class FlakyTicks(Dispatcher):
    """A dispatcher whose first ticks fail the way a bug or a bad row would."""

    ticks = 0

    async def overwatch_tick(self) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise RuntimeError("a bug in one tick")
        if self.ticks == 2:
            raise KeyError("a row without the expected field")


async def test_the_overwatch_loop_logs_and_survives_unexpected_errors(tmp_path, caplog):
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    SQLModel.metadata.create_all(engine)
    dispatcher = FlakyTicks(
        engine=engine,
        fleet=None,  # type: ignore[arg-type]  (the overridden tick never reads the fleet)
        hub=TelemetryHub(),
        config=DispatchConfig(overwatch_period_wall_s=0.01),
    )
    with caplog.at_level(logging.ERROR, logger="mission.dispatch.dispatcher"):
        async with dispatcher:
            for _ in range(200):
                if dispatcher.ticks >= 4:
                    break
                await asyncio.sleep(0.01)
    engine.dispose()
    assert dispatcher.ticks >= 4
    failures = [r for r in caplog.records if "overwatch tick failed unexpectedly" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None
