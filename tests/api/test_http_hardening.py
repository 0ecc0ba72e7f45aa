"""The HTTP surface: security headers on every response, oversized and malformed bodies refused with a
reason, static files never served from outside their folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.middleware import panel_csp, tile_source
from tests.api.conftest import make_settings

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for path, status in (("/", 200), ("/api/v1/health", 200), ("/api/v1/vehicles", 401), ("/nope", 404)):
        r = await client.get(path)
        assert r.status_code == status, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert (await client.get("/api/v1/health")).headers["cache-control"] == "no-store"


async def test_the_tile_server_is_the_only_foreign_image_source(db_url: str) -> None:
    assert tile_source("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    assert tile_source("http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png") == "http://10.0.0.5:8080"
    assert tile_source("") is None and tile_source("javascript:alert(1)") is None
    assert "img-src 'self' data: blob: http://tiles.local;" in panel_csp(
        tile_url="http://tiles.local/{z}/{x}/{y}"
    )


async def test_oversized_bodies_are_413_declared_or_streamed(db_url: str) -> None:
    app = create_app(make_settings(db_url, max_body_bytes=4096))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        big = b'{"username": "' + b"a" * 10_000 + b'", "password": "x"}'
        r = await client.post("/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"] == {
            "code": "payload_too_large",
            "message": f"request body of {len(big)} bytes is over the limit of 4096 bytes",
        }
        assert "content-security-policy" in r.headers

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post(
            "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = await client.post("/api/v1/auth/login", json={"username": "u", "password": "p"})
        assert r.status_code == 401  # a body under the limit goes through


async def test_malformed_and_hostile_json_gets_a_reason_not_a_crash(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = {"Content-Type": "application/json"}
    for body in (
        b"{not json",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"username": "\\u0000", "password": "x"}',
        b"\xff\xfe",
    ):
        r = await client.post("/api/v1/auth/login", content=body, headers=headers)
        assert r.status_code in (400, 422), (body[:20], r.status_code, r.text[:200])
        assert r.json()["error"]["code"] in ("bad_request", "validation_error")


async def test_static_files_never_come_from_outside_their_folder(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/../../api/settings.py",
        "/static/%2e%2e/%2e%2e/api/settings.py",
        "/static/..%2f..%2fapi%2fsettings.py",
        "/static/leaflet/../../../../../../etc/passwd",
        "/static/leaflet/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
    ):
        r = await client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "root:" not in r.text and "BaseSettings" not in r.text
    assert (await client.get("/static/js/api.js")).status_code == 200
