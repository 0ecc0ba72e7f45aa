"""A fleet of simulated vehicles sharing one asyncio loop and one physics tick."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar

from sim.camera.component import attach_cameras
from sim.config import SimConfig
from sim.vehicle import SimVehicle, _Endpoint

T = TypeVar("T")
_log = logging.getLogger("sim")

_MAX_TICK_WALL_S = 0.25  # a stalled loop must not teleport the vehicles


def _bind_host(host: str) -> str:
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else "0.0.0.0"
    except ValueError:
        return "0.0.0.0"


MAX_VEHICLES = 2000
_GCS_SYSIDS = frozenset({245, 255})  # MAVSDK's and QGroundControl's own system ids
_SYSIDS = tuple(s for s in range(1, 256) if s not in _GCS_SYSIDS)


def sysid_for(index: int) -> int:
    """Vehicle ``index``'s MAVLink sysid: 1, 2, ... skipping the ground stations' ids, then again from 1.

    MAVLink has 253 usable sysids; past them a sysid repeats on another port (a GCS tells those vehicles
    apart by the port they arrive on).
    """
    return _SYSIDS[index % len(_SYSIDS)]


class SimFleet:
    """`count` vehicles; vehicle i is sysid ``sysid_for(i)`` (i+1 up to 244) and sends to host:base_port+i.

    All vehicles stand on `home` unless `homes` gives each its own (lat, lon, alt_amsl_m), e.g. docks.
    """

    def __init__(
        self,
        count: int = 1,
        base_port: int = 14540,
        speed: float = 1.0,
        home: tuple[float, float, float] | tuple[float, float] = (47.397742, 8.545594, 488.0),
        host: str = "127.0.0.1",
        config: SimConfig | None = None,
        *,
        homes: Sequence[tuple[float, float, float]] | None = None,
    ) -> None:
        if not 1 <= count <= MAX_VEHICLES:
            raise ValueError(f"count must be within 1..{MAX_VEHICLES}, got {count}")
        for port in (base_port, *(config.extra_gcs_base_ports if config else ())):
            if not 1 <= port <= 65535 - count + 1:
                raise ValueError(f"base port {port} leaves no room for {count} vehicles")
        if not speed > 0:
            raise ValueError(f"speed factor must be > 0, got {speed}")
        if len(home) not in (2, 3):
            raise ValueError(f"home must be (lat, lon) or (lat, lon, alt_amsl_m), got {home!r}")
        lat, lon = float(home[0]), float(home[1])
        alt = float(home[2]) if len(home) == 3 else 0.0
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"home lat/lon out of range: {lat}, {lon}")
        if homes is not None and len(homes) != count:
            raise ValueError(f"homes has {len(homes)} entries for {count} vehicles")
        for i, h in enumerate(homes or ()):
            if len(h) != 3 or not (-90.0 <= h[0] <= 90.0 and -180.0 <= h[1] <= 180.0):
                raise ValueError(f"homes[{i}] must be (lat, lon, alt_amsl_m) in range, got {h!r}")
        self.count = count
        self.base_port = base_port
        self.speed = float(speed)
        self.home = (lat, lon, alt)
        self.host = host
        self.config = config or SimConfig()
        rng = random.Random(self.config.random_seed)
        self.vehicles: list[SimVehicle] = [
            SimVehicle(
                index=i,
                sysid=sysid_for(i),
                host=host,
                port=base_port + i,
                extra_ports=tuple(p + i for p in self.config.extra_gcs_base_ports),
                home=self.home
                if homes is None
                else (float(homes[i][0]), float(homes[i][1]), float(homes[i][2])),
                speed=self.speed,
                config=self.config,
                rng=random.Random(rng.random()),
            )
            for i in range(count)
        ]
        self._tick_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open one UDP socket per vehicle and start the physics tick."""
        loop = asyncio.get_running_loop()
        bind = _bind_host(self.host)
        try:
            for vehicle in self.vehicles:
                local_port = 0
                if self.config.local_port_base is not None:
                    local_port = self.config.local_port_base + vehicle.index
                try:
                    transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(_Endpoint, vehicle), local_addr=(bind, local_port)
                    )
                except OSError as exc:
                    where = f"{bind}:{local_port}"
                    raise OSError(
                        exc.errno, f"vehicle sysid {vehicle.sysid}: cannot bind UDP {where}: {exc}"
                    ) from exc
                vehicle.attach(transport)
            await attach_cameras(self.vehicles, self.config.camera)
        except BaseException:
            await self.close()
            raise
        self._tick_task = loop.create_task(self._run(), name="sim:fleet-tick")

    async def close(self) -> None:
        """Stop the tick and close every socket."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
            self._tick_task = None
        for vehicle in self.vehicles:
            await vehicle.close()

    async def _run(self) -> None:
        period = 1.0 / self.config.tick_hz
        vehicles = self.vehicles
        speed = self.speed
        last = time.monotonic()
        next_at = last + period
        while True:
            delay = next_at - time.monotonic()
            await asyncio.sleep(delay if delay > 0 else 0)
            now = time.monotonic()
            dt_sim = min(now - last, _MAX_TICK_WALL_S) * speed
            last = now
            for vehicle in vehicles:
                try:
                    vehicle.tick(now, dt_sim)
                except Exception:
                    _log.exception("sysid %d: tick failed", vehicle.sysid)
            next_at += period
            if next_at < now:
                next_at = now + period

    async def wait(self, predicate: Callable[[], T], timeout_s: float, *, poll_s: float = 0.02) -> T:
        """Poll `predicate` until truthy; TimeoutError after `timeout_s` wall seconds."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout_s} s; states: {self._summary()}")
            await asyncio.sleep(poll_s)

    def _summary(self) -> str:
        parts = []
        for v in self.vehicles[:5]:
            s = v.state
            parts.append(
                f"sysid {v.sysid}: {s.mode} armed={s.armed} {s.landed_state} alt={s.alt_rel_m:.1f}m "
                f"seq={s.mission_seq}/{s.mission_count} {s.mission_state} bat={s.battery_pct:.0f}%"
            )
        return "; ".join(parts)
