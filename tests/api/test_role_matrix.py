"""Every mutating endpoint refuses the roles that must not use it, read off ``app.routes``.

Each route declares its roles with ``api.deps.require_roles``; a new endpoint is covered the moment it exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.deps import guard_first, require_roles, route_roles
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope
from mission.errors import LinkError
from tests.api.conftest import make_settings

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Mutating endpoints open to anyone: signing in needs no token.
PUBLIC = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/session")}
# Mutating endpoints every role may use on itself only.
SELF_SERVICE = {("POST", "/api/v1/auth/logout"), ("PUT", "/api/v1/me/locale")}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    allowed: frozenset[Role] | None

    @property
    def url(self) -> str:
        return re.sub(r"\{[^}]+\}", "1", self.path)


def mutating_endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) that changes something, with the roles its guard lets through."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        for method in sorted((ctx.methods or set()) & MUTATING):
            out.append(Endpoint(method, ctx.path or route.path, route_roles(route.dependant)))
    return out


ENDPOINTS = mutating_endpoints(create_app(make_settings("sqlite://")))


def test_the_matrix_sees_the_core_endpoints() -> None:
    seen = {(e.method, e.path) for e in ENDPOINTS}
    assert {
        ("POST", "/api/v1/vehicles"),
        ("PUT", "/api/v1/zones/{zone_id}"),
        ("POST", "/api/v1/tokens"),
    } <= seen
    assert len(ENDPOINTS) >= 12


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_every_mutating_route_declares_roles(endpoint: Endpoint) -> None:
    if (endpoint.method, endpoint.path) in PUBLIC:
        assert endpoint.allowed is None
        return
    assert endpoint.allowed is not None, f"{endpoint.method} {endpoint.path} has no require_roles(...) guard"
    assert Role.admin in endpoint.allowed
    if (endpoint.method, endpoint.path) not in SELF_SERVICE:
        assert Role.observer not in endpoint.allowed, "observers are read-only"


CORE_ADMIN_ONLY = [
    ("POST", "/api/v1/vehicles"),
    ("PATCH", "/api/v1/vehicles/{vehicle_id}"),
    ("DELETE", "/api/v1/vehicles/{vehicle_id}"),
    ("POST", "/api/v1/zones"),
    ("PUT", "/api/v1/zones/{zone_id}"),
    ("DELETE", "/api/v1/zones/{zone_id}"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("POST", "/api/v1/auth/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{user_id}"),
    ("POST", "/api/v1/users/{user_id}/password"),
    ("DELETE", "/api/v1/users/{user_id}/sessions"),
]


def test_registry_airspace_and_tokens_are_admin_only() -> None:
    by_key = {(e.method, e.path): e for e in ENDPOINTS}
    for key in CORE_ADMIN_ONLY:
        assert by_key[key].allowed == {Role.admin}, key


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_forbidden_roles_get_403_and_no_token_gets_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    checked = 0
    with session_scope(app.state.engine) as session:
        tokens = {role: auth.issue_token(session=session, name=role.value, role=role).token for role in Role}
    for endpoint in mutating_endpoints(app):
        if (endpoint.method, endpoint.path) in PUBLIC:
            continue
        r = await client.request(endpoint.method, endpoint.url)
        assert r.status_code == 401, f"{endpoint.method} {endpoint.path} without a token: {r.status_code}"
        assert endpoint.allowed is not None
        for role in set(Role) - endpoint.allowed:
            r = await client.request(
                endpoint.method, endpoint.url, headers={"Authorization": f"Bearer {tokens[role]}"}
            )
            assert r.status_code == 403, (
                f"{endpoint.method} {endpoint.path} as {role.value}: {r.status_code} {r.text}"
            )
            err = r.json()["error"]
            assert err["code"] == "forbidden" and f"role {role.value} may not do this" in err["message"]
            checked += 1
        for role in endpoint.allowed:
            # A fresh token each time: some allowed calls (logout) revoke the token they were made with.
            with session_scope(app.state.engine) as session:
                token = auth.issue_token(session=session, name="ok", role=role).token
            r = await client.request(
                endpoint.method, endpoint.url, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code not in (401, 403), (
                f"{endpoint.method} {endpoint.path} as {role.value} refused"
            )
    assert checked >= 30


def unavailable() -> None:
    raise LinkError("the thing is not running")


probe_router = APIRouter(prefix="/api/v1/probe")


@probe_router.post("")
def probe(
    _thing: Annotated[None, Depends(unavailable)],
    _who: Annotated[object, Depends(require_roles(Role.pilot))],
) -> None:
    return None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_role_check_comes_before_the_routes_other_dependencies(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: dict[Role, dict[str, str]]
) -> None:
    """A route that asks for the runtime before its guard still answers 401/403 first, never 503."""

    app.include_router(probe_router, dependencies=[Depends(guard_first)])
    assert (await client.post("/api/v1/probe")).status_code == 401
    r = await client.post("/api/v1/probe", headers=auth_headers[Role.observer])
    assert r.status_code == 403 and "allowed roles: admin, pilot" in r.json()["error"]["message"]
    r = await client.post("/api/v1/probe", headers=auth_headers[Role.pilot])
    assert r.status_code == 503 and r.json()["error"]["code"] == "link_error", r.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_session_cookie_changes_nothing_without_the_csrf_header_and_keeps_the_roles(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The panel's cookie is another door: every mutating route wants the CSRF header with it, and with
    the header the role matrix is the same as with a bearer token."""
    with session_scope(app.state.engine) as session:
        for role in (Role.admin, Role.observer):
            auth.create_user(session=session, username=role.value, password=f"{role.value}-pw", role=role)
    csrf: dict[Role, str] = {}
    cookies: dict[Role, str] = {}
    for role in (Role.admin, Role.observer):
        r = await client.post(
            "/api/v1/auth/session", json={"username": role.value, "password": f"{role.value}-pw"}
        )
        assert r.status_code == 200, r.text
        csrf[role] = r.json()["csrf_token"]
        cookies[role] = r.cookies["skywarden_session"]
        client.cookies.clear()
    checked = 0
    for endpoint in mutating_endpoints(app):
        if (endpoint.method, endpoint.path) in PUBLIC | SELF_SERVICE:
            continue
        for role in (Role.admin, Role.observer):
            cookie = {"Cookie": f"skywarden_session={cookies[role]}"}
            r = await client.request(endpoint.method, endpoint.url, headers=cookie)
            assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]["message"], (
                f"{endpoint.method} {endpoint.path} as {role.value} without CSRF: {r.status_code}"
            )
        r = await client.request(
            endpoint.method,
            endpoint.url,
            headers={
                "Cookie": f"skywarden_session={cookies[Role.observer]}",
                "X-CSRF-Token": csrf[Role.observer],
            },
        )
        assert r.status_code == 403 and "role observer may not do this" in r.json()["error"]["message"]
        checked += 1
    assert checked >= 12
