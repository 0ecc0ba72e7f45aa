"""Shared harness for the missions/commands/control/plans API tests (no tests here).

``running_service`` brings up what the app's lifespan does (engine, migrated schema, Runtime) in the
test's own event loop and serves the real app through httpx's ASGI transport, with users of every role.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api import migrations
from api.app import create_app
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import make_engine, session_scope
from mission.runtime import Runtime

MY_ROUTERS = ("api.routes.missions", "api.routes.plans", "api.routes.commands", "api.routes.control")
HOME = (39.8200, 109.9800)  # the demo district; the sim's vehicles start here
USERS = {
    "root": Role.admin,
    "alice": Role.pilot,
    "bob": Role.pilot,
    "dan": Role.dispatcher,
    "olga": Role.observer,
}
# A no-fly zone (hospital helipad) 600 m east of home.
HOSPITAL = {
    "name": "hospital helipad",
    "kind": "no_fly",
    "shape": {"type": "Circle", "center": [109.9870, 39.8200], "radius_m": 150},
    "floor_m": 0,
    "ceiling_m": 300,
}


def free_udp_ports(count: int) -> int:
    """A base port with ``count`` consecutive free UDP ports."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= 65000:
            continue
        socks = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


@dataclass
class Service:
    client: httpx.AsyncClient
    runtime: Runtime
    engine: Engine
    tokens: dict[str, str]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def post(self, user: str, url: str, json: Any = None) -> httpx.Response:
        return await self.client.post(url, json=json, headers=self.auth(user))

    async def get(self, user: str, url: str) -> httpx.Response:
        return await self.client.get(url, headers=self.auth(user))

    async def delete(self, user: str, url: str) -> httpx.Response:
        return await self.client.delete(url, headers=self.auth(user))

    async def add_vehicle(self, *, sysid: int, port: int, **extra: Any) -> dict[str, Any]:
        body = {
            "name": f"drone-{sysid}",
            "connection_url": f"udpin://0.0.0.0:{port}",
            "sysid": sysid,
            "home_lat": HOME[0],
            "home_lon": HOME[1],
            "home_alt_m": 1100.0,
            "capabilities": ["speaker", "spotlight"],
            "payload_actuators": {"speaker": 1, "spotlight": 2},
            **extra,
        }
        r = await self.post("root", "/api/v1/vehicles", body)
        assert r.status_code == 201, r.text
        await self.runtime.fleet.sync()
        return r.json()


def make_schema(engine: Engine) -> None:
    """The migrated schema plus any table of ours the migration does not have yet."""
    migrations.upgrade(engine)
    importlib.import_module("mission.missions.models")
    importlib.import_module("mission.control.models")
    SQLModel.metadata.create_all(engine)


@asynccontextmanager
async def running_service(
    tmp_path: Path, *, db_url: str | None = None, **settings: Any
) -> AsyncIterator[Service]:
    """The app with its Runtime on ``db_url`` (default: a fresh SQLite file), one token per user in USERS."""
    url = db_url or f"sqlite:///{tmp_path / 'skywarden.db'}"
    engine = make_engine(url)
    make_schema(engine)
    tokens: dict[str, str] = {}
    with session_scope(engine) as session:
        for username, role in USERS.items():
            user = auth.create_user(session=session, username=username, password="secret-pw", role=role)
            tokens[username] = auth.issue_token(
                session=session, name=username, role=role, user_id=user.id
            ).token
    app = create_app(Settings(database_url=url, migrate_on_start=False))
    included = {getattr(r, "path", "") for r in app.routes}
    for name in MY_ROUTERS:
        router = importlib.import_module(name).router
        if not any(getattr(r, "path", "") in included for r in router.routes):
            app.include_router(router)
    app.state.engine = engine
    config = SimpleNamespace(telemetry_hz=10.0, registry_poll_s=0.5, **settings)
    try:
        async with Runtime(settings=config, engine=engine) as runtime:
            app.state.runtime = runtime
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://skywarden.test", timeout=60
            ) as client:
                yield Service(client=client, runtime=runtime, engine=engine, tokens=tokens)
            app.state.runtime = None
    finally:
        engine.dispose()
