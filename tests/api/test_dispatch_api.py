"""Dispatch over HTTP: candidates with reasons, metrics, wind, coverage gaps; with no vehicles connected."""

from __future__ import annotations

import pytest

from tests.integration.test_dispatch_support import dispatch_service

pytestmark = pytest.mark.timeout(30)
HOSPITAL = {
    "name": "hospital helipad",
    "kind": "no_fly",
    "shape": {"type": "Circle", "center": [109.9870, 39.8200], "radius_m": 150},
    "floor_m": 0,
    "ceiling_m": 300,
}


@pytest.fixture
async def svc(tmp_path):
    async with dispatch_service(tmp_path, docks=[], zones=[HOSPITAL]) as service:
        yield service


async def test_a_point_inside_a_no_fly_zone_is_explained(svc):
    r = await svc.get("olga", "/api/v1/dispatch/candidates?lat=39.8200&lon=109.9870")
    assert r.status_code == 200, r.text
    assert r.json()["chosen_vehicle_id"] is None
    assert "inside no-fly zone 'hospital helipad'" in r.json()["explanation"]


async def test_bad_candidate_query_is_422_naming_it(svc):
    r = await svc.get("olga", "/api/v1/dispatch/candidates?lat=95&lon=109.98")
    assert r.status_code == 422 and "lat" in str(r.json()["error"])
    r = await svc.get("olga", "/api/v1/dispatch/candidates?lat=39.8&lon=109.98&alt_m=500")
    assert r.status_code == 422


async def test_metrics_without_incidents_are_empty(svc):
    m = (await svc.get("olga", "/api/v1/dispatch/metrics")).json()
    assert m["incidents"] == 0 and m["on_scene"] == {"count": 0, "p50_s": None, "p90_s": None}


async def test_wind_is_set_by_dispatchers_only_and_used(svc):
    assert (await svc.get("olga", "/api/v1/dispatch/wind")).json() == {"speed_m_s": 0.0, "from_deg": 0.0}
    r = await svc.client.put(
        "/api/v1/dispatch/wind", json={"speed_m_s": 6, "from_deg": 270}, headers=svc.auth("olga")
    )
    assert r.status_code == 403
    r = await svc.client.put(
        "/api/v1/dispatch/wind", json={"speed_m_s": 6, "from_deg": 270}, headers=svc.auth("dan")
    )
    assert r.status_code == 200
    assert svc.runtime.dispatcher.wind.speed_m_s == 6.0 and svc.runtime.dispatcher.wind.from_deg == 270.0
    r = await svc.client.put(
        "/api/v1/dispatch/wind", json={"speed_m_s": 6, "from_deg": 400}, headers=svc.auth("dan")
    )
    assert r.status_code == 422


async def test_gaps_and_docks_start_empty(svc):
    assert (await svc.get("olga", "/api/v1/dispatch/coverage-gaps")).json()["total"] == 0
    assert (await svc.get("olga", "/api/v1/dispatch/docks")).json() == []
