"""The live telemetry websocket ``/ws``.

Authentication (never in the URL: a ``?token=`` is refused, since URLs land in access logs):
  - the panel's HttpOnly session cookie, sent by the browser with the handshake (same origin only); or
  - an ``Authorization: Bearer <token>`` header on the handshake (clients that can set headers); or
  - as the first message, within ``ws_auth_timeout_s``: ``{"type":"auth","token":"swk_..."}``.
A refused client gets ``{"type":"error","error":{"code":"unauthorized",..}}`` and close code 4401. While
connected, the token and its user are checked again every ``ws_recheck_s`` (and at once when an admin
revokes the token, ends the user's sessions or disables the user): the socket is then told
``{"type":"error","error":{"code":"session_ended",..}}`` and closed with 4401.

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
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from api import deps
from api.errors import Unauthenticated
from mission.telemetry.hub import Delivery, Subscription, SubscriptionClosed, TelemetryHub
from mission.telemetry.serialize import to_json

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401  # like HTTP 401, in the application range of websocket close codes
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_SHUTDOWN = 1001
CLOSE_TRY_LATER = 1013
_BATCH_MAX_MESSAGES = 256
DEFAULT_AUTH_TIMEOUT_S = 5.0
SESSION_ENDED = "your session ended (token revoked or expired, or user disabled); sign in again"


@dataclass(frozen=True, slots=True)
class WsUser:
    """Who is connected, as far as the websocket cares (the ids let revocation find the socket)."""

    username: str
    role: str
    token_id: int | None = None
    user_id: int | None = None


class AuthIn(BaseModel):
    """The first message of a client that did not authenticate with the handshake."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=512)


EndSocket = Callable[[str], Awaitable[None]]
LiveTokens = Callable[[set[int]], Awaitable[set[int]]]


@dataclass(slots=True)
class _Watched:
    token_id: int
    user_id: int | None
    end: EndSocket
    ending: bool = field(default=False)


class SocketGuard:
    """Ends live websockets whose token or user stopped authenticating.

    ``end_now`` (thread-safe: routes call it after their change is committed) closes matching sockets at
    once; a sweep every ``interval_s`` asks ``live_tokens`` which watched tokens still authenticate (one
    query for all sockets) and closes the rest, which also covers expiry, idle sessions and other instances.
    """

    def __init__(self, *, live_tokens: LiveTokens, interval_s: float) -> None:
        self.live_tokens = live_tokens
        self.interval_s = interval_s
        self._watched: dict[int, _Watched] = {}
        self._doomed_tokens: set[int] = set()
        self._doomed_users: set[int] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.ended = 0

    async def __aenter__(self) -> SocketGuard:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="ws-socket-guard")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def watch(self, *, token_id: int, user_id: int | None, end: EndSocket) -> Callable[[], None]:
        """Watch one socket; returns the function that stops watching it."""
        entry = _Watched(token_id=token_id, user_id=user_id, end=end)
        key = id(entry)
        self._watched[key] = entry

        def unwatch() -> None:
            self._watched.pop(key, None)

        return unwatch

    def end_now(self, *, token_ids: Iterable[int] = (), user_ids: Iterable[int] = ()) -> None:
        """Close every socket of these tokens or users as soon as the loop runs (callable from any thread)."""
        tokens, users = set(token_ids), set(user_ids)
        if self._loop is None or not (tokens or users):
            return

        def mark() -> None:
            self._doomed_tokens |= tokens
            self._doomed_users |= users
            self._wake.set()

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            mark()
        else:
            self._loop.call_soon_threadsafe(mark)

    async def _end(self, entries: Collection[_Watched]) -> None:
        for entry in entries:
            if entry.ending:
                continue
            entry.ending = True
            self.ended += 1
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await entry.end(SESSION_ENDED)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_sweep - loop.time())):
                    await self._wake.wait()
            self._wake.clear()
            tokens, users = self._doomed_tokens, self._doomed_users
            self._doomed_tokens, self._doomed_users = set(), set()
            if tokens or users:
                await self._end(
                    [w for w in self._watched.values() if w.token_id in tokens or w.user_id in users]
                )
            if loop.time() < next_sweep:
                continue
            next_sweep = loop.time() + self.interval_s
            watched = list(self._watched.values())
            if not watched:
                continue
            try:
                live = await self.live_tokens({w.token_id for w in watched})
            except Exception:  # a database hiccup must not stop the guard; the next sweep tries again
                log.exception("websocket token re-check failed")
                continue
            await self._end([w for w in watched if w.token_id not in live])


