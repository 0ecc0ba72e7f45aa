"""Property-based requests generated from the whole OpenAPI spec: no 5xx from any endpoint.

Schemathesis generates the cases from the app's own schema; each is sent through one running app (lifespan up,
admin token) and must get a non-5xx answer in the common error shape. Bounded: a few examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings

from api.app import create_app
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope
from tests.api.conftest import make_settings
from tests.conftest_db import private_pg_schema
from tests.support.error_codes import problems

_spec_app = create_app(make_settings("sqlite://"))
schema = (
    schemathesis.openapi.from_dict(_spec_app.openapi())
    # Logging out or revoking would disable the token the fuzzer itself uses.
    .exclude(path_regex=r"^/api/v1/auth/logout$")
    .exclude(path_regex=r"^/api/v1/tokens/\{token_id\}$", method="DELETE")
)


class FuzzClient:
    """Sends requests to one running app whose lifespan lives in a portal thread's event loop."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.portal, self.client, self.headers = portal, client, headers

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        """Send a requests-style kwargs dict (what schemathesis serialises a case to)."""
        data = kwargs.pop("data", None)
        if isinstance(data, (bytes, str)):
            kwargs["content"] = data
        elif data is not None:
            kwargs["data"] = data
        cookies = kwargs.pop("cookies", None)
        if cookies:
            headers = dict(kwargs.get("headers") or {})
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            kwargs["headers"] = headers
        for unused in ("timeout", "verify", "allow_redirects", "cert", "proxies", "stream"):
            kwargs.pop(unused, None)
        return self.portal.call(lambda: self.client.request(**kwargs))


BASE_URL = "http://testserver"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database for the whole module: a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'skywarden.db'}"
        return
    with private_pg_schema("fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_client(fuzz_db_url: str) -> Iterator[FuzzClient]:
    # registry_poll_s=60: the fleet manager must not try to open fuzzed connection URLs during the test.
    app = create_app(make_settings(fuzz_db_url, registry_poll_s=60))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    http = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        portal.wrap_async_context_manager(http) as client,
    ):
        with session_scope(app.state.engine) as session:
            token = auth.issue_token(session=session, name="fuzz", role=Role.admin).token
        yield FuzzClient(portal, client, {"Authorization": f"Bearer {token}"})


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case: schemathesis.Case, fuzz_client: FuzzClient) -> None:
    response = fuzz_client.send(
        case.as_transport_kwargs(base_url="http://testserver", headers=fuzz_client.headers)
    )
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    )
    if response.status_code >= 400 and response.status_code != 405:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        # Every answer's codes are ones the panel words in English and Chinese (tests/support/error_codes.py).
        assert not problems(response.json()), (case.method, case.formatted_path, problems(response.json()))
