"""The FastAPI app; its lifespan is the composition root (settings -> engine -> migrations -> runtime)."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from api import migrations
from api.deps import guard_first
from api.errors import install_error_handlers
from api.mqtt_bridge import MqttBridge
from api.settings import Settings
from mission.audit import service as audit
from mission.commands.remote import UserCommandSink
from mission.db import make_engine, session_scope
from mission.fleet import service as fleet
from mission.fleet.fleetfile import load_fleet_file
from mission.runtime import Runtime

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

# Every router module, included in this order; each exposes ``router``.
ROUTERS: tuple[str, ...] = (
    "api.routes.auth",
    "api.routes.tokens",
    "api.routes.vehicles",
    "api.routes.zones",
    "api.routes.audit",
    "api.routes.missions",
    "api.routes.plans",
    "api.routes.commands",
    "api.routes.control",
    "api.routes.incidents",
    "api.routes.dispatch",
    "api.routes.patrols",
    "api.routes.security_events",
    "api.routes.payload",
    "api.routes.video",
    "api.routes.video_ws",
    "api.ws",
    "api.routes.panel",
)

# Routers whose routes are not plain HTTP API routes (the websocket authenticates with its own handshake).
UNGUARDED = frozenset({"api.ws", "api.routes.video_ws", "api.routes.panel"})


class Health(BaseModel):
    status: str
    database: str
    runtime: bool


def sync_fleet_file(engine: Engine, settings: Settings) -> None:
    """Register (create or update by name) the vehicles of ``settings.fleet_file``, if one is set."""
    if settings.fleet_file is None:
        return
    vehicles = load_fleet_file(settings.fleet_file)
    with session_scope(engine) as session:
        created, updated = fleet.upsert_many(session=session, vehicles=vehicles)
        audit.record(
            session=session,
            actor="system:fleet_file",
            action="fleet.sync",
            target=str(settings.fleet_file),
            details={"created": created, "updated": updated},
        )
    log.info("fleet file %s: %d created, %d updated", settings.fleet_file, created, updated)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app; nothing touches the database or vehicles until the lifespan starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.engine = engine
        app.state.runtime = None
        app.state.mqtt_bridge = None
        try:
            if settings.migrate_on_start:
                await asyncio.to_thread(migrations.upgrade, engine)
            await asyncio.to_thread(sync_fleet_file, engine, settings)
            async with Runtime(settings=settings, engine=engine) as runtime:
                commands = UserCommandSink(
                    engine=engine,
                    fleet=runtime.fleet,
                    hub=runtime.hub,
                    missions=runtime.missions,
                    gate=runtime.gate,
                )
                # Without mqtt_url the bridge logs once that it is off and does nothing.
                async with MqttBridge(
                    settings, runtime.hub, runtime.dispatcher, command_sink=commands
                ) as bridge:
                    app.state.runtime = runtime
                    app.state.mqtt_bridge = bridge
                    yield
        finally:
            app.state.runtime = None
            app.state.mqtt_bridge = None
            engine.dispose()

    app = FastAPI(
        title="skywarden",
        summary="Drone patrol mission control: fleet, airspace, missions, dispatch and live telemetry",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json" if settings.docs_enabled else None,
        docs_url=f"{API_PREFIX}/docs" if settings.docs_enabled else None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)

    @app.get(f"{API_PREFIX}/health", response_model=Health, tags=["service"], summary="Liveness (public)")
    def health() -> Health:
        return Health(
            status="ok",
            database=app.state.engine.dialect.name,
            runtime=getattr(app.state, "runtime", None) is not None,
        )

    for name in ROUTERS:
        router = importlib.import_module(name).router
        if name in UNGUARDED:
            app.include_router(router)
        else:
            app.include_router(router, dependencies=[Depends(guard_first)])
    return app
