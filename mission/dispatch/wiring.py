"""Dispatch's part of the Runtime: the Dispatcher and the PatrolScheduler, built and torn down together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from mission.db import session_scope
from mission.dispatch.backfill import MissionControl
from mission.dispatch.config import DispatchConfig
from mission.dispatch.dispatcher import Dispatcher
from mission.dispatch.energy import Wind
from mission.dispatch.fleet_view import FleetReader
from mission.flights.executor import FlightExecutor
from mission.patrols.clock import AcceleratedClock, Clock, WallClock
from mission.patrols.handoff import PatrolHandoff
from mission.patrols.launcher import SupervisorLauncher
from mission.patrols.models import PatrolRun
from mission.patrols.scheduler import PatrolScheduler
from mission.telemetry.events import EventSink


def patrol_clock(settings: Any) -> Clock:
    """The scheduler's clock: the wall clock on real drones, the simulated one at ``sim_speed`` != 1."""
    if settings.sim_speed == 1.0 and settings.patrol_clock_start is None:
        return WallClock()
    start = settings.patrol_clock_start or datetime.now(UTC)
    return AcceleratedClock(start, speed=settings.sim_speed)


class DispatchComponents:
    """Owns the Dispatcher and the PatrolScheduler; an async context manager for the Runtime's stack."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: FleetReader,
        hub: EventSink,
        executor: FlightExecutor,
        missions: MissionControl,
        settings: Any,
        singletons_by_leader: bool = False,
        owns: Callable[[int], bool] | None = None,
        instance_id: str = "",
    ) -> None:
        # Several instances: the overwatch loop and the patrol scheduler run on the leader only (the
        # runtime hands ``dispatcher.leading()`` and ``scheduler`` to the cluster as singletons).
        self.singletons_by_leader = singletons_by_leader
        self.config = DispatchConfig.from_settings(settings)
        self.dispatcher = Dispatcher(
            engine=engine,
            fleet=fleet,
            hub=hub,
            executor=executor,
            missions=missions,
            config=self.config,
            wind=Wind(settings.wind_speed_m_s, settings.wind_from_deg),
        )
        self.dispatcher.leads_here = not singletons_by_leader

        def link_run(run_id: int, mission_id: int) -> None:
            with session_scope(engine) as session:
                run = session.get(PatrolRun, run_id)
                if run is not None:
                    run.mission_id = mission_id
                    session.add(run)

        # Several instances: the scheduler (on the leader) chooses among the whole fleet; a run on a vehicle
        # another instance owns is handed to that instance, whose PatrolHandoff launches it (a mission is
        # flown by its vehicle's owner; a patrol mid-flight is taken over with its vehicle like any mission).
        launcher = SupervisorLauncher(
            missions=missions, states=self.dispatcher.states, on_created=link_run, owns=owns
        )
        self.scheduler = PatrolScheduler(
            engine=engine,
            launcher=launcher,
            clock=patrol_clock(settings),
            catch_up_s=settings.patrol_catch_up_s,
        )
        self.handoff: PatrolHandoff | None = None
        if owns is not None:
            self.handoff = PatrolHandoff(
                engine=engine,
                launcher=launcher,
                owns=owns,
                instance_id=instance_id,
                clock=self.scheduler.clock,
            )

    async def __aenter__(self) -> DispatchComponents:
        await self.dispatcher.__aenter__()
        if self.handoff is not None:
            await self.handoff.__aenter__()
        if self.singletons_by_leader:
            return self
        try:
            await self.scheduler.__aenter__()
        except BaseException:
            if self.handoff is not None:
                await self.handoff.__aexit__(None, None, None)
            await self.dispatcher.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if not self.singletons_by_leader:
                await self.scheduler.__aexit__(*exc)
            if self.handoff is not None:
                await self.handoff.__aexit__(*exc)
        finally:
            await self.dispatcher.__aexit__(*exc)
