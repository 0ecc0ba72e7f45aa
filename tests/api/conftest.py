"""The app with its lifespan running (migrations, Runtime) on SQLite and PostgreSQL, and a token per role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope


def make_settings(db_url: str, **overrides: object) -> Settings:
    """Settings for a test app: no .env, no settings file, the given database."""
    return Settings(_env_file=None, database_url=db_url, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def app(db_url: str) -> FastAPI:
    return create_app(make_settings(db_url))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app while its lifespan runs."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://skywarden.test") as c,
    ):
        yield c


@pytest.fixture
def auth_headers(app: FastAPI, client: httpx.AsyncClient) -> dict[Role, dict[str, str]]:
    """An Authorization header for a standalone token of every role (the lifespan has migrated the db)."""
    headers = {}
    with session_scope(app.state.engine) as session:
        for role in Role:
            token = auth.issue_token(session=session, name=f"test-{role.value}", role=role).token
            headers[role] = {"Authorization": f"Bearer {token}"}
    return headers


@pytest.fixture
def admin(auth_headers: dict[Role, dict[str, str]]) -> dict[str, str]:
    return auth_headers[Role.admin]
