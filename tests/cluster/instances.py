"""Real ``skywarden serve`` processes sharing one PostgreSQL schema, and sim vehicles streaming to each.

    async with Cluster(pg_url, tmp_path, instances=2, vehicles=4) as cl:
        cl.owner_of(vid); await cl.post(1, "alice", f"/api/v1/vehicles/{vid}/commands", {...}); cl.kill(0)

Instance k listens on the registered udpin port + k * ``offset`` (``SKYWARDEN_LINK_PORT_OFFSET``); every
sim vehicle streams to all of them (``SimConfig.extra_gcs_base_ports``). bench.failover reuses it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import migrations
from mission.db import make_engine, session_scope
from mission.fleet import service as fleet
from mission.fleet.models import VehicleCreate
from sim import SimConfig, SimFleet
from tests.support.geo import HOME, offset
from tests.support.net import free_tcp_port
from tests.support.service import USERS, seed_users

REPO = Path(__file__).resolve().parents[2]
TTL_S, BEAT_S = 3.0, 0.5


def _udp_range_free(base: int, count: int) -> bool:
    socks = []
    try:
        for port in range(base, base + count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("0.0.0.0", port))
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()
    return True


def free_port_ranges(count: int, instances: int) -> tuple[int, int]:
    """(base, offset): ``base + k * offset + i`` free for every instance k and vehicle i."""
    for base in range(21000, 60000, 1013):
        offset_ = max(count, 64)
        if all(_udp_range_free(base + k * offset_, count) for k in range(instances)):
            return base, offset_
    raise RuntimeError("no free UDP port ranges")


@dataclass
class Instance:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class ServeCluster:
    """N serve processes, the sim fleet and HTTP clients; ``kill(k)`` is kill -9 of instance k."""

    db_url: str
    workdir: Path
    instances: int
    vehicles: int
    speed: float = 5.0
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[Instance] = field(default_factory=list)
    engine: Engine | None = None
    sims: SimFleet | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    vehicle_ids: list[int] = field(default_factory=list)
    client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> ServeCluster:
        self.engine = make_engine(self.db_url)
        migrations.upgrade(self.engine)
        self.tokens = seed_users(self.engine, USERS)
        base, self.offset = free_port_ranges(self.vehicles, self.instances)
        with session_scope(self.engine) as session:
            for i in range(self.vehicles):
                lat, lon = offset(i * 60.0, 0.0)
                row = fleet.create(
                    session=session,
                    data=VehicleCreate(
                        name=f"uav-{i + 1}",
                        connection_url=f"udpin://0.0.0.0:{base + i}",
                        sysid=i + 1,
                        home_lat=lat,
                        home_lon=lon,
                        home_alt_m=HOME[2],
                        capabilities=["camera"],
                        cruise_speed_m_s=10.0,
                        endurance_s=1400.0,
                        battery_wh=90.0,
                    ),
                )
                assert row.id is not None
                self.vehicle_ids.append(row.id)
        config = SimConfig(
            extra_gcs_base_ports=tuple(base + k * self.offset for k in range(1, self.instances))
        )
        homes = [(*offset(i * 60.0, 0.0), HOME[2]) for i in range(self.vehicles)]
        self.sims = SimFleet(
            count=self.vehicles, base_port=base, speed=self.speed, home=HOME, config=config, homes=homes
        )
        await self.sims.start()
        self.client = httpx.AsyncClient(timeout=60)
        self.nodes = [Instance(name=f"i{k}", port=free_tcp_port()) for k in range(self.instances)]
        for k in range(self.instances):
            self.start(k)
        for k in range(self.instances):
            await self.wait_healthy(k)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for node in self.nodes:
            if node.alive:
                assert node.proc is not None
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
        if self.client is not None:
            await self.client.aclose()
        if self.sims is not None:
            await self.sims.close()
        if self.engine is not None:
            self.engine.dispose()

    def start(self, k: int) -> None:
        node = self.nodes[k]
        env = {
            **{key: val for key, val in os.environ.items() if not key.startswith("SKYWARDEN_")},
            "PYTHONPATH": str(REPO),
            "SKYWARDEN_DATABASE_URL": self.db_url,
            "SKYWARDEN_LINK_PORT_OFFSET": str(k * self.offset),
            "SKYWARDEN_REGISTRY_POLL_S": "0.5",
            "SKYWARDEN_CLUSTER_LEASE_TTL_S": str(TTL_S),
            "SKYWARDEN_CLUSTER_HEARTBEAT_S": str(BEAT_S),
            "SKYWARDEN_VIDEO_ENABLED": "false",
            "SKYWARDEN_SIM_SPEED": str(self.speed),
            **self.env,
        }
        node.log = self.workdir / f"{node.name}.log"
        argv = [
            sys.executable,
            "-m",
            "api.cli",
            "serve",
            "--port",
            str(node.port),
            "--instance-id",
            node.name,
        ]
        with node.log.open("ab") as out:
            node.proc = subprocess.Popen(
                [*argv, "--log-level", "warning"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self, k: int) -> None:
        """kill -9: no hand-over, its leases lapse."""
        node = self.nodes[k]
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()

    async def wait_healthy(self, k: int, timeout_s: float = 60.0) -> None:
        assert self.client is not None
        node = self.nodes[k]
        deadline = time.monotonic() + timeout_s
        while True:
            if not node.alive:
                raise AssertionError(
                    f"{node.name} exited: {node.log.read_text()[-3000:] if node.log else ''}"
                )
            try:
                r = await self.client.get(f"{node.url}/api/v1/health")
                if r.status_code == 200 and r.json()["runtime"]:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.name} not healthy within {timeout_s} s")
            await asyncio.sleep(0.2)

    def owners(self) -> dict[int, tuple[str, int]]:
        """vehicle id -> (owner, epoch) of every unexpired lease, read now."""
        assert self.engine is not None
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT vehicle_id, owner, epoch FROM vehicle_leases WHERE expires_at > now()")
            )
            return {r[0]: (r[1], r[2]) for r in rows}

    def index_of(self, name: str) -> int:
        return [n.name for n in self.nodes].index(name)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def post(self, k: int, user: str, path: str, body: Any = None) -> httpx.Response:
        assert self.client is not None
        return await self.client.post(f"{self.nodes[k].url}{path}", json=body, headers=self.auth(user))

    async def get(self, k: int, user: str, path: str, **params: Any) -> httpx.Response:
        assert self.client is not None
        return await self.client.get(f"{self.nodes[k].url}{path}", headers=self.auth(user), params=params)

    def sql(self, query: str, **params: Any) -> list[Any]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params))


async def until(check: Callable[[], Any], timeout_s: float, what: str) -> float:
    """Seconds until ``check()`` is truthy (AssertionError after ``timeout_s``)."""
    t0 = time.monotonic()
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(0.1)
