"""The service as production builds it (``Settings`` and the app's lifespan) with simulated drones on docks.

    async with running_service(tmp_path, docks=[(0, 0), (500, 0)], speed=20) as svc:
        r = await svc.post("dan", "/api/v1/incidents", {...})

Each dock is (north_m, east_m) from the demo origin; vehicle i (sysid i+1) stands on dock i, flies at the
simulator's ``speed`` and is registered over the API as an admin would. One token per user in ``USERS``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope
from mission.runtime import Runtime
from sim import SimConfig, SimFleet, SimVehicle
from tests.support.geo import HOME, offset
from tests.support.net import free_udp_base
from tests.support.vehicles import SIM, Vehicles, start_vehicles
from tests.support.wait import until

USERS = {
    "root": Role.admin,
    "alice": Role.pilot,
    "bob": Role.pilot,
    "dan": Role.dispatcher,
    "olga": Role.observer,
}
PASSWORD = "secret-pw"


def test_settings(db_url: str, **overrides: Any) -> Settings:
    """Settings for a test service: no .env, no settings file; quick registry polling."""
    values: dict[str, Any] = {"registry_poll_s": 0.5, **overrides}
    return Settings(_env_file=None, database_url=db_url, **values)  # type: ignore[call-arg]


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever its name says


def docked_fleet(
    docks: Sequence[tuple[float, float]], *, base_port: int, speed: float, config: SimConfig | None = None
) -> SimFleet:
    """A sim fleet whose vehicle i (sysid i+1, UDP base_port+i) stands on its own dock ``docks[i]``."""
    config = config or SimConfig()
    # The fleet's config too: it attaches the cameras (config.camera) when it starts.
    fleet = SimFleet(count=len(docks), base_port=base_port, speed=speed, home=HOME, config=config)
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


def vehicle_body(
    *, index: int, port: int, dock: tuple[float, float], sysid: int | None = None, **extra: Any
) -> dict[str, Any]:
    """A registry entry for vehicle ``index`` (sysid index+1 unless given) on ``dock``."""
    lat, lon = offset(*dock)
    return {
        "name": f"uav-{index + 1}",
        "connection_url": f"udpin://0.0.0.0:{port}",
        "sysid": sysid if sysid is not None else index + 1,
        "home_lat": lat,
        "home_lon": lon,
        "home_alt_m": HOME[2],
        "capabilities": ["camera", "speaker", "spotlight"],
        "payload_actuators": {"speaker": 1, "spotlight": 2},
        "cruise_speed_m_s": 10.0,
        "endurance_s": 1400.0,
        "battery_wh": 90.0,
        **extra,
    }


@dataclass
class Service:
    """A running service: its app, an HTTP client on it, its vehicles (sim/ or PX4) and a token per user."""

    app: FastAPI
    client: httpx.AsyncClient
    tokens: dict[str, str]
    sims: SimFleet | None
    speed: float
    base_port: int
    docks: list[tuple[float, float]] = field(default_factory=list)
    vehicles: Vehicles | None = None
    settings: Settings | None = None
    _stack: contextlib.AsyncExitStack | None = None

    async def stop(self) -> None:
        """Stop the service as its lifespan does on shutdown (the sims keep flying)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def start(self) -> None:
        """Start the service again on the same database, as a restart after a crash would."""
        assert self.settings is not None and self._stack is None
        self._stack = contextlib.AsyncExitStack()
        self.app = create_app(self.settings)
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app), base_url="http://skywarden.test", timeout=60
            )
        )

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def runtime(self) -> Runtime:
        runtime = self.app.state.runtime
        assert isinstance(runtime, Runtime)
        return runtime

    @property
    def engine(self) -> Engine:
        engine = self.app.state.engine
        assert isinstance(engine, Engine)
        return engine

    @property
    def is_sim(self) -> bool:
        """True when the vehicles are sim/ (inside views and fault injection available)."""
        return self.sims is not None

    def vehicle(self, vehicle_id: int) -> SimVehicle:
        """The sim vehicle behind registry id ``vehicle_id`` (registered in dock order); skips on PX4."""
        if self.vehicles is not None and not self.vehicles.is_sim:
            pytest.skip("needs the simulator's inside view or fault injection")
        assert self.sims is not None
        return self.sims.vehicles[vehicle_id - 1]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def post(self, user: str, url: str, json: Any = None) -> httpx.Response:
        return await self.client.post(url, json=json, headers=self.auth(user))

    async def get(self, user: str, url: str, **params: Any) -> httpx.Response:
        return await self.client.get(url, headers=self.auth(user), params=params or None)

    async def patch(self, user: str, url: str, json: Any = None) -> httpx.Response:
        return await self.client.patch(url, json=json, headers=self.auth(user))

    async def delete(self, user: str, url: str) -> httpx.Response:
        return await self.client.delete(url, headers=self.auth(user))

    async def audit(self) -> list[dict[str, Any]]:
        """Every audit entry, oldest first."""
        out: list[dict[str, Any]] = []
        while True:
            r = await self.get("root", "/api/v1/audit", limit=500, offset=len(out))
            assert r.status_code == 200, r.text
            page = r.json()["items"]
            out += page
            if len(page) < 500:
                return sorted(out, key=lambda e: e["seq"])

    async def add_vehicle(self, *, sysid: int, port: int, **extra: Any) -> dict[str, Any]:
        """Register a vehicle at the demo origin on ``port`` (connecting in the background)."""
        body = {
            **vehicle_body(index=sysid - 1, port=port, dock=(0.0, 0.0)),
            "name": f"drone-{sysid}",
            **extra,
        }
        r = await self.post("root", "/api/v1/vehicles", body)
        assert r.status_code == 201, r.text
        await self.runtime.fleet.sync()
        return dict(r.json())

    async def register(self, index: int, dock: tuple[float, float], **extra: Any) -> dict[str, Any]:
        """Register vehicle ``index`` (sim/ or PX4) over the API and wait until it is connected and ready."""
        if self.vehicles is not None:
            end = self.vehicles.endpoints[index]
            body = vehicle_body(index=index, port=end.port, sysid=end.sysid, dock=dock, **extra)
        else:
            body = vehicle_body(index=index, port=self.base_port + index, dock=dock, **extra)
        r = await self.post("root", "/api/v1/vehicles", body)
        assert r.status_code == 201, r.text
        vehicle_id = int(r.json()["id"])
        await self.runtime.fleet.sync()
        link = await self.runtime.fleet.wait_link(vehicle_id, timeout_s=30)
        await link.wait_ready(timeout_s=60)
        await until(
            lambda: self.runtime.fleet.latest(vehicle_id) is not None, 10, f"vehicle {vehicle_id} telemetry"
        )
        return dict(r.json())


