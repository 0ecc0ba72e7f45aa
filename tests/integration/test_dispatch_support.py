"""Harness for the dispatch flight tests (no tests here): the service with its Runtime and dispatch parts,
simulated vehicles each on its own dock, all flown through real MAVSDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api import migrations
from api.app import create_app
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import make_engine, session_scope
from mission.dispatch.dispatcher import DispatchConfig
from mission.dispatch.fleet_view import PerformanceDefaults
from mission.dispatch.wiring import DispatchComponents
from mission.patrols.clock import Clock
from mission.runtime import Runtime
from sim import SimConfig, SimFleet, SimVehicle

HOME = (39.8200, 109.9800, 1100.0)
OUR_ROUTERS = (
    "api.routes.incidents",
    "api.routes.dispatch",
    "api.routes.patrols",
    "api.routes.security_events",
    "api.routes.payload",
    "api.routes.missions",
    "api.routes.control",
)
MODEL_MODULES = (
    "mission.missions.models",
    "mission.control.models",
    "mission.incidents.models",
    "mission.patrols.models",
    "mission.payload.models",
    "mission.security_events.models",
)
USERS = {"root": Role.admin, "alice": Role.pilot, "dan": Role.dispatcher, "olga": Role.observer}
T = TypeVar("T")


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    """(lat, lon) ``north_m``/``east_m`` metres from HOME."""
    lat = HOME[0] + math.degrees(north_m / 6371000.0)
    lon = HOME[1] + math.degrees(east_m / (6371000.0 * math.cos(math.radians(HOME[0]))))
    return lat, lon


def free_udp_base(count: int) -> int:
    import socket

    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


def docked_fleet(docks: Sequence[tuple[float, float]], *, base_port: int, speed: float) -> SimFleet:
    """A sim fleet whose vehicle i (sysid i+1) stands on its own dock ``docks[i]`` (north_m, east_m)."""
    fleet = SimFleet(count=len(docks), base_port=base_port, speed=speed, home=HOME)
    config = SimConfig()
    fleet.vehicles = [
        SimVehicle(
            index=i,
            sysid=i + 1,
            host="127.0.0.1",
            port=base_port + i,
            home=(*offset(*dock), HOME[2]),
            speed=speed,
            config=config,
            rng=random.Random(i),
        )
        for i, dock in enumerate(docks)
    ]
    return fleet


@dataclass
class DispatchService:
    client: httpx.AsyncClient
    runtime: Runtime
    parts: DispatchComponents
    engine: Engine
    fleet: SimFleet | None
    tokens: dict[str, str]
    speed: float

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def post(self, user: str, url: str, json: Any = None) -> httpx.Response:
        return await self.client.post(url, json=json, headers=self.auth(user))

    async def get(self, user: str, url: str) -> httpx.Response:
        return await self.client.get(url, headers=self.auth(user))

    def vehicle(self, vehicle_id: int) -> SimVehicle:
        assert self.fleet is not None
        return self.fleet.vehicles[vehicle_id - 1]


async def until(
    fn: Callable[[], Awaitable[T] | T], timeout_s: float, what: str, *, poll_s: float = 0.05
) -> T:
    """The first truthy value of ``fn()`` within ``timeout_s`` wall seconds, else an AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)


@asynccontextmanager
async def dispatch_service(
    tmp_path: Path,
    *,
    docks: Sequence[tuple[float, float]],
    speed: float = 20.0,
    clock: Clock | None = None,
    config: DispatchConfig | None = None,
    zones: Sequence[dict[str, Any]] = (),
    database_url: str | None = None,
) -> AsyncIterator[DispatchService]:
    """The app, its Runtime and the dispatch parts over vehicles on ``docks``, ready to fly."""
    base = free_udp_base(max(1, len(docks)))
    url = database_url or f"sqlite:///{tmp_path / 'skywarden.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    for name in MODEL_MODULES:
        importlib.import_module(name)
    SQLModel.metadata.create_all(engine)  # tables whose migration has not landed yet
    tokens: dict[str, str] = {}
    with session_scope(engine) as session:
        for username, role in USERS.items():
            user = auth.create_user(session=session, username=username, password="secret-pw", role=role)
            tokens[username] = auth.issue_token(
                session=session, name=username, role=role, user_id=user.id
            ).token
    app = create_app(Settings(database_url=url, migrate_on_start=False))
    paths = {getattr(r, "path", "") for r in app.routes}
    for name in OUR_ROUTERS:
        router = importlib.import_module(name).router
        if not any(getattr(r, "path", "") in paths for r in router.routes):
            app.include_router(router)
    app.state.engine = engine
    config = config or DispatchConfig(speed_factor=speed, performance=PerformanceDefaults())
    settings = SimpleNamespace(
        telemetry_hz=10.0, registry_poll_s=0.5, patrol_clock=clock, dispatch_config=config
    )
    try:
        async with (
            docked_fleet(docks, base_port=base, speed=speed) if docks else contextlib.nullcontext() as fleet,
            Runtime(settings=settings, engine=engine) as runtime,
            contextlib.AsyncExitStack() as stack,
        ):
            parts = getattr(runtime, "dispatch", None)
            if parts is None:  # a Runtime without dispatch wired in: add it as the Runtime does
                parts = await stack.enter_async_context(
                    DispatchComponents(
                        engine=engine,
                        fleet=runtime.fleet,
                        hub=runtime.hub,
                        supervisor=runtime.missions,
                        settings=settings,
                    )
                )
                runtime.dispatcher = parts.dispatcher  # type: ignore[attr-defined]
                runtime.scheduler = parts.scheduler  # type: ignore[attr-defined]
            app.state.runtime = runtime
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://skywarden.test", timeout=60
            ) as client:
                svc = DispatchService(client, runtime, parts, engine, fleet, tokens, speed)
                for zone in zones:
                    r = await svc.post("root", "/api/v1/zones", zone)
                    assert r.status_code == 201, r.text
                for i, dock in enumerate(docks):
                    lat, lon = offset(*dock)
                    body = {
                        "name": f"uav-{i + 1}",
                        "connection_url": f"udpin://0.0.0.0:{base + i}",
                        "sysid": i + 1,
                        "home_lat": lat,
                        "home_lon": lon,
                        "home_alt_m": HOME[2],
                        "capabilities": ["camera", "speaker", "spotlight"],
                        "payload_actuators": {"speaker": 1, "spotlight": 2},
                        "cruise_speed_m_s": 10.0,
                        "endurance_s": 1400.0,
                        "battery_wh": 90.0,
                    }
                    r = await svc.post("root", "/api/v1/vehicles", body)
                    assert r.status_code == 201, r.text
                await runtime.fleet.sync()
                for i in range(len(docks)):
                    link = await runtime.fleet.wait_link(i + 1, timeout_s=15)
                    await link.wait_ready(timeout_s=15)
                await until(
                    lambda: all(runtime.fleet.latest(i + 1) is not None for i in range(len(docks))),
                    10,
                    "first snapshots",
                )
                yield svc
            app.state.runtime = None
    finally:
        engine.dispose()
