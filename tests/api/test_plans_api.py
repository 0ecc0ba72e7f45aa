"""POST /plans/preview: path, metrics, violations and items of a plan, judged against the live airspace."""

from __future__ import annotations

import pytest

from tests.api.test_missions_support import HOSPITAL, free_udp_ports, running_service

BLOCK = {
    "type": "Polygon",
    "coordinates": [
        [[109.978, 39.818], [109.992, 39.818], [109.992, 39.822], [109.978, 39.822], [109.978, 39.818]]
    ],
}


@pytest.fixture
async def svc(tmp_path):
    async with running_service(tmp_path) as service:
        assert (await service.post("root", "/api/v1/zones", HOSPITAL)).status_code == 201
        await service.add_vehicle(sysid=1, port=free_udp_ports(1))
        yield service


async def test_preview_avoids_active_zones_and_stores_nothing(svc):
    body = {"kind": "sweep", "geometry": BLOCK, "params": {"swath_m": 80}}
    r = await svc.post("dan", "/api/v1/plans/preview?vehicle_id=1", body)
    assert r.status_code == 200, r.text
    pv = r.json()
    assert pv["path"]["type"] == "LineString" and pv["violations"] == []
    assert pv["metrics"]["coverage"] > 0.8 and pv["metrics"]["length_m"] > 0
    assert pv["items"][0]["kind"] == "takeoff" and pv["items"][-1]["kind"] == "return"
    assert (await svc.get("dan", "/api/v1/missions")).json()["total"] == 0


async def test_preview_reports_a_crossing_and_an_expired_zone_no_longer_counts(svc):
    line = {"type": "LineString", "coordinates": [[109.9840, 39.8200], [109.9900, 39.8200]]}
    body = {"kind": "custom", "geometry": line}
    r = await svc.post("alice", "/api/v1/plans/preview", body)
    assert r.status_code == 200
    assert [v["kind"] for v in r.json()["violations"]] == ["nofly"]
    expired = {
        **HOSPITAL,
        "name": "old",
        "active_until": "2020-01-01T00:00:00Z",
        "shape": {"type": "Circle", "center": [109.9780, 39.8200], "radius_m": 100},
    }
    assert (await svc.post("root", "/api/v1/zones", expired)).status_code == 201
    west = {
        "kind": "custom",
        "geometry": {"type": "LineString", "coordinates": [[109.976, 39.82], [109.980, 39.82]]},
    }
    r = await svc.post("alice", "/api/v1/plans/preview", west)
    assert r.status_code == 200 and r.json()["violations"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "sweep", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}},
        {"kind": "sweep", "geometry": {"type": "Polygon", "coordinates": "nope"}},
        {"kind": "custom", "geometry": {"type": "LineString", "coordinates": [[200, 0], [0, 0]]}},
        {"kind": "custom", "geometry": {}},
        {"kind": "custom", "geometry": {"type": "LineString", "coordinates": []}},
        {
            "kind": "orbit",
            "geometry": {"type": "Point", "coordinates": [109.98, 39.82]},
            "params": {"radius_m": "x"},
        },
        {"kind": "teleport", "geometry": BLOCK},
    ],
)
async def test_bad_plans_are_422_with_a_reason(svc, body):
    r = await svc.post("alice", "/api/v1/plans/preview", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"]


async def test_observers_cannot_plan(svc):
    r = await svc.post("olga", "/api/v1/plans/preview", {"kind": "sweep", "geometry": BLOCK})
    assert r.status_code == 403
