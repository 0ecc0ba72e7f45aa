"""Runtime: the service's live parts, built once by the API lifespan and torn down in reverse order.

    async with Runtime(settings=settings, engine=engine) as rt:
        rt.hub, rt.links, rt.fleet, rt.missions, rt.dispatcher, rt.scheduler

``settings`` is any object with the attributes read below (api.settings.Settings in the service); missing
ones take the defaults here, so tests can pass a small namespace.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.engine import Engine

from mission.dispatch.dispatcher import Dispatcher
from mission.dispatch.wiring import DispatchComponents
from mission.fleet.manager import FleetManager
from mission.link import LinkManager
from mission.missions.gate import GateConfig
from mission.missions.supervisor import MissionSupervisor, SupervisorConfig
from mission.patrols.scheduler import PatrolScheduler
from mission.telemetry.hub import TelemetryHub
from mission.video.config import VideoConfig
from mission.video.service import VideoService


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


class Runtime:
    """Owns the links, fleet manager, telemetry hub, mission supervisor and dispatch (dispatcher, patrols)."""

    def __init__(self, *, settings: Any, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.gate = GateConfig(
            battery_reserve_pct=float(_setting(settings, "battery_reserve_pct", 20.0)),
            fence_margin_m=float(_setting(settings, "fence_margin_m", 150.0)),
            clearance_m=float(_setting(settings, "clearance_m", 20.0)),
            max_alt_m=float(_setting(settings, "max_alt_m", 120.0)),
            return_alt_m=float(_setting(settings, "return_alt_m", 60.0)),
            time_margin_s=float(_setting(settings, "airspace_time_margin_s", 600.0)),
        )
        self.supervisor_config = SupervisorConfig(
            link_loss_timeout_s=float(_setting(settings, "link_loss_timeout_s", 30.0)),
        )
        self.hub = TelemetryHub(max_rate_hz=float(_setting(settings, "telemetry_hz", 10.0)))
        self._stack = contextlib.AsyncExitStack()
        self.links: LinkManager
        self.fleet: FleetManager
        self.missions: MissionSupervisor
        self.dispatch: DispatchComponents
        self.dispatcher: Dispatcher
        self.scheduler: PatrolScheduler
        self.video: VideoService | None = None

    async def __aenter__(self) -> Runtime:
        try:
            self.links = await self._stack.enter_async_context(
                LinkManager(
                    executor_workers=int(_setting(self.settings, "link_executor_workers", 64)),
                    telemetry_hz=float(_setting(self.settings, "telemetry_hz", 10.0)),
                )
            )
            self.fleet = FleetManager(
                engine=self.engine,
                links=self.links,
                hub=self.hub,
                registry_poll_s=float(_setting(self.settings, "registry_poll_s", 2.0)),
            )
            self.missions = MissionSupervisor(
                engine=self.engine,
                fleet=self.fleet,
                hub=self.hub,
                gate=self.gate,
                config=self.supervisor_config,
            )
            await self._stack.enter_async_context(self.fleet)
            await self._stack.enter_async_context(self.missions)
            self.dispatch = await self._stack.enter_async_context(
                DispatchComponents(
                    engine=self.engine,
                    fleet=self.fleet,
                    hub=self.hub,
                    supervisor=self.missions,
                    settings=self.settings,
                )
            )
            self.dispatcher, self.scheduler = self.dispatch.dispatcher, self.dispatch.scheduler
            # -- video (mission/video): live streams, evidence recordings, camera commands --
            video = VideoConfig.from_settings(self.settings)
            if video.enabled:
                self.video = await self._stack.enter_async_context(
                    VideoService(engine=self.engine, fleet=self.fleet, hub=self.hub, config=video)
                )
            # -- end video --
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        self.hub.close()
