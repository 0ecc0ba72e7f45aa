"""How long the event loop stalls: a task asks to wake every ``period_s`` and records how late it was.

Telemetry, commands and the executor all share one loop; any blocking call on it (a synchronous database
write, planning in an async route) shows up here as a stall. The service reports the worst and the p99.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class LoopWatch:
    """``async with LoopWatch() as watch: ... watch.worst_ms`` (the worst lateness since the last reset)."""

    def __init__(self, *, period_s: float = 0.01, window: int = 6000) -> None:
        self.period_s = period_s
        self._late_ms: deque[float] = deque(maxlen=window)
        self.worst_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._run(), name="loopwatch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def reset(self) -> None:
        self._late_ms.clear()
        self.worst_ms = 0.0

    def p99_ms(self) -> float:
        if not self._late_ms:
            return 0.0
        ordered = sorted(self._late_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.period_s)
            late_ms = max(0.0, (time.perf_counter() - start - self.period_s) * 1000.0)
            self._late_ms.append(late_ms)
            self.worst_ms = max(self.worst_ms, late_ms)
