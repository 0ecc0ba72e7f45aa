"""Harness for the dispatch flight tests (no tests here): the service as production builds it, with
simulated drones each on its own dock, auto-launch on, all flown through real MAVSDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.support.geo import offset
from tests.support.service import Service, running_service
from tests.support.wait import until

DispatchService = Service
__all__ = ["DispatchService", "dispatch_service", "offset", "until"]


@asynccontextmanager
async def dispatch_service(
    tmp_path: Path,
    *,
    docks: Sequence[tuple[float, float]],
    speed: float = 20.0,
    zones: Sequence[dict[str, Any]] = (),
    database_url: str | None = None,
    **settings: Any,
) -> AsyncIterator[Service]:
    """The service over vehicles on ``docks``, ready to fly; dispatch launches without a click."""
    values: dict[str, Any] = {
        "dispatch_auto_launch": True,
        "dispatch_auto_launch_max_priority": 5,
        **settings,
    }
    async with running_service(
        tmp_path, db_url=database_url, docks=docks, speed=speed, zones=zones, **values
    ) as svc:
        yield svc