def end_sockets(
    app: ASGIApp | FastAPI, *, token_ids: Iterable[int] = (), user_ids: Iterable[int] = ()
) -> None:
    """Close the live websockets of these tokens or users at once (no-op for an app without a guard)."""
    state = getattr(app, "state", None)
    guard = getattr(state, "socket_guard", None)
    if isinstance(guard, SocketGuard):
        guard.end_now(token_ids=token_ids, user_ids=user_ids)


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
        principal = await asyncio.to_thread(
            deps.principal_for_token,
            conn.app.state.engine,
            token,
            idle_timeout_s=deps.idle_timeout_s(conn.app.state),
        )
    except Unauthenticated:
        return None
    return WsUser(
        username=principal.username,
        role=principal.role.value,
        token_id=principal.token_id,
        user_id=principal.user_id,
    )


def _same_origin(conn: HTTPConnection) -> bool:
    """Whether a browser's handshake comes from a page of this service (no Origin: not a browser)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == conn.headers.get("host", "").lower()


def _auth_timeout_s(conn: HTTPConnection) -> float:
    settings = getattr(conn.app.state, "settings", None)
    return float(getattr(settings, "ws_auth_timeout_s", DEFAULT_AUTH_TIMEOUT_S))


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

    async def end(self, reason: str) -> None:
        """Tell the client its session ended and close (the reader then sees the disconnect)."""
        async with self._send_lock:
            with contextlib.suppress(Exception):
                await self.ws.send_text(_error("session_ended", reason))
            await self.ws.close(code=CLOSE_UNAUTHORIZED, reason="session ended")

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


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.send_text(_error("unauthorized", reason))
    await websocket.close(code=code, reason=reason[:120])


async def _first_message_token(websocket: WebSocket) -> str | None:
    """The token of the client's ``{"type":"auth"}`` message; None if it sends none in time."""
    try:
        async with asyncio.timeout(_auth_timeout_s(websocket)):
            message = await websocket.receive()
    except TimeoutError:
        return None
    raw = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
    try:
        return AuthIn.model_validate_json(raw).token
    except ValidationError:
        return None


async def authenticate_socket(
    websocket: WebSocket, *, authenticate: Authenticate = app_state_authenticate
) -> WsUser | None:
    """Who an accepted websocket is, without a token in its URL: an Authorization header, the panel's session
    cookie (same origin only) or a first ``{"type":"auth","token":...}`` message. On failure the socket is
    told why and closed, and None is returned. Every websocket of the service authenticates through here."""
    if "token" in websocket.query_params:
        await _refuse(
            websocket,
            CLOSE_UNAUTHORIZED,
            'a token in the URL is refused (URLs are logged); send {"type":"auth","token":"..."} '
            "as the first message or an Authorization header",
        )
        return None
    token = ""
    auth = websocket.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    elif websocket.cookies.get(deps.SESSION_COOKIE):
        if not _same_origin(websocket):
            await _refuse(websocket, CLOSE_FORBIDDEN, "cross-origin websocket with the session cookie")
            return None
        token = websocket.cookies[deps.SESSION_COOKIE]
    if not token:
        token = await _first_message_token(websocket) or ""
        if not token:
            await _refuse(
                websocket,
                CLOSE_UNAUTHORIZED,
                'missing token: send {"type":"auth","token":"..."} as the first message',
            )
            return None
    user = await authenticate(websocket, token)
    if user is None:
        await _refuse(websocket, CLOSE_UNAUTHORIZED, "invalid, expired or revoked token")
    return user


def watch_socket(websocket: WebSocket, user: WsUser, end: EndSocket) -> Callable[[], None]:
    """Have the socket guard close this socket when its token or user stops authenticating."""
    guard = getattr(websocket.app.state, "socket_guard", None)
    if isinstance(guard, SocketGuard) and user.token_id is not None:
        return guard.watch(token_id=user.token_id, user_id=user.user_id, end=end)
    return lambda: None


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
        await websocket.accept()
        user = await authenticate_socket(websocket, authenticate=authenticate)
        if user is None:
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
        unwatch = watch_socket(websocket, user, conn.end)
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
            unwatch()
            sub.close()

    return router


router = make_router()
