"""``Cluster``: this instance's identity, its vehicle leases and the singletons it leads.

    async with Cluster(engine=engine, config=ClusterConfig(instance_id="a", ...), vehicles=ids) as cluster:
        cluster.owns(vehicle_id); cluster.fence(session, vehicle_id)   # in the command's transaction
        cluster.on_acquired(callback); cluster.on_lost(callback)
        cluster.singleton("patrols", factory)   # runs factory() as an async context while this leads

One pass every ``heartbeat_s`` (in one transaction): say this instance is alive, renew its leases, take free
or expired leases up to its share of the fleet (vehicles / live instances, rounded up), and give back idle
vehicles beyond that share so a new instance gets its part. An instance that cannot renew for ``ttl_s``
drops every lease on its own before anyone else may take them (its commands would be fenced anyway).
Takeover of a dead instance's vehicles therefore takes at most ``ttl_s + heartbeat_s`` plus the recovery
of each flight; with the defaults (5 s, 1 s) that is well inside PX4's data-link-loss failsafe
(``COM_DL_LOSS_T``, 10 s by default) — which the standby instances' heartbeats keep from firing anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from mission.cluster import leases
from mission.cluster.leases import StaleOwner

log = logging.getLogger(__name__)

VehicleCallback = Callable[[int], Awaitable[None]]
SingletonFactory = Callable[[], AbstractAsyncContextManager[Any]]


def default_instance_id() -> str:
    """host-pid: unique among the processes of a deployment unless set."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    instance_id: str
    base_url: str = ""
    ttl_s: float = 5.0
    heartbeat_s: float = 1.0
    balance: bool = True

    def __post_init__(self) -> None:
        if not self.instance_id or len(self.instance_id) > 64:
            raise ValueError(f"instance_id must be 1..64 characters, got {self.instance_id!r}")
        if not 0 < self.heartbeat_s < self.ttl_s / 2:
            raise ValueError(
                f"heartbeat_s ({self.heartbeat_s}) must be > 0 and under half of ttl_s ({self.ttl_s})"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> ClusterConfig:
        return cls(
            instance_id=settings.instance_id or default_instance_id(),
            base_url=settings.cluster_base_url,
            ttl_s=settings.cluster_lease_ttl_s,
            heartbeat_s=settings.cluster_heartbeat_s,
            balance=settings.cluster_balance,
        )


class Cluster:
    """Leases and leader locks of one instance; every query is PostgreSQL's (see ``leases``)."""

    def __init__(
        self,
        *,
        engine: Engine,
        config: ClusterConfig,
        vehicles: Callable[[], list[int]],
        can_release: Callable[[int], bool] = lambda _vid: True,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise RuntimeError(
                "several instances need PostgreSQL for their leases; this database is "
                f"{engine.dialect.name} (SQLite is for one instance: unset SKYWARDEN_CLUSTER)"
            )
        self._engine = engine
        self.config = config
        self._vehicles = vehicles
        self._can_release = can_release
        self._owned: dict[int, int] = {}  # vehicle id -> epoch
        self._acquired: list[VehicleCallback] = []
        self._lost: list[VehicleCallback] = []
        self._singletons: dict[str, SingletonFactory] = {}
        self._running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._leading: dict[str, int] = {}
        self._peers: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = 0.0
        self._first_pass = asyncio.Event()
        # Its own thread: renewals must not wait behind the default executor's other work (a busy
        # instance would otherwise lose its leases while alive).
        self._db = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster")
        self.slow_passes = 0
        self.refused_stale = 0  # commands this instance tried after losing a vehicle (fenced)

    @property
    def instance_id(self) -> str:
        return self.config.instance_id

    # -- what the rest of the service asks ---------------------------------------------------------------

    def owns(self, vehicle_id: int) -> bool:
        return vehicle_id in self._owned

    def owned(self) -> dict[int, int]:
        """Vehicle id -> epoch of every vehicle this instance holds."""
        return dict(self._owned)

    def leads(self, name: str) -> bool:
        return name in self._leading

    def leading(self) -> list[str]:
        """The singletons this instance leads now."""
        return sorted(self._leading)

    def peers(self) -> dict[str, str]:
        """Live instances (this one included) -> base URL, as of the last pass."""
        return dict(self._peers)

    def leader_of(self, name: str) -> str | None:
        """The live instance that leads singleton ``name`` now (None while nobody does), read now."""
        with self._engine.connect() as conn:
            return leases.leader(conn, name=name)

    def owner_of(self, vehicle_id: int) -> leases.Lease | None:
        """The vehicle's current lease, read now."""
        with self._engine.connect() as conn:
            return leases.owners(conn).get(vehicle_id)

    def fence(self, session: Any, vehicle_id: int) -> None:
        """In a command's transaction: StaleOwner unless this instance holds the vehicle's current epoch."""
        epoch = self._owned.get(vehicle_id)
        try:
            if epoch is None:
                raise StaleOwner(
                    f"vehicle {vehicle_id}: command refused: instance {self.instance_id} does not own it",
                    code="cluster.instance_does_not_own_vehicle",
                    params={"vehicle_id": vehicle_id, "instance_id": self.instance_id},
                )
            leases.fence(
                session.connection(), vehicle_id=vehicle_id, instance_id=self.instance_id, epoch=epoch
            )
        except StaleOwner:
            self.refused_stale += 1
            raise

    def on_acquired(self, callback: VehicleCallback) -> None:
        self._acquired.append(callback)

    def on_lost(self, callback: VehicleCallback) -> None:
        self._lost.append(callback)

    def singleton(self, name: str, factory: SingletonFactory) -> None:
        """Run ``factory()`` (an async context manager) while this instance holds leader lease ``name``."""
        self._singletons[name] = factory

    async def wait_first_pass(self, timeout_s: float = 10.0) -> None:
        await asyncio.wait_for(self._first_pass.wait(), timeout_s)

    # -- lifetime ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Cluster:
        await self.pass_once()
        self._task = asyncio.create_task(self._run(), name=f"cluster:{self.instance_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for name in list(self._running):
            await self._stop_singleton(name)
        lost, self._owned = list(self._owned), {}
        for vid in lost:
            await self._tell(self._lost, vid)
        with contextlib.suppress(Exception):  # a clean stop hands over at once; a dead one by expiry
            await asyncio.get_running_loop().run_in_executor(self._db, self._leave)
        self._db.shutdown(wait=False)

    def _leave(self) -> None:
        with self._engine.begin() as conn:
            leases.leave(conn, instance_id=self.instance_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self.pass_once()
            except Exception:
                log.exception("cluster pass failed")
                if time.monotonic() - self._renewed_at > self.config.ttl_s * 0.8:
                    await self._drop_all("leases not renewed in time")

    async def pass_once(self) -> None:
        """One heartbeat: renew, claim, balance, lead; then start and stop what changed."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        wanted = await loop.run_in_executor(self._db, self._vehicles)
        kept, taken, peers, leading = await loop.run_in_executor(self._db, self._db_pass, wanted)
        self._renewed_at = time.monotonic()
        if self._renewed_at - started > self.config.ttl_s / 2:
            self.slow_passes += 1
            log.warning("cluster %s: a lease pass took %.1f s", self.instance_id, self._renewed_at - started)
        self._peers = peers
        now_owned = {**kept, **taken}
        lost = [vid for vid in self._owned if vid not in now_owned]
        gained = [vid for vid in now_owned if vid not in self._owned or self._owned[vid] != now_owned[vid]]
        self._owned = now_owned
        for vid in lost:
            log.warning("cluster %s: lease of vehicle %s lost", self.instance_id, vid)
            await self._tell(self._lost, vid)
        for vid in sorted(gained):
            log.info("cluster %s: owns vehicle %s (epoch %s)", self.instance_id, vid, now_owned[vid])
            await self._tell(self._acquired, vid)
        self._leading = leading
        for name in list(self._running):
            if name not in leading:
                log.warning("cluster %s: no longer leads %s", self.instance_id, name)
                await self._stop_singleton(name)
        for name in leading:
            if name not in self._running and name in self._singletons:
                log.info("cluster %s: leads %s (epoch %s)", self.instance_id, name, leading[name])
                self._start_singleton(name)
        self._first_pass.set()

    def _db_pass(
        self, wanted: list[int]
    ) -> tuple[dict[int, int], dict[int, int], dict[str, str], dict[str, int]]:
        cfg = self.config
        with self._engine.begin() as conn:
            leases.heartbeat(conn, instance_id=cfg.instance_id, base_url=cfg.base_url, ttl_s=cfg.ttl_s)
            kept = leases.renew(conn, instance_id=cfg.instance_id, ttl_s=cfg.ttl_s)
            peers = leases.live_instances(conn)
            wanted_set = set(wanted)
            share = math.ceil(len(wanted_set) / max(1, len(peers))) if cfg.balance else len(wanted_set)
            taken: dict[int, int] = {}
            room = share - len(kept)
            if room > 0:
                free = leases.unowned(conn, vehicle_ids=wanted_set - set(kept))
                taken = leases.claim(
                    conn, instance_id=cfg.instance_id, vehicle_ids=free[:room], ttl_s=cfg.ttl_s
                )
            elif room < 0 and len(peers) > 1:
                spare = [v for v in sorted(kept, reverse=True) if self._can_release(v)][:-room]
                leases.release(conn, instance_id=cfg.instance_id, vehicle_ids=spare)
                for vid in spare:
                    kept.pop(vid, None)
            for vid in [v for v in kept if v not in wanted_set]:  # removed or disabled vehicles
                leases.release(conn, instance_id=cfg.instance_id, vehicle_ids=[vid])
                kept.pop(vid)
            leading = {}
            for name in self._singletons:
                epoch = leases.lead(conn, name=name, instance_id=cfg.instance_id, ttl_s=cfg.ttl_s)
                if epoch is not None:
                    leading[name] = epoch
        return kept, taken, peers, leading

    async def _drop_all(self, why: str) -> None:
        if not self._owned and not self._running:
            return
        log.error("cluster %s: dropping every lease: %s", self.instance_id, why)
        lost, self._owned = list(self._owned), {}
        for vid in lost:
            await self._tell(self._lost, vid)
        self._leading = {}
        for name in list(self._running):
            await self._stop_singleton(name)

    async def _tell(self, callbacks: list[VehicleCallback], vehicle_id: int) -> None:
        for callback in callbacks:
            try:
                await callback(vehicle_id)
            except Exception:
                log.exception("cluster callback failed for vehicle %s", vehicle_id)

    def _start_singleton(self, name: str) -> None:
        stop = asyncio.Event()
        factory = self._singletons[name]

        async def run() -> None:
            async with factory():
                await stop.wait()

        task = asyncio.create_task(run(), name=f"cluster:singleton:{name}")
        self._running[name] = (task, stop)

    async def _stop_singleton(self, name: str) -> None:
        task, stop = self._running.pop(name)
        stop.set()
        _done, pending = await asyncio.wait({task}, timeout=10.0)
        for late in pending:  # a singleton that will not stop by itself
            late.cancel()
        await asyncio.gather(task, return_exceptions=True)
