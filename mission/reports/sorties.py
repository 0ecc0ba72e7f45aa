"""The sortie recorder: cuts each vehicle's telemetry at its ``in_air`` edges into persisted sorties.

A listener on the fleet's snapshots notes take-off and landing (with the charge at each) and hands them,
in order, to one writer task; the telemetry path never waits on the database. A sortie left open by a
restart (or by another instance that owned the vehicle) is continued when the vehicle is still in the air
and closed with the charge then seen when it is already down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.link.types import TelemetrySnapshot
from mission.reports.models import Sortie

log = logging.getLogger(__name__)


class SnapshotSource(Protocol):
    def add_listener(self, listener: Callable[[int, TelemetrySnapshot], None]) -> None: ...


@dataclass(frozen=True, slots=True)
class Edge:
    """The vehicle was first seen, took off or landed."""

    vehicle_id: int
    in_air: bool
    at: datetime
    pct: float | None


class SortieRecorder:
    """Owns the writer task; enter it after the fleet manager, leave it before."""

    def __init__(
        self, *, engine: Engine, fleet: SnapshotSource, owns: Callable[[int], bool] = lambda _vid: True
    ) -> None:
        self._engine = engine
        self._owns = owns
        self._in_air: dict[int, bool] = {}
        self._ground_pct: dict[int, float] = {}  # the last charge seen on the ground
        self._edges: asyncio.Queue[Edge] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        fleet.add_listener(self._on_snapshot)

    async def __aenter__(self) -> SortieRecorder:
        self._task = asyncio.create_task(self._write_loop(), name="reports:sorties")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            # Write what the fleet reported before it stopped (a landing just seen), then stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._edges.join(), timeout=5.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drained(self) -> None:
        """Wait until every edge seen so far is written (tests and shutdown use it)."""
        await self._edges.join()

    def _on_snapshot(self, vehicle_id: int, snap: TelemetrySnapshot) -> None:
        if not snap.link_up or not self._owns(vehicle_id):
            return
        was = self._in_air.get(vehicle_id)
        if not snap.in_air and snap.battery_pct is not None:
            self._ground_pct[vehicle_id] = snap.battery_pct
        if was == snap.in_air:
            return
        self._in_air[vehicle_id] = snap.in_air
        # Take-off: the charge on the ground just before it (the first airborne reading already has a climb's
        # worth less); landing and a first sighting: the reading now.
        pct = self._ground_pct.get(vehicle_id, snap.battery_pct) if snap.in_air and was is False else None
        at = datetime.fromtimestamp(snap.received_at, UTC)
        self._edges.put_nowait(Edge(vehicle_id, snap.in_air, at, snap.battery_pct if pct is None else pct))

    async def _write_loop(self) -> None:
        while True:
            edge = await self._edges.get()
            try:
                await asyncio.to_thread(self._write, edge)
            except Exception:  # a failed write loses one sortie, not the recorder
                log.exception("could not record a sortie edge of vehicle %s", edge.vehicle_id)
            finally:
                self._edges.task_done()

    def _write(self, edge: Edge) -> None:
        with Session(self._engine) as session:
            open_ = session.exec(
                select(Sortie)
                .where(col(Sortie.vehicle_id) == edge.vehicle_id, col(Sortie.landed_at).is_(None))
                .order_by(col(Sortie.id).desc())
            ).first()
            if edge.in_air:
                if open_ is None:
                    session.add(Sortie(vehicle_id=edge.vehicle_id, took_off_at=edge.at, start_pct=edge.pct))
            elif open_ is not None:
                open_.landed_at, open_.end_pct = edge.at, edge.pct
                session.add(open_)
            session.commit()
