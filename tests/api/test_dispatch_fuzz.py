"""Property-based requests from the OpenAPI spec against the dispatch endpoints: never a 5xx.

Incidents, dispatch, patrols, security events and payload, through one running app (lifespan, Runtime with
dispatch, admin token); every refusal in the common error shape. Bounded: a few examples per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from tests.api.conftest import make_settings
from tests.api.test_openapi_fuzz import BASE_URL, FuzzClient, fuzz_client, fuzz_db_url  # noqa: F401

pytestmark = pytest.mark.timeout(300)

DISPATCH_PATHS = r"^/api/v1/(incidents|dispatch|patrols|security-events|payload)(/|$)"
schema = schemathesis.openapi.from_dict(create_app(make_settings("sqlite://")).openapi()).include(
    path_regex=DISPATCH_PATHS
)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_dispatch_endpoints_never_fail_with_a_server_error(
    case: schemathesis.Case,
    fuzz_client: FuzzClient,  # noqa: F811  (the shared module-scoped fixture)
) -> None:
    response = fuzz_client.send(case.as_transport_kwargs(base_url=BASE_URL, headers=fuzz_client.headers))
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    )
    if response.status_code >= 400 and response.status_code != 405:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
