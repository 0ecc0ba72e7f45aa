"""The live telemetry websocket ``/ws?token=...``.

Server -> client (one JSON object per text frame):
  ``{"type":"hello","vehicles":[ids],"user":..,"role":..,"rate_hz":5.0,"max_rate_hz":10.0}`` once;
  ``{"type":"snapshot","vehicle_id":..,...}`` (``snapshot_to_json``);
  ``{"type":"event","seq":..,"kind":..,"vehicle_id":..,"mission_id":..,"time":..,"data":{..}}``;
  ``{"type":"subscribed","vehicles":[..]|null,"kinds":[..]|null,"rate_hz":..}`` after each subscribe;
  ``{"type":"resync","dropped":n}`` when this client fell too far behind: ``n`` events were dropped for it,
  and the current snapshot of every subscribed vehicle follows at once;
  ``{"type":"error","error":{"code":..,"message":..,"where":..}}`` for a bad client message.
Client -> server: ``{"type":"subscribe","vehicles":[..]|null,"kinds":[..]|null,"rate_hz":5,"batch":false}``.
A new connection is subscribed to everything at the default rate until it says otherwise. With
``"batch": true`` the messages of one delivery share a frame: ``{"type":"batch","messages":[{..},{..}]}``
(same shapes, same order) -- much cheaper for clients watching a large fleet.

Each connection has its own writer task reading a hub ``Subscription`` (coalesced snapshots, bounded
events), so a slow client only ever delays itself. A client that cannot take one delivery within
``send_timeout_s`` is closed (code 4408).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import HTTPConnection

from api import deps
from api.errors import Unauthenticated
from mission.telemetry.hub import Delivery, Subscription, SubscriptionClosed, TelemetryHub
from mission.telemetry.serialize import to_json

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401  # like HTTP 401, in the application range of websocket close codes
CLOSE_TOO_SLOW = 4408
CLOSE_SHUTDOWN = 1001
CLOSE_TRY_LATER = 1013
_BATCH_MAX_MESSAGES = 256


@dataclass(frozen=True, slots=True)
class WsUser:
    """Who is connected, as far as the websocket cares."""

    username: str
    role: str


Authenticate = Callable[[HTTPConnection, str], Awaitable[WsUser | None]]
HubGetter = Callable[[HTTPConnection], TelemetryHub]


class SubscribeIn(BaseModel):
    """A client's subscription request; ``None`` means all vehicles / all kinds."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe"]
    vehicles: list[int] | None = None
    kinds: list[str] | None = None
    rate_hz: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    batch: bool = False  # True: several messages per frame as {"type":"batch","messages":[...]}


def app_state_hub(conn: HTTPConnection) -> TelemetryHub:
    """The hub of the running app: ``app.state.runtime.hub`` (the Runtime) or ``app.state.telemetry_hub``."""
    state = conn.app.state
    runtime = getattr(state, "runtime", None)
    hub = getattr(runtime, "hub", None) if runtime is not None else None
    if hub is None:
        hub = getattr(state, "telemetry_hub", None)
    if not isinstance(hub, TelemetryHub):
        raise RuntimeError("no TelemetryHub on app.state (runtime.hub or telemetry_hub)")
    return hub


async def app_state_authenticate(conn: HTTPConnection, token: str) -> WsUser | None:
    """Check ``token`` like every REST route does (``api.deps.principal_for_token``); None if it is not valid.

    An app may set ``app.state.ws_authenticate`` (same signature) to replace the check.
    """
    check = getattr(conn.app.state, "ws_authenticate", None)
    if check is not None:
        return await check(conn, token)
    try:
        principal = await asyncio.to_thread(deps.principal_for_token, conn.app.state.engine, token)
    except Unauthenticated:
        return None
    return WsUser(username=principal.username, role=principal.role.value)


def _error(code: str, message: str, where: Any = None) -> str:
    return to_json({"type": "error", "error": {"code": code, "message": message, "where": where}})


