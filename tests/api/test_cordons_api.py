"""Cordons over HTTP without drones: rings from the flee model that grow with time, stations at the road
layer's crossings or evenly spaced, every unmanned station with its reason, refusals and roles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.test_dispatch_support import dispatch_service, offset

pytestmark = pytest.mark.timeout(60)
ROADS = Path(__file__).resolve().parents[2] / "mission" / "cordons" / "demo_roads.geojson"


async def test_rings_grow_and_unmanned_stations_say_why(tmp_path):
    async with dispatch_service(tmp_path, docks=[], speed=20.0) as svc:
        lat, lon = offset(0, 0)
        r = await svc.post(
            "dan", "/api/v1/cordons", {"lat": lat, "lon": lon, "flee_speed_m_s": 2.5, "elapsed_s": 120}
        )
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["radii_m"] == [300.0, 480.0, 750.0] and not c["fixed_radii"]
        assert [sum(1 for s in c["stations"] if s["ring"] == k) for k in range(3)] == [4, 6, 8]
        assert all(s["source"] == "even" and s["reason"] == "no drone available" for s in c["stations"])
        assert c["report"]["total"] == 18 and c["report"]["manned"] == 0
        assert c["report"]["per_ring"]["0"] == {"manned": 0, "total": 4}
        await asyncio.sleep(1.0)  # 20 simulated seconds later the suspect may be farther
        r = await svc.post("dan", f"/api/v1/cordons/{c['id']}/widen")
        assert r.status_code == 200, r.text
        assert r.json()["radii_m"][0] > 300.0
        assert (await svc.post("olga", f"/api/v1/cordons/{c['id']}/widen")).status_code == 403
        assert (await svc.post("dan", f"/api/v1/cordons/{c['id']}/end")).json()["state"] == "ended"
        assert (await svc.post("dan", f"/api/v1/cordons/{c['id']}/end")).status_code == 409
        fixed = {"lat": lat, "lon": lon, "radii_m": [200, 400]}
        r = await svc.post("dan", "/api/v1/cordons", fixed)
        assert r.status_code == 201 and r.json()["fixed_radii"]
        assert (await svc.post("dan", f"/api/v1/cordons/{r.json()['id']}/widen")).status_code == 409
        r = await svc.post("dan", "/api/v1/cordons", {**fixed, "radii_m": [900, 300]})
        assert r.status_code == 422 and "increase" in r.text
        assert (await svc.get("olga", "/api/v1/cordons")).json()["total"] == 2
        assert (await svc.get("olga", "/api/v1/cordons/999")).status_code == 404


async def test_stations_sit_on_the_road_layer(tmp_path):
    async with dispatch_service(tmp_path, docks=[], speed=20.0, road_layer_file=ROADS) as svc:
        lat, lon = offset(300, -200)
        r = await svc.post("dan", "/api/v1/cordons", {"lat": lat, "lon": lon, "radii_m": [600, 1000, 1500]})
        assert r.status_code == 201, r.text
        stations = r.json()["stations"]
        assert stations and all(s["source"] == "road" for s in stations if s["lat"] is not None)
