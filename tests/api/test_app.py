"""App-level behaviour: the error body everywhere, settings sources, the fleet file on start, health, docs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import SETTINGS_FILE_ENV, Settings
from tests.api.conftest import make_settings
from tests.mission.test_fleet import FLEET_YAML


async def test_error_body_shape_everywhere(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.get("/api/v1/nope", headers=admin)
    assert r.status_code == 404 and r.json() == {
        "error": {
            "code": "not_found",
            "message": "Not Found",
            "message_code": "not_found",
            "message_params": {},
        }
    }
    r = await client.put("/api/v1/vehicles", headers=admin)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = await client.post("/api/v1/zones", json={"name": "x"}, headers=admin)
    err = r.json()["error"]
    assert r.status_code == 422 and err["code"] == "validation_error"
    assert err["where"] == "body.kind" and "body.shape: Field required" in err["message"]


async def test_health_and_docs_are_off_by_default(client: httpx.AsyncClient) -> None:
    health = (await client.get("/api/v1/health")).json()
    assert health["status"] == "ok" and health["runtime"] is True
    assert (await client.get("/api/v1/openapi.json")).status_code == 404
    assert (await client.get("/api/v1/docs")).status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_docs_when_enabled(db_url: str) -> None:
    app = create_app(make_settings(db_url, docs_enabled=True))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        spec = (await client.get("/api/v1/openapi.json")).json()
        assert "/api/v1/vehicles" in spec["paths"] and "/api/v1/missions" in spec["paths"]
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        docs = await client.get("/api/v1/docs")
        assert docs.status_code == 200
        # Swagger UI is inline script from a CDN: its page gets its own policy, the panel's stays strict.
        assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        assert "'unsafe-inline'" not in (await client.get("/")).headers["content-security-policy"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_fleet_file_is_registered_on_start(db_url: str, tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.yaml"
    # enabled: false keeps the fleet manager from binding the vehicles' ports in this test.
    fleet_file.write_text(FLEET_YAML.replace("    sysid:", "    enabled: false\n    sysid:"))
    app = create_app(make_settings(db_url, fleet_file=fleet_file))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        from mission.auth import service as auth
        from mission.db import session_scope

        with session_scope(app.state.engine) as session:
            token = auth.issue_token(session=session, name="t", role="observer").token
        r = await client.get("/api/v1/vehicles", headers={"Authorization": f"Bearer {token}"})
    assert [v["name"] for v in r.json()["items"]] == ["hawk-1", "hawk-2"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_bad_fleet_file_stops_the_start_with_the_reason(db_url: str, tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(json.dumps([{"name": "x", "sysid": 1}]))
    app: FastAPI = create_app(make_settings(db_url, fleet_file=fleet_file))
    with pytest.raises(ValueError, match=r"vehicle #0 \(x\): connection_url: Field required"):
        async with app.router.lifespan_context(app):
            pass


def test_settings_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "skywarden.toml"
    toml.write_text('port = 9001\ntelemetry_hz = 2.5\nmqtt_url = "mqtt://127.0.0.1:1883"\n')
    monkeypatch.setenv(SETTINGS_FILE_ENV, str(toml))
    monkeypatch.setenv("SKYWARDEN_PORT", "9002")  # the environment wins over the file
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.port, settings.telemetry_hz, settings.mqtt_url) == (9002, 2.5, "mqtt://127.0.0.1:1883")
    monkeypatch.setenv("SKYWARDEN_DATABASE_URL", "mysql://x")
    with pytest.raises(ValueError, match="database_url must be sqlite"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv(SETTINGS_FILE_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        Settings(_env_file=None)  # type: ignore[call-arg]
