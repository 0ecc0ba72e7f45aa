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
from api.forwarding import OwnerForwarding
from api.middleware import BodyLimit, SecurityHeaders
from api.mqtt_bridge import MqttBridge
from api.settings import Settings
from api.ws import SocketGuard
from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.login import LoginGuard, LoginPolicy
from mission.auth.throttle import ThrottlePolicy
from mission.commands.remote import UserCommandSink
from mission.db import make_engine, session_scope
from mission.fleet import service as fleet
from mission.fleet.fleetfile import load_fleet_file
from mission.runtime import Runtime
from mission.telemetry.intake import IncidentSenders

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

# Every router module, included in this order; each exposes ``router``.
ROUTERS: tuple[str, ...] = (
    "api.routes.auth",
    "api.routes.tokens",
    "api.routes.users",
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
    "api.routes.cordons",
    "api.routes.payload",
    "api.routes.flights",
    "api.routes.video",
    "api.routes.video_ws",
    "api.routes.preferences",
    "api.routes.reports",
    "api.ws",
    "api.routes.panel",
)

# Routers whose routes are not plain HTTP API routes (the websocket authenticates with its own handshake).
UNGUARDED = frozenset({"api.ws", "api.routes.video_ws", "api.routes.panel"})


class Health(BaseModel):
    status: str
    database: str
    runtime: bool
    loop_stall_ms_max: float | None = None  # the event loop's worst lateness since start (or reset)
    loop_stall_ms_p99: float | None = None
    # several instances (SKYWARDEN_CLUSTER): who this is, what it owns and leads, and fenced commands
    instance_id: str | None = None
    vehicles_owned: list[int] | None = None
    leads: list[str] | None = None
    commands_refused_stale_epoch: int | None = None


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


def login_policy(settings: Settings) -> LoginPolicy:
    """Sign-in throttling and audit limits from the settings."""
    return LoginPolicy(
        throttle=ThrottlePolicy(
            max_failures_per_account=settings.login_max_failures_per_account,
            max_failures_per_address=settings.login_max_failures_per_address,
            window_s=settings.login_failure_window_s,
            lockout_s=settings.login_lockout_s,
        ),
        hash_workers=settings.login_hash_workers,
        queue_max=settings.login_queue_max,
        audit_burst=settings.login_audit_burst,
        audit_interval_s=settings.login_audit_interval_s,
    )


def socket_guard(engine: Engine, settings: Settings) -> SocketGuard:
    """The guard that closes websockets whose token or user stopped authenticating."""

    def live(token_ids: set[int]) -> set[int]:
        with session_scope(engine) as session:
            return auth.live_token_ids(
                session=session, token_ids=token_ids, idle_timeout_s=settings.session_idle_timeout_s
            )

    async def live_tokens(token_ids: set[int]) -> set[int]:
        return await asyncio.to_thread(live, token_ids)

    return SocketGuard(live_tokens=live_tokens, interval_s=settings.ws_recheck_s)


async def _let_database_work_finish(engine: Engine, *, timeout_s: float = 5.0) -> None:
    """Wait (bounded) for connections still checked out to come back before the pool is closed.

    Work handed to threads (an audit write, a lease renewal) runs on after its task is cancelled; a
    connection it returns after ``dispose()`` lands in the discarded pool and is only closed when that is
    garbage collected (psycopg warns then). Shutdown waits for it instead, up to ``timeout_s``.
    """
    pool = engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if checked_out is None:
        return
    for _ in range(int(timeout_s / 0.02)):  # the pool has no event to wait on: poll its count
        if checked_out() == 0:
            return
        await asyncio.sleep(0.02)
    if checked_out() > 0:
        log.warning("shutdown: %d database connections still in use after %.0f s", checked_out(), timeout_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app; nothing touches the database or vehicles until the lifespan starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.engine = engine
        app.state.runtime = None
        app.state.mqtt_bridge = None
        app.state.login_guard = None
        app.state.socket_guard = None
        try:
            if settings.migrate_on_start:
                await asyncio.to_thread(migrations.upgrade, engine)
            await asyncio.to_thread(sync_fleet_file, engine, settings)
            async with (
                LoginGuard(engine=engine, policy=login_policy(settings)) as login_guard,
                socket_guard(engine, settings) as sockets,
                Runtime(settings=settings, engine=engine) as runtime,
            ):
                app.state.login_guard = login_guard
                app.state.socket_guard = sockets
                commands = UserCommandSink(
                    engine=engine, flights=runtime.flights, hub=runtime.hub, missions=runtime.missions
                )
                senders = IncidentSenders(
                    engine=engine,
                    users=settings.mqtt_incident_users,
                    audit_interval_s=settings.mqtt_refusal_audit_interval_s,
                )
                # Without mqtt_url the bridge logs once that it is off and does nothing.
                async with MqttBridge(
                    settings, runtime.hub, runtime.dispatcher, command_sink=commands, incident_senders=senders
                ) as bridge:
                    app.state.runtime = runtime
                    app.state.mqtt_bridge = bridge
                    yield
        finally:
            app.state.runtime = None
            app.state.mqtt_bridge = None
            app.state.login_guard = None
            app.state.socket_guard = None
            await _let_database_work_finish(engine)
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
    # Innermost: several instances answer a vehicle's commands on its owner (does nothing on one instance).
    app.add_middleware(OwnerForwarding)
    # Outermost first: every response (errors and 413s included) gets the security headers.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, tile_url=settings.tile_url)

    @app.get(f"{API_PREFIX}/health", response_model=Health, tags=["service"], summary="Liveness (public)")
    async def health() -> Health:
        runtime = getattr(app.state, "runtime", None)
        cluster = getattr(runtime, "cluster", None)
        return Health(
            status="ok",
            database=app.state.engine.dialect.name,
            runtime=runtime is not None,
            loop_stall_ms_max=round(runtime.loop.worst_ms, 2) if runtime is not None else None,
            loop_stall_ms_p99=round(runtime.loop.p99_ms(), 2) if runtime is not None else None,
            instance_id=cluster.instance_id if cluster is not None else None,
            vehicles_owned=sorted(cluster.owned()) if cluster is not None else None,
            leads=cluster.leading() if cluster is not None else None,
            commands_refused_stale_epoch=cluster.refused_stale if cluster is not None else None,
        )

    for name in ROUTERS:
        router = importlib.import_module(name).router
        if name in UNGUARDED:
            app.include_router(router)
        else:
            app.include_router(router, dependencies=[Depends(guard_first)])
    return app
