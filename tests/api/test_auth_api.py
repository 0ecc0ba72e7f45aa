"""Login, me, logout, tokens and users over HTTP."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope


def _user(app: FastAPI, username: str, password: str, role: Role) -> None:
    with session_scope(app.state.engine) as session:
        auth.create_user(session=session, username=username, password=password, role=role)


async def test_login_me_logout(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user(app, "pia", "pilot-pass", Role.pilot)
    r = await client.post("/api/v1/auth/login", json={"username": "pia", "password": "pilot-pass"})
    assert r.status_code == 200, r.text
    login = r.json()
    assert (login["role"], login["username"]) == ("pilot", "pia") and login["token"].startswith("swk_")
    headers = {"Authorization": f"Bearer {login['token']}"}
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    assert (me["username"], me["role"]) == ("pia", "pilot")
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_bad_login_is_401_and_audited(app: FastAPI, client: httpx.AsyncClient, admin) -> None:  # type: ignore[no-untyped-def]
    _user(app, "pia", "pilot-pass", Role.pilot)
    for username in ("pia", "nobody"):
        r = await client.post("/api/v1/auth/login", json={"username": username, "password": "wrong"})
        assert r.status_code == 401
        assert r.json() == {"error": {"code": "unauthenticated", "message": "wrong username or password"}}
    entries = (await client.get("/api/v1/audit", params={"action": "auth."}, headers=admin)).json()["items"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("nobody", "auth.login_failed"),
        ("pia", "auth.login_failed"),
    ]


async def test_tokens_issue_list_revoke(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post("/api/v1/tokens", json={"name": "ci", "role": "dispatcher"}, headers=admin)
    assert r.status_code == 201, r.text
    issued = r.json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert (await client.get("/api/v1/auth/me", headers=headers)).json()["role"] == "dispatcher"
    listed = (await client.get("/api/v1/tokens", headers=admin)).json()
    assert issued["id"] in [t["id"] for t in listed["items"]]
    assert all("token" not in t and "token_hash" not in t for t in listed["items"])
    r = await client.delete(f"/api/v1/tokens/{issued['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    assert (await client.delete("/api/v1/tokens/999", headers=admin)).status_code == 404
    r = await client.post("/api/v1/tokens", json={"name": "x", "role": "captain"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["where"] == "body.role"


async def test_admin_creates_users_who_can_log_in(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post(
        "/api/v1/auth/users",
        json={"username": "dora", "password": "disp-pass", "role": "dispatcher"},
        headers=admin,
    )
    assert r.status_code == 201 and "password" not in r.text
    r = await client.post(
        "/api/v1/auth/users",
        json={"username": "dora", "password": "other", "role": "observer"},
        headers=admin,
    )
    assert r.status_code == 409
    r = await client.post("/api/v1/auth/login", json={"username": "dora", "password": "disp-pass"})
    assert r.json()["role"] == "dispatcher"
    users = (await client.get("/api/v1/auth/users", headers=admin)).json()
    assert users["total"] == 1 and [u["username"] for u in users["items"]] == ["dora"]


async def test_garbage_tokens_are_401(client: httpx.AsyncClient) -> None:
    for header in ({}, {"Authorization": "Bearer swk_nope"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        r = await client.get("/api/v1/vehicles", headers=header)
        assert r.status_code == 401, header
        assert r.json()["error"]["code"] == "unauthenticated"
