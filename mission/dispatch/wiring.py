"""Dispatch's part of the Runtime: the Dispatcher and the PatrolScheduler, built and torn down together.

In ``Runtime.__aenter__`` after the MissionSupervisor:

    self.dispatch = await self._stack.enter_async_context(
        DispatchComponents(engine=self.engine, fleet=self.fleet, hub=self.hub, supervisor=self.missions,
                           settings=self.settings))
    self.dispatcher, self.scheduler = self.dispatch.dispatcher, self.dispatch.scheduler
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from mission.db import session_scope
from mission.dispatch.dispatcher import DispatchConfig, Dispatcher, DispatchFleet, MissionControl
from mission.dispatch.energy import Wind
from mission.dispatch.fleet_view import PerformanceDefaults
from mission.patrols.clock import Clock, WallClock
from mission.patrols.launcher import SupervisorLauncher
from mission.patrols.models import PatrolRun
from mission.patrols.scheduler import PatrolScheduler
from mission.telemetry.events import EventSink


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


class DispatchComponents:
    """Owns the Dispatcher and the PatrolScheduler; an async context manager for the Runtime's stack."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: DispatchFleet,
        hub: EventSink,
        supervisor: MissionControl,
        settings: Any = None,
        clock: Clock | None = None,
        config: DispatchConfig | None = None,
    ) -> None:
        # Tests and the benchmark may hand a clock and a config in through the settings object.
        clock = clock or _setting(settings, "patrol_clock", None)
        config = config or _setting(settings, "dispatch_config", None)
        self.config = config or DispatchConfig(
            auto_launch=bool(_setting(settings, "dispatch_auto_launch", True)),
            mqtt_auto_dispatch=bool(_setting(settings, "mqtt_incident_auto_dispatch", True)),
            speed_factor=float(_setting(settings, "dispatch_speed_factor", 1.0)),
            performance=PerformanceDefaults(
                reserve_pct=float(_setting(settings, "battery_reserve_pct", 20.0))
            ),
        )
        self.dispatcher = Dispatcher(
            engine=engine,
            fleet=fleet,
            hub=hub,
            supervisor=supervisor,
            config=self.config,
            wind=Wind(
                float(_setting(settings, "wind_speed_m_s", 0.0)),
                float(_setting(settings, "wind_from_deg", 0.0)),
            ),
        )
        self._engine = engine

        def link_run(run_id: int, mission_id: int) -> None:
            with session_scope(engine) as session:
                run = session.get(PatrolRun, run_id)
                if run is not None:
                    run.mission_id = mission_id
                    session.add(run)

        self.scheduler = PatrolScheduler(
            engine=engine,
            launcher=SupervisorLauncher(
                missions=supervisor, states=self.dispatcher.states, on_created=link_run
            ),
            clock=clock or WallClock(),
            catch_up_s=float(_setting(settings, "patrol_catch_up_s", 300.0)),
        )

    async def __aenter__(self) -> DispatchComponents:
        await self.dispatcher.__aenter__()
        try:
            await self.scheduler.__aenter__()
        except BaseException:
            await self.dispatcher.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.scheduler.__aexit__(*exc)
        finally:
            await self.dispatcher.__aexit__(*exc)
