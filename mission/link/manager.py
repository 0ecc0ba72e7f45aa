"""``LinkManager``: the service's one MAVSDK instance, its executor, and every per-vehicle link and task."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from mavsdk import ComponentType, Configuration, LogLevel, Mavsdk, log_subscribe
from mavsdk.exceptions import MavsdkError

from mission.errors import LinkError, NotFound
from mission.link.mavsdk_link import MavsdkVehicleLink

log = logging.getLogger(__name__)
_mavsdk_log = logging.getLogger("mavsdk")
_GCS_SYSID = 245  # MAVSDK's own system id as a ground station; a vehicle with it would be merged with us
# One MAVSDK instance knows a system by its sysid alone (two vehicles with one sysid are merged), so it holds
# at most 254 vehicles (1..255 without its own 245). More vehicles go to further instances ("shards"), each
# with its own sysid space; MAVSDK corrupts memory beyond 16 instances per process (MAVLINK.md), so the
# manager stops well short of that and says so at once.
SYSIDS_PER_SHARD = 254
MAX_SHARDS = 8
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


@dataclass(eq=False)
class _Shard:
    """One MAVSDK instance and the sysids linked through it."""

    mavsdk: Mavsdk
    index: int
    sysids: set[int] = field(default_factory=set)
    new_system_handle: Any = None


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
        max_shards: int = MAX_SHARDS,
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
        if not 1 <= max_shards <= MAX_SHARDS:
            raise ValueError(f"max_shards must be 1..{MAX_SHARDS}, got {max_shards}")
        self._max_shards = max_shards
        # Keyed by (sysid, url): the same sysid may be linked again on another URL, in another shard.
        self._links: dict[tuple[int, str], MavsdkVehicleLink] = {}
        self._connections: dict[tuple[int, str], Any] = {}
        self._tasks: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._shard_of: dict[tuple[int, str], _Shard] = {}
        # The MAVSDK instance listening on each URL, set before its connection is opened (see add_vehicle).
        self._url_shard: dict[str, _Shard] = {}
        self._shards: list[_Shard] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._service_tasks: list[asyncio.Task[None]] = []
        self._systems_changed = asyncio.Event()
        self._open = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def capacity(self) -> int:
        """The most vehicles this manager links (distinct sysids per shard, times the shards)."""
        return self._max_shards * SYSIDS_PER_SHARD

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
        self._loop = loop
        self._open = True
        self._shards = [self._new_shard()]
        self._service_tasks = [
            asyncio.create_task(self._run_telemetry_tick(), name="link:telemetry"),
            asyncio.create_task(self._run_discovery(), name="link:discovery"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _new_shard(self) -> _Shard:
        mavsdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
        changed, loop = self._systems_changed, self._loop
        assert loop is not None, "shards are made inside the running manager"

        def on_new_system(_user_data: object) -> None:  # MAVSDK callback thread
            with contextlib.suppress(RuntimeError):  # the loop is already closed during shutdown
                loop.call_soon_threadsafe(changed.set)

        shard = _Shard(mavsdk=mavsdk, index=len(self._shards))
        shard.new_system_handle = mavsdk.subscribe_on_new_system(on_new_system)
        return shard

    def _shard_for(self, sysid: int) -> _Shard:
        """The first MAVSDK instance where ``sysid`` is free; a new one if none; LinkError at the ceiling."""
        for shard in self._shards:
            if sysid not in shard.sysids:
                return shard
        if len(self._shards) >= self._max_shards:
            raise LinkError(
                f"vehicle {sysid}: add failed: sysid {sysid} is already linked in all {self._max_shards} "
                f"MAVSDK instances this process may run ({len(self._links)} vehicles linked; at most "
                f"{self.capacity} with distinct sysids per instance): give it another sysid or run "
                "another service instance",
                vehicle_id=sysid,
                action="add",
                code="link.sysid_linked_in_every_instance",
                params={
                    "sysid": sysid,
                    "max_shards": self._max_shards,
                    "linked": len(self._links),
                    "capacity": self.capacity,
                },
            )
        shard = self._new_shard()
        self._shards.append(shard)
        log.info("link: MAVSDK instance %d started (sysid %d is taken in every other)", shard.index, sysid)
        return shard

    async def add_vehicle(self, *, sysid: int, url: str) -> MavsdkVehicleLink:
        """Listen on ``url`` for the vehicle with MAVLink ``sysid``; returns its link at once.

        Vehicles on one URL must have distinct sysids; the same sysid on another URL is linked through
        another MAVSDK instance (up to ``capacity`` vehicles in all).
        """
        executor = self._require_open()
        if not 1 <= sysid <= 255 or sysid == _GCS_SYSID:
            raise ValueError(f"sysid must be 1..255 and not {_GCS_SYSID} (MAVSDK's own), got {sysid}")
        key = (sysid, url)
        if key in self._links:
            raise LinkError(
                f"vehicle {sysid}: add failed: sysid already linked on {url}; sysids on one URL must be "
                "unique",
                vehicle_id=sysid,
                action="add",
                code="link.sysid_already_linked_on_url",
                params={"sysid": sysid, "url": url},
            )
        # A URL listened on by one instance cannot be opened by another: the same URL stays in one shard.
        # The shard and the sysid are taken before the connection is opened (an await): adds run
        # concurrently (the fleet connects every vehicle at once), and two adds of one sysid deciding
        # before either had taken it would both land in one MAVSDK instance, which merges them into one
        # system: two vehicles reported and commanded as one.
        shard = self._url_shard.get(url)
        if shard is not None:
            if sysid in shard.sysids:
                raise LinkError(
                    f"vehicle {sysid}: add failed: sysid {sysid} is already linked in the MAVSDK instance "
                    f"that listens on {url}",
                    vehicle_id=sysid,
                    action="add",
                    code="link.sysid_already_linked_in_instance",
                    params={"sysid": sysid, "url": url},
                )
            shard.sysids.add(sysid)
            handle = None  # the connection is (being) opened; MAVSDK tells its vehicles apart by sysid
        else:
            shard = self._shard_for(sysid)
            shard.sysids.add(sysid)
            self._url_shard[url] = shard
            try:
                handle = await asyncio.get_running_loop().run_in_executor(
                    executor, shard.mavsdk.add_any_connection_with_handle, url
                )
            except BaseException as err:
                shard.sysids.discard(sysid)
                if not any(k[1] == url for k in self._links):
                    self._url_shard.pop(url, None)
                if isinstance(err, MavsdkError):
                    raise LinkError(
                        f"vehicle {sysid}: add failed: cannot open {url}: {err}",
                        vehicle_id=sysid,
                        code="link.cannot_open_url",
                        params={"sysid": sysid, "url": url, "reason": str(err)},
                    ) from err
                raise
        link = MavsdkVehicleLink(
            sysid=sysid,
            url=url,
            executor=executor,
            command_timeout_s=self._command_timeout_s,
            snapshot_period_s=self._period_s,
            poll_period_s=self._poll_period_s,
        )
        self._links[key] = link
        if handle is not None:
            self._connections[key] = handle
        self._shard_of[key] = shard
        self._tasks[key] = asyncio.create_task(link.supervise(), name=f"vehicle:{sysid}")
        self._systems_changed.set()  # the system may be known to MAVSDK already (a vehicle re-added)
        return link

    def _key(self, sysid: int, url: str | None) -> tuple[int, str]:
        if url is not None:
            if (sysid, url) in self._links:
                return (sysid, url)
        else:
            keys = [k for k in self._links if k[0] == sysid]
            if len(keys) == 1:
                return keys[0]
            if len(keys) > 1:
                raise NotFound(
                    f"vehicle {sysid} is linked on {len(keys)} URLs: name the URL",
                    code="link.vehicle_linked_on_several_urls",
                    params={"sysid": sysid, "n": len(keys)},
                )
        known = sorted({s for s, _ in self._links})
        raise NotFound(
            f"vehicle {sysid} has no link (known: {known or 'none'})",
            code="link.vehicle_has_no_link",
            params={"sysid": sysid, "known": ", ".join(map(str, known)) or "-"},
        )

    def get(self, sysid: int, *, url: str | None = None) -> MavsdkVehicleLink:
        """The link of vehicle ``sysid`` (on ``url`` if it is linked on several); NotFound if none."""
        return self._links[self._key(sysid, url)]

    def all(self) -> list[MavsdkVehicleLink]:
        """Every link, by sysid and URL."""
        return [self._links[k] for k in sorted(self._links)]

    @property
    def shard_count(self) -> int:
        """MAVSDK instances running now."""
        return len(self._shards)

    async def remove_vehicle(self, sysid: int, *, url: str | None = None) -> None:
        """Stop the vehicle's task, close its link and, when no other vehicle uses it, its connection."""
        key = self._key(sysid, url)
        link = self._links.pop(key)
        task = self._tasks.pop(key)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.close()
        shard = self._shard_of.pop(key)
        shard.sysids.discard(sysid)
        handle = self._connections.pop(key, None)
        others = [k for k in self._links if k[1] == key[1]]
        if handle is not None and others:
            self._connections[others[0]] = handle  # the connection stays open for the vehicles still on it
            return
        if not others:
            self._url_shard.pop(key[1], None)
        if handle is not None:
            executor = self._require_open()
            await asyncio.get_running_loop().run_in_executor(executor, shard.mavsdk.remove_connection, handle)

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
        self._shard_of.clear()
        self._url_shard.clear()
        shards, self._shards = self._shards, []
        self._open = False
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        for shard in shards:
            if shard.new_system_handle is not None:
                shard.mavsdk.unsubscribe_on_new_system(shard.new_system_handle)
            shard.mavsdk.destroy()

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
            # The 1 s poll only backs up the callback while some vehicle has not been seen. Not
            # asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives just as the event is
            # set (add_vehicle sets it), and this loop then outlived aclose() forever: the "hang" of a
            # fleet whose 245th vehicle was refused.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0 if waiting else None):
                    await self._systems_changed.wait()
            self._systems_changed.clear()
            for shard in self._shards:
                unbound = {
                    key[0]: link
                    for key, link in self._links.items()
                    if not link.bound and self._shard_of.get(key) is shard
                }
                if not unbound:
                    continue
                for system in shard.mavsdk.get_systems():
                    link = unbound.pop(system.get_system_id(), None)
                    if link is None:
                        system.destroy()  # get_systems() hands out a new handle per call; release the unused
                        continue
                    try:
                        link.bind(system)
                    except Exception:
                        log.exception("vehicle %d: cannot attach MAVSDK plugins", link.vehicle_id)
                        system.destroy()

    def _require_open(self) -> concurrent.futures.ThreadPoolExecutor:
        if not self._open or self._executor is None:
            raise RuntimeError("LinkManager is not running: use it as `async with LinkManager() as links:`")
        return self._executor
