"""The panel's files over HTTP: index, modules, Leaflet from the xstatic package, config; nothing outside."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from api.settings import Settings


def _client(settings: Settings) -> httpx.AsyncClient:
    # No lifespan: serving files needs neither the database nor vehicles.
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://skywarden.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(Settings(tile_url="", database_url="sqlite://")) as c:
        yield c


async def test_index_and_modules_are_served(client: httpx.AsyncClient) -> None:
    index = await client.get("/")
    assert index.status_code == 200
    assert '<script type="module" src="/static/js/main.js">' in index.text
    main = await client.get("/static/js/main.js")
    assert main.status_code == 200
    assert main.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/static/panel.css")).headers["content-type"].startswith("text/css")


async def test_leaflet_comes_from_the_xstatic_package(client: httpx.AsyncClient) -> None:
    esm = await client.get("/static/leaflet/leaflet-src.esm.js")
    assert esm.status_code == 200
    assert "export {" in esm.text
    assert (await client.get("/static/leaflet/leaflet.css")).status_code == 200


async def test_config_tells_the_tile_url(client: httpx.AsyncClient) -> None:
    assert (await client.get("/panel/config.json")).json()["tile_url"] == ""
    url = "https://tiles.example/{z}/{x}/{y}.png"
    async with _client(Settings(tile_url=url, database_url="sqlite://")) as with_tiles:
        assert (await with_tiles.get("/panel/config.json")).json()["tile_url"] == url


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/leaflet/..%2f..%2f__init__.py",
    ],
)
async def test_nothing_outside_the_static_dirs(client: httpx.AsyncClient, path: str) -> None:
    res = await client.get(path)
    assert res.status_code == 404
    assert res.json()["error"]["code"] == "not_found"


async def test_a_missing_file_is_a_clear_404(client: httpx.AsyncClient) -> None:
    res = await client.get("/static/js/nope.js")
    assert res.status_code == 404
    assert "nope.js" in res.json()["error"]["message"]
