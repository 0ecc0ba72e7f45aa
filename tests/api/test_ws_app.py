"""/ws in the real app: tokens checked by api.deps against the database, snapshots from the Runtime's hub,
and sockets that end within seconds of their token or user losing the right to watch."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.ws import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED
from mission.auth import service as auth
from mission.auth.models import ApiToken
from mission.auth.roles import Role
from mission.db import session_scope
from mission.telemetry.events import Event
from tests.telemetry.factories import snapshot
from tests.telemetry.servers import serve

pytestmark = pytest.mark.timeout(60)


async def recv_json(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout_s))


async def hello(ws: ClientConnection) -> dict[str, Any]:
    msg = await recv_json(ws)
    assert msg["type"] == "hello", msg
    return msg


async def ended_within(ws: ClientConnection, seconds: float) -> tuple[float, dict[str, Any] | None]:
    """Read until the server closes the socket; (seconds it took, the last error message before it)."""
    start = time.monotonic()
    last_error = None
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            msg = await recv_json(ws, timeout_s=seconds)
            if msg["type"] == "error":
                last_error = msg
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAUTHORIZED
    return time.monotonic() - start, last_error


async def test_ws_in_the_app_checks_tokens_and_streams_the_runtime_hub(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: dict[Role, dict[str, str]]
) -> None:
    token = auth_headers[Role.observer]["Authorization"].removeprefix("Bearer ")
    with session_scope(app.state.engine) as session:
        revoked = auth.issue_token(session=session, name="gone", role=Role.pilot)
        auth.revoke_token(session=session, token_id=revoked.id)
    hub = app.state.runtime.hub
    hub.update(snapshot(4))
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/ws"
        for bad in ("nope", revoked.token):
            async with connect(url) as ws:
                await ws.send(json.dumps({"type": "auth", "token": bad}))
                body = await recv_json(ws)
                assert body["error"]["code"] == "unauthorized"
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAUTHORIZED
        async with connect(f"{url}?token={token}") as ws:  # a good token, but in the URL
            body = await recv_json(ws)
            assert body["type"] == "error" and "in the URL" in body["error"]["message"]
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert (await hello(ws))["role"] == "observer"
            state = await recv_json(ws)
            assert state["type"] == "snapshot" and state["vehicle_id"] == 4
            hub.emit(Event(kind="incident.created", data={"incident_id": 1}))
            event = await recv_json(ws)
            assert event["type"] == "event" and event["kind"] == "incident.created"


async def test_revoking_a_token_closes_its_stream_at_once(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    issued = (
        await client.post("/api/v1/tokens", json={"name": "wall", "role": "observer"}, headers=admin)
    ).json()
    async with (
        serve(app) as port,
        connect(
            f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {issued['token']}"}
        ) as ws,
    ):
        await hello(ws)
        assert (await client.delete(f"/api/v1/tokens/{issued['id']}", headers=admin)).status_code == 200
        took_s, error = await ended_within(ws, 5)
    assert error is not None and error["error"]["code"] == "session_ended"
    assert took_s < 2.0, took_s


async def test_a_token_revoked_behind_the_apis_back_ends_its_stream_within_5_s(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: dict[Role, dict[str, str]]
) -> None:
    """Revoked by the CLI or another instance (no signal to this one): the periodic re-check finds it."""
    token = auth_headers[Role.pilot]["Authorization"].removeprefix("Bearer ")
    async with serve(app) as port, connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await hello(ws)
        with session_scope(app.state.engine) as session:
            row = session.exec(select(ApiToken).where(ApiToken.token_hash == auth.token_digest(token))).one()
            row.revoked = True
            session.add(row)
        took_s, error = await ended_within(ws, 8)
    assert error is not None and error["error"]["code"] == "session_ended"
    assert took_s < 5.0, took_s


async def test_disabling_a_user_ends_their_panel_socket_at_once(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    with session_scope(app.state.engine) as session:
        dora = auth.create_user(
            session=session, username="dora", password="dispatch-pw", role=Role.dispatcher
        )
    panel = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel.test")
    async with panel, serve(app) as port:
        r = await panel.post("/api/v1/auth/session", json={"username": "dora", "password": "dispatch-pw"})
        cookie = f"skywarden_session={r.cookies['skywarden_session']}"
        host = f"127.0.0.1:{port}"
        # The browser sends the cookie with the handshake; a page of another site cannot use it.
        async with connect(
            f"ws://{host}/ws", additional_headers={"Cookie": cookie, "Origin": "http://evil.example"}
        ) as ws:
            body = await recv_json(ws)
            assert body["type"] == "error" and "cross-origin" in body["error"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_FORBIDDEN
        async with connect(
            f"ws://{host}/ws", additional_headers={"Cookie": cookie, "Origin": f"http://{host}"}
        ) as ws:
            assert (await hello(ws))["user"] == "dora"
            r = await client.patch(f"/api/v1/users/{dora.id}", json={"disabled": True}, headers=admin)
            assert r.status_code == 200
            took_s, error = await ended_within(ws, 5)
    assert error is not None and error["error"]["code"] == "session_ended"
    assert took_s < 2.0, took_s


async def test_logging_out_ends_the_sessions_socket(app: FastAPI, client: httpx.AsyncClient) -> None:
    with session_scope(app.state.engine) as session:
        auth.create_user(session=session, username="olga", password="observer-pw", role=Role.observer)
    token = (
        await client.post("/api/v1/auth/login", json={"username": "olga", "password": "observer-pw"})
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with serve(app) as port, connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers) as ws:
        await hello(ws)
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        took_s, _ = await ended_within(ws, 5)
    assert took_s < 2.0
