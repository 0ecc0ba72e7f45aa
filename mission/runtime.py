"""Runtime: the service's live parts, built once by the API lifespan and torn down in reverse order.

    async with Runtime(settings=settings, engine=engine) as rt:
        rt.hub, rt.links, rt.fleet, rt.flights, rt.missions, rt.dispatcher, rt.scheduler

``settings`` is the service's ``api.settings.Settings``: every knob read here is declared there, with its
default, and nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.cluster import Cluster, ClusterConfig
from mission.cluster.events import EventRelay
from mission.cordons.runner import CordonConfig, CordonRunner
from mission.dispatch.dispatcher import Dispatcher
from mission.dispatch.wiring import DispatchComponents
from mission.fleet.manager import FleetManager
from mission.fleet.models import Vehicle
from mission.flights.commander import Commander
from mission.flights.executor import ExecutorConfig, FlightExecutor
from mission.link import LinkManager
from mission.loopwatch import LoopWatch
from mission.missions.supervisor import MissionSupervisor, SupervisorConfig
from mission.patrols.scheduler import PatrolScheduler
from mission.reports.sorties import SortieRecorder
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
        self._singles: list[Callable[[], AbstractAsyncContextManager[Any]]] = []
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
        self.sorties: SortieRecorder
        self.video: VideoService | None = None
        self.cluster: Cluster | None = None
        self.relay: EventRelay | None = None

    def enabled_vehicle_ids(self) -> list[int]:
        """Every enabled vehicle in the registry (what the cluster's leases cover)."""
        with Session(self.engine) as session:
            return [
                int(v)
                for v in session.exec(select(Vehicle.id).where(col(Vehicle.enabled).is_(True))).all()
                if v is not None
            ]

    def owns(self, vehicle_id: int) -> bool:
        """Whether this instance flies, commands and supervises the vehicle (always, with one instance)."""
        return self.cluster is None or self.cluster.owns(vehicle_id)

    def singleton(self, name: str, factory: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        """Run ``factory()`` on one instance of the cluster at a time (the event runner's hook too).

        With one instance it runs here from now until the runtime stops; with several, on the leader of
        ``name`` only, moving to another instance when the leader dies.
        """
        if self.cluster is not None:
            self.cluster.singleton(name, factory)
            return
        self._singles.append(factory)

    async def start_singletons(self) -> None:
        """Single instance: start what ``singleton`` was given (the cluster starts its own)."""
        singles, self._singles = self._singles, []
        for factory in singles:
            await self._stack.enter_async_context(factory())

    @contextlib.asynccontextmanager
    async def _operations(self) -> AsyncIterator[None]:
        """The event and cordon runners, resuming what the database says is running."""
        async with self.events, self.cordons:
            yield

    def _busy(self, vehicle_id: int) -> bool:
        """A vehicle flying, armed or supervised is not handed to another instance to balance the load."""
        snap = self.fleet.latest(vehicle_id)
        if snap is not None and snap.link_up and (snap.armed or snap.in_air):
            return True
        return self.flights.supervisor_of(vehicle_id) is not None

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
                engine=self.engine,
                links=self.links,
                hub=self.hub,
                registry_poll_s=settings.registry_poll_s,
                listen_port_offset=settings.link_port_offset,
            )
            if settings.cluster:
                config = ClusterConfig.from_settings(settings)
                self.relay = await self._stack.enter_async_context(
                    EventRelay(engine=self.engine, hub=self.hub, instance_id=config.instance_id)
                )
                self.cluster = Cluster(
                    engine=self.engine,
                    config=config,
                    vehicles=self.enabled_vehicle_ids,
                    can_release=lambda vid: not self._busy(vid),
                )
            self.commander = Commander(engine=self.engine, links=self.fleet, fence=self.cluster)
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
            # Sorties (take-off to landing with the charge at both ends) for the battery report.
            self.sorties = await self._stack.enter_async_context(
                SortieRecorder(engine=self.engine, fleet=self.fleet, owns=self.owns)
            )
            await self._stack.enter_async_context(self.fleet)
            if self.cluster is not None:
                # Leases first (one pass), so recovery at start covers only this instance's vehicles; a
                # vehicle taken over later is recovered the same way, and a lost one let go.
                cluster = self.cluster
                self.flights.set_ownership(cluster.owns)
                self.missions.set_ownership(cluster.owns)
                await self._stack.enter_async_context(cluster)
                owned_at_start = set(cluster.owned())
            await self._stack.enter_async_context(self.missions)
            await self._stack.enter_async_context(self.flights)
            if self.cluster is not None:
                self.cluster.on_acquired(self.flights.adopt)
                self.cluster.on_acquired(self.missions.adopt)
                self.cluster.on_lost(self.flights.release)
                self.cluster.on_lost(self.missions.release)
                for vid in set(self.cluster.owned()) - owned_at_start:  # taken while those two started
                    await self.flights.adopt(vid)
                    await self.missions.adopt(vid)
            self.dispatch = await self._stack.enter_async_context(
                DispatchComponents(
                    engine=self.engine,
                    fleet=self.fleet,
                    hub=self.hub,
                    executor=self.flights,
                    missions=self.missions,
                    settings=settings,
                    singletons_by_leader=self.cluster is not None,
                    owns=self.cluster.owns if self.cluster is not None else None,
                    instance_id=self.cluster.instance_id if self.cluster is not None else "",
                )
            )
            self.dispatcher, self.scheduler = self.dispatch.dispatcher, self.dispatch.scheduler
            if self.cluster is not None:
                self.singleton("overwatch", self.dispatcher.leading)
                self.singleton("patrols", lambda: self.scheduler)
            # -- large events and cordons (mission/security_events, mission/cordons) --
            self.events = EventRunner(
                engine=self.engine,
                fleet=self.fleet,
                hub=self.hub,
                executor=self.flights,
                config=RunnerConfig.from_settings(settings),
                video=lambda: self.video,  # built below; the gimbal at posts looks at the venue
            )
            self.cordons = CordonRunner(
                engine=self.engine,
                fleet=self.fleet,
                hub=self.hub,
                executor=self.flights,
                candidates=self.dispatcher.candidates,
                config=CordonConfig.from_settings(settings),
                video=lambda: self.video,  # built below; the gimbal at a station looks at the road
                backfill=lambda: self.dispatcher.backfill,  # a patrol drone taken: its gap backfilled
            )
            if self.cluster is not None:
                # One instance runs event operations (the leader of "operations"; requests to the others are
                # forwarded there, api/forwarding.py); a new leader resumes them from the database.
                self.singleton("operations", self._operations)
            else:
                await self._stack.enter_async_context(self._operations())
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
            await self.start_singletons()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        self.hub.close()