class _Connection:
    """One websocket client: a reader for subscribe messages and a writer fed by its hub subscription."""

    def __init__(self, ws: WebSocket, sub: Subscription, hub: TelemetryHub, *, send_timeout_s: float) -> None:
        self.ws = ws
        self.sub = sub
        self.hub = hub
        self.send_timeout_s = send_timeout_s
        self._send_lock = asyncio.Lock()
        self.batch = False

    async def send_now(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def _send_delivery(self, delivery: Delivery) -> None:
        parts: list[str] = []
        if delivery.resync_dropped:
            # The client missed events: tell it, give it the whole current state, then carry on.
            parts.append(to_json({"type": "resync", "dropped": delivery.resync_dropped}))
            parts.extend(update.json for update in delivery.snapshots)
            parts.extend(record.json for record in delivery.events)
        else:
            parts.extend(record.json for record in delivery.events)
            parts.extend(update.json for update in delivery.snapshots)
        send = self.ws.send_text
        async with self._send_lock:
            if not self.batch:
                for text in parts:
                    await send(text)
                return
            # One frame per delivery instead of one per message: far fewer syscalls and wakeups on both ends.
            for i in range(0, len(parts), _BATCH_MAX_MESSAGES):
                await send(
                    '{"type":"batch","messages":[' + ",".join(parts[i : i + _BATCH_MAX_MESSAGES]) + "]}"
                )

    async def writer(self) -> None:
        while True:
            try:
                delivery = await self.sub.next()
            except SubscriptionClosed:
                await self.ws.close(code=CLOSE_SHUTDOWN, reason="service shutting down")
                return
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    await self._send_delivery(delivery)
            except TimeoutError:
                log.warning("websocket %s too slow, closing", self.sub.name)
                with contextlib.suppress(Exception):
                    await self.ws.close(code=CLOSE_TOO_SLOW, reason="client too slow")
                return

    async def reader(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", "replace")
            try:
                request = SubscribeIn.model_validate_json(raw)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or None
                await self.send_now(_error("bad_request", f"{first['msg']}", where))
                continue
            rate_hz = self.hub.clamp_rate(request.rate_hz or self.hub.default_rate_hz)
            # Acknowledge first, so the state of the newly chosen vehicles follows the acknowledgement.
            await self.send_now(
                to_json(
                    {
                        "type": "subscribed",
                        "vehicles": None if request.vehicles is None else sorted(set(request.vehicles)),
                        "kinds": None if request.kinds is None else sorted(set(request.kinds)),
                        "rate_hz": rate_hz,
                        "batch": request.batch,
                    }
                )
            )
            self.batch = request.batch
            self.sub.configure(vehicles=request.vehicles, kinds=request.kinds, rate_hz=rate_hz)


def make_router(
    *,
    authenticate: Authenticate = app_state_authenticate,
    hub: HubGetter = app_state_hub,
    max_events: int = 1000,
    linger_s: float = 0.005,
    send_timeout_s: float = 30.0,
) -> APIRouter:
    """A router with the ``/ws`` endpoint; the defaults find the hub and token check on ``app.state``."""
    router = APIRouter()

    @router.websocket("/ws")
    async def telemetry_ws(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token") or ""
        if not token:
            auth = websocket.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
        user = await authenticate(websocket, token) if token else None
        await websocket.accept()
        if user is None:
            reason = "missing token" if not token else "invalid or expired token"
            await websocket.send_text(_error("unauthorized", reason))
            await websocket.close(code=CLOSE_UNAUTHORIZED, reason=reason)
            return
        try:
            the_hub = hub(websocket)
        except RuntimeError:
            # The runtime is still starting or already stopping; 1013 = try again later.
            await websocket.send_text(_error("unavailable", "live telemetry is not running yet"))
            await websocket.close(code=CLOSE_TRY_LATER, reason="live telemetry is not running yet")
            return
        sub = the_hub.subscribe(max_events=max_events, linger_s=linger_s, name=f"ws:{user.username}")
        conn = _Connection(websocket, sub, the_hub, send_timeout_s=send_timeout_s)
        try:
            await websocket.send_text(
                to_json(
                    {
                        "type": "hello",
                        "vehicles": sorted(the_hub.latest()),
                        "user": user.username,
                        "role": user.role,
                        "rate_hz": sub.rate_hz,
                        "max_rate_hz": the_hub.max_rate_hz,
                    }
                )
            )
            sub.prime()
            writer = asyncio.create_task(conn.writer(), name=f"ws-writer:{user.username}")
            try:
                await conn.reader()
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                    await writer
        except (WebSocketDisconnect, OSError):
            pass
        finally:
            sub.close()

    return router


router = make_router()
