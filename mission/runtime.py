"""Runtime: the service's live parts, built once by the API lifespan and torn down in reverse order.

    async with Runtime(settings=settings, engine=engine) as rt:
        rt.hub, rt.links, rt.fleet, rt.flights, rt.missions, rt.dispatcher, rt.scheduler

``settings`` is the service's ``api.settings.Settings``: every knob read here is declared there, with its
default, and nowhere else.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.engine import Engine

from mission.cordons.runner import CordonConfig, CordonRunner
from mission.dispatch.dispatcher import Dispatcher
from mission.dispatch.wiring import DispatchComponents
from mission.fleet.manager import FleetManager
from mission.flights.commander import Commander
from mission.flights.executor import ExecutorConfig, FlightExecutor
from mission.link import LinkManager
from mission.loopwatch import LoopWatch
from mission.missions.supervisor import MissionSupervisor, SupervisorConfig
from mission.patrols.scheduler import PatrolScheduler
from mission.safety.gate import GateConfig
from mission.security_events.runner import EventRunner, RunnerConfig
from mission.telemetry.hub import TelemetryHub
from mission.video.config import VideoConfig
from mission.video.service import VideoService


class Runtime:
    """Owns the links, fleet, telemetry hub, the flight executor (flights and missions) and dispatch."""

    def __init__(self, *, settings: Any, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.gate = GateConfig.from_settings(settings)
        self.hub = TelemetryHub(max_rate_hz=settings.telemetry_hz)
        self.loop = LoopWatch()
        self._stack = contextlib.AsyncExitStack()
        self.links: LinkManager
        self.fleet: FleetManager
        self.commander: Commander
        self.flights: FlightExecutor
        self.missions: MissionSupervisor
        self.dispatch: DispatchComponents
        self.dispatcher: Dispatcher
        self.scheduler: PatrolScheduler
        self.events: EventRunner
        self.cordons: CordonRunner
        self.video: VideoService | None = None

    async def __aenter__(self) -> Runtime:
        settings = self.settings
        try:
            await self._stack.enter_async_context(self.loop)
            self.links = await self._stack.enter_async_context(
                LinkManager(
                    executor_workers=settings.link_executor_workers, telemetry_hz=settings.telemetry_hz
                )
            )
            self.fleet = FleetManager(
                engine=self.engine, links=self.links, hub=self.hub, registry_poll_s=settings.registry_poll_s
            )
            self.commander = Commander(engine=self.engine, links=self.fleet)
            self.flights = FlightExecutor(
                engine=self.engine,
                fleet=self.fleet,
                hub=self.hub,
                commander=self.commander,
                gate=self.gate,
                config=ExecutorConfig.from_settings(settings),
            )
            self.missions = MissionSupervisor(
                engine=self.engine,
                fleet=self.fleet,
                hub=self.hub,
                executor=self.flights,
                config=SupervisorConfig.from_settings(settings),
            )
            await self._stack.enter_async_context(self.fleet)
            await self._stack.enter_async_context(self.missions)
            await self._stack.enter_async_context(self.flights)
            self.dispatch = await self._stack.enter_async_context(
                DispatchComponents(
                    engine=self.engine,
                    fleet=self.fleet,
                    hub=self.hub,
                    executor=self.flights,
                    missions=self.missions,
                    settings=settings,
                )
            )
            self.dispatcher, self.scheduler = self.dispatch.dispatcher, self.dispatch.scheduler
            # -- large events and cordons (mission/security_events, mission/cordons) --
            self.events = await self._stack.enter_async_context(
                EventRunner(
                    engine=self.engine,
                    fleet=self.fleet,
                    hub=self.hub,
                    executor=self.flights,
                    config=RunnerConfig.from_settings(settings),
                )
            )
            self.cordons = await self._stack.enter_async_context(
                CordonRunner(
                    engine=self.engine,
                    fleet=self.fleet,
                    hub=self.hub,
                    executor=self.flights,
                    candidates=self.dispatcher.candidates,
                    config=CordonConfig.from_settings(settings),
                )
            )
            # -- end events --
            # -- video (mission/video): live streams, evidence recordings, camera commands --
            video = VideoConfig.from_settings(self.settings)
            if video.enabled:
                self.video = await self._stack.enter_async_context(
                    VideoService(
                        engine=self.engine,
                        fleet=self.fleet,
                        hub=self.hub,
                        commander=self.commander,
                        config=video,
                    )
                )
            # -- end video --
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        self.hub.close()
