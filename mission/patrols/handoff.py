"""Several instances: launch the patrol runs the leader's scheduler handed to vehicles this instance owns.

The scheduler (a leader singleton) chooses among the whole fleet; a mission is flown by its vehicle's owner,
so a run on another instance's vehicle is left on its claimed row (``HANDOFF_REASON``). Every instance looks
for such runs on the vehicles it owns, takes each with a conditional update (one instance wins; the others
never launch it) and launches it as the scheduler would have: same launcher, same audit actor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.patrols.clock import Clock, WallClock
from mission.patrols.models import Patrol, PatrolRead, PatrolRun, RunStatus
from mission.patrols.scheduler import (
    HANDOFF_REASON,
    PatrolLauncher,
    finish_run,
    launch_run,
    take_handed_off,
)

log = logging.getLogger(__name__)


class PatrolHandoff:
    """Launches handed-off patrol runs on owned vehicles; one task, ``patrols:handoff``."""

    def __init__(
        self,
        *,
        engine: Engine,
        launcher: PatrolLauncher,
        owns: Callable[[int], bool],
        instance_id: str,
        clock: Clock | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self._engine = engine
        self._launcher = launcher
        self._owns = owns
        self._instance_id = instance_id
        self._clock: Clock = clock or WallClock()
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._launches: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> PatrolHandoff:
        self._task = asyncio.create_task(self._loop(), name="patrols:handoff")
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [t for t in [self._task, *self._launches] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def _handed_off(self) -> list[tuple[int, int, PatrolRead]]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(PatrolRun, Patrol)
                .join(Patrol, col(Patrol.id) == col(PatrolRun.patrol_id))
                .where(
                    col(PatrolRun.status) == RunStatus.CLAIMED.value,
                    col(PatrolRun.reason) == HANDOFF_REASON,
                    col(PatrolRun.vehicle_id).is_not(None),
                )
                .order_by(col(PatrolRun.id))
            ).all()
            return [
                (run.id, run.vehicle_id, PatrolRead.model_validate(patrol))
                for run, patrol in rows
                if run.id is not None and run.vehicle_id is not None
            ]

    async def tick(self) -> list[int]:
        """Take and start every handed-off run whose vehicle this instance owns; returns their run ids."""
        taken: list[int] = []
        for run_id, vehicle_id, patrol in await asyncio.to_thread(self._handed_off):
            if not self._owns(vehicle_id):
                continue
            took = await asyncio.to_thread(
                take_handed_off, engine=self._engine, run_id=run_id, taker=self._instance_id
            )
            if not took:
                continue
            taken.append(run_id)
            task = asyncio.create_task(
                self._launch(patrol, run_id, vehicle_id), name=f"patrols:handoff:{run_id}"
            )
            self._launches.add(task)
            task.add_done_callback(self._launches.discard)
        return taken

    async def _launch(self, patrol: PatrolRead, run_id: int, vehicle_id: int) -> None:
        log.info("patrol run %s: launching on vehicle %s (handed over by the scheduler)", run_id, vehicle_id)
        status, reason, mission_id = await launch_run(
            launcher=self._launcher, patrol=patrol, run_id=run_id, vehicle_id=vehicle_id
        )
        await asyncio.to_thread(
            finish_run,
            engine=self._engine,
            run_id=run_id,
            status=status,
            reason=reason,
            vehicle_id=vehicle_id,
            mission_id=mission_id,
            at=self._clock.now(),
        )

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("patrol hand-off tick failed")
            await asyncio.sleep(self._poll_s)
