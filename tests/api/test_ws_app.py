"""/ws in the real app: tokens checked by api.deps against the database, snapshots from the Runtime's hub."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from api.ws import CLOSE_UNAUTHORIZED
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope
from mission.telemetry.events import Event
from tests.telemetry.factories import snapshot
from tests.telemetry.servers import serve

pytestmark = pytest.mark.timeout(30)


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
            async with connect(f"{url}?token={bad}") as ws:
                body = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert body["error"]["code"] == "unauthorized"
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAUTHORIZED
        async with connect(f"{url}?token={token}") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert hello["type"] == "hello" and hello["role"] == "observer" and 4 in hello["vehicles"]
            state = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert state["type"] == "snapshot" and state["vehicle_id"] == 4
            hub.emit(Event(kind="incident.created", data={"incident_id": 1}))
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert event["type"] == "event" and event["kind"] == "incident.created"