def seed_users(engine: Engine, users: dict[str, Role]) -> dict[str, str]:
    """Create ``users`` (password ``PASSWORD``) with a token each."""
    tokens: dict[str, str] = {}
    with session_scope(engine) as session:
        for username, role in users.items():
            user = auth.create_user(session=session, username=username, password=PASSWORD, role=role)
            tokens[username] = auth.issue_token(
                session=session, name=username, role=role, user_id=user.id
            ).token
    return tokens


@asynccontextmanager
async def running_service(
    tmp_path: Path,
    *,
    db_url: str | None = None,
    docks: Sequence[tuple[float, float]] = (),
    speed: float = 1.0,
    zones: Sequence[dict[str, Any]] = (),
    users: dict[str, Role] | None = None,
    sim_config: SimConfig | None = None,
    vehicle: dict[str, Any] | None = None,
    vehicles: str = SIM,
    **settings: Any,
) -> AsyncIterator[Service]:
    """The app with its lifespan running on ``db_url`` (default: a fresh SQLite file), drones on ``docks``.

    ``vehicles`` is ``"sim"`` (sim/ at ``speed``) or ``"px4"`` (fresh PX4 SITL at ``speed``; skipped without
    the bundle): the same scenario runs on either (tests/support/vehicles.py).
    """
    url = db_url or f"sqlite:///{tmp_path / 'skywarden.db'}"
    started = (
        start_vehicles(vehicles, docks, speed=speed, workdir=tmp_path, sim_config=sim_config)
        if docks
        else contextlib.nullcontext(None)
    )
    async with started as fleet:
        svc = Service(
            app=cast(FastAPI, None),  # start() builds the app and its client
            client=cast(httpx.AsyncClient, None),
            tokens={},
            sims=fleet.fleet if fleet is not None else None,
            speed=speed,
            base_port=fleet.endpoints[0].port if fleet is not None else free_udp_base(1),
            docks=list(docks),
            vehicles=fleet,
            settings=test_settings(url, sim_speed=speed, **settings),
        )
        await svc.start()
        try:
            svc.tokens = seed_users(svc.engine, users if users is not None else USERS)
            for zone in zones:
                r = await svc.post("root", "/api/v1/zones", zone)
                assert r.status_code == 201, r.text
            for i, dock in enumerate(docks):
                await svc.register(i, dock, **(vehicle or {}))
            yield svc
        finally:
            await svc.stop()
