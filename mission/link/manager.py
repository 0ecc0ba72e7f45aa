"""``LinkManager``: the service's one MAVSDK instance, its executor, and every per-vehicle link and task."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from types import TracebackType
from typing import Any

from mavsdk import ComponentType, Configuration, LogLevel, Mavsdk, log_subscribe
from mavsdk.exceptions import MavsdkError

from mission.errors import LinkError, NotFound
from mission.link.mavsdk_link import MavsdkVehicleLink

log = logging.getLogger(__name__)
_mavsdk_log = logging.getLogger("mavsdk")
_GCS_SYSID = 245  # MAVSDK's own system id as a ground station; a vehicle with it would be merged with us
_LOG_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.DEBUG,  # MAVSDK's INFO is chatty (every new system, every param)
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}
_logs_routed = False


def _route_mavsdk_logs() -> None:
    """MAVSDK prints to stdout; send its lines to the ``mavsdk`` logger instead (process-wide, once)."""
    global _logs_routed
    if _logs_routed:
        return

    def forward(level: LogLevel, message: str, file: str | None, line: int) -> bool:
        _mavsdk_log.log(_LOG_LEVELS.get(level, logging.INFO), "%s", message)
        return True

    log_subscribe(forward)
    _logs_routed = True


class LinkManager:
    """Owns the shared MAVSDK instance, its command executor, the telemetry tick and every vehicle's task.

    ``async with LinkManager() as links: link = await links.add_vehicle(sysid=1, url="udpin://0.0.0.0:14540")``
    """

    def __init__(
        self,
        *,
        executor_workers: int = 64,
        telemetry_hz: float = 10.0,
        command_timeout_s: float = 10.0,
        polls_per_snapshot: int = 4,
    ) -> None:
        if executor_workers < 1:
            raise ValueError(f"executor_workers must be >= 1, got {executor_workers}")
        if not 0.1 <= telemetry_hz <= 100:
            raise ValueError(f"telemetry_hz must be in 0.1..100, got {telemetry_hz}")
        if command_timeout_s <= 0:
            raise ValueError(f"command_timeout_s must be > 0, got {command_timeout_s}")
        if not 1 <= polls_per_snapshot <= 10:
            raise ValueError(f"polls_per_snapshot must be 1..10, got {polls_per_snapshot}")
        self._executor_workers = executor_workers
        self._period_s = 1.0 / telemetry_hz
        # Polling faster than the snapshot rate makes a snapshot at most one poll older than its sample.
        self._poll_period_s = self._period_s / polls_per_snapshot
        self._command_timeout_s = command_timeout_s
        self._links: dict[int, MavsdkVehicleLink] = {}
        self._connections: dict[int, Any] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._mavsdk: Mavsdk | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._service_tasks: list[asyncio.Task[None]] = []
        self._systems_changed = asyncio.Event()
        self._new_system_handle: Any = None

    @property
    def telemetry_hz(self) -> float:
        """Snapshots per second each vehicle produces."""
        return 1.0 / self._period_s

    async def __aenter__(self) -> LinkManager:
        loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._executor_workers, thread_name_prefix="mavsdk-call"
        )
        _route_mavsdk_logs()
        self._mavsdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
        changed = self._systems_changed

        def on_new_system(_user_data: object) -> None:  # MAVSDK callback thread
            with contextlib.suppress(RuntimeError):  # the loop is already closed during shutdown
                loop.call_soon_threadsafe(changed.set)

        self._new_system_handle = self._mavsdk.subscribe_on_new_system(on_new_system)
        self._service_tasks = [
            asyncio.create_task(self._run_telemetry_tick(), name="link:telemetry"),
            asyncio.create_task(self._run_discovery(), name="link:discovery"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def add_vehicle(self, *, sysid: int, url: str) -> MavsdkVehicleLink:
        """Listen on ``url`` for the vehicle with MAVLink ``sysid``; returns its link at once."""
        mavsdk, executor = self._require_open()
        if not 1 <= sysid <= 255 or sysid == _GCS_SYSID:
            raise ValueError(f"sysid must be 1..255 and not {_GCS_SYSID} (MAVSDK's own), got {sysid}")
        if sysid in self._links:
            raise LinkError(
                f"vehicle {sysid}: add failed: sysid already linked on {self._links[sysid].url}"
                "; sysids must be unique",
                vehicle_id=sysid,
                action="add",
            )
        if any(link.url == url for link in self._links.values()):
            raise LinkError(
                f"vehicle {sysid}: add failed: {url} is already used by another vehicle", vehicle_id=sysid
            )
        loop = asyncio.get_running_loop()
        try:
            handle = await loop.run_in_executor(executor, mavsdk.add_any_connection_with_handle, url)
        except MavsdkError as err:
            raise LinkError(
                f"vehicle {sysid}: add failed: cannot open {url}: {err}", vehicle_id=sysid
            ) from err
        link = MavsdkVehicleLink(
            sysid=sysid,
            url=url,
            executor=executor,
            command_timeout_s=self._command_timeout_s,
            snapshot_period_s=self._period_s,
            poll_period_s=self._poll_period_s,
        )
        self._links[sysid] = link
        self._connections[sysid] = handle
        self._tasks[sysid] = asyncio.create_task(link.supervise(), name=f"vehicle:{sysid}")
        self._systems_changed.set()  # the system may be known to MAVSDK already (a vehicle re-added)
        return link

    def get(self, sysid: int) -> MavsdkVehicleLink:
        """The link of vehicle ``sysid``; NotFound if it was never added."""
        try:
            return self._links[sysid]
        except KeyError:
            raise NotFound(f"vehicle {sysid} has no link (known: {sorted(self._links) or 'none'})") from None

    def all(self) -> list[MavsdkVehicleLink]:
        """Every link, by sysid."""
        return [self._links[s] for s in sorted(self._links)]

    async def remove_vehicle(self, sysid: int) -> None:
        """Stop the vehicle's task, close its link and its connection."""
        link = self.get(sysid)
        del self._links[sysid]
        task = self._tasks.pop(sysid)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.close()
        handle = self._connections.pop(sysid)
        mavsdk, executor = self._require_open()
        await asyncio.get_running_loop().run_in_executor(executor, mavsdk.remove_connection, handle)

    async def aclose(self) -> None:
        """Cancel every task, close every link, destroy plugins before the MAVSDK instance (idempotent)."""
        tasks = [*self._service_tasks, *self._tasks.values()]
        self._service_tasks, self._tasks = [], {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links))
        self._connections.clear()
        mavsdk, self._mavsdk = self._mavsdk, None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if mavsdk is not None:
            if self._new_system_handle is not None:
                mavsdk.unsubscribe_on_new_system(self._new_system_handle)
            mavsdk.destroy()

    # ---- tasks --------------------------------------------------------------------------------

    async def _run_telemetry_tick(self) -> None:
        """One timer for the whole fleet: each poll lets every vehicle publish if a new sample is due."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            now = time.time()
            for link in list(self._links.values()):
                try:
                    link.tick(now)
                except Exception:  # one vehicle's bad sample must not stop the fleet's telemetry
                    log.exception("vehicle %d: telemetry sample failed", link.vehicle_id)
            next_at += self._poll_period_s
            delay = next_at - loop.time()
            if delay < 0:  # fell behind (loop busy): skip ticks rather than burst
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(delay)

    async def _run_discovery(self) -> None:
        """Bind each MAVSDK system to the link waiting for its sysid; woken by the new-system callback."""
        while True:
            waiting = any(not link.bound for link in self._links.values())
            # the 1 s poll only backs up the callback while some vehicle has not been seen
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._systems_changed.wait(), 1.0 if waiting else None)
            self._systems_changed.clear()
            unbound = {sysid: link for sysid, link in self._links.items() if not link.bound}
            if not unbound or self._mavsdk is None:
                continue
            for system in self._mavsdk.get_systems():
                link = unbound.pop(system.get_system_id(), None)
                if link is None:
                    system.destroy()  # get_systems() hands out a new handle per call; release the unused ones
                    continue
                try:
                    link.bind(system)
                except Exception:
                    log.exception("vehicle %d: cannot attach MAVSDK plugins", link.vehicle_id)
                    system.destroy()

    def _require_open(self) -> tuple[Mavsdk, concurrent.futures.ThreadPoolExecutor]:
        if self._mavsdk is None or self._executor is None:
            raise RuntimeError("LinkManager is not running: use it as `async with LinkManager() as links:`")
        return self._mavsdk, self._executor
