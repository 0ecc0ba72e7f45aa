"""The whole mission lifecycle over HTTP against a simulated vehicle flown through real MAVSDK."""

from __future__ import annotations

import asyncio
import time

import pytest

from sim import SimFleet
from tests.api.test_missions_support import HOME, HOSPITAL, free_udp_ports, running_service

pytestmark = pytest.mark.timeout(60)

SPEED = 20.0  # sim time factor
# A 250 x 160 m block just east of home, clear of the hospital helipad.
BLOCK = {
    "type": "Polygon",
    "coordinates": [
        [
            [109.9805, 39.8195],
            [109.9834, 39.8195],
            [109.9834, 39.8209],
            [109.9805, 39.8209],
            [109.9805, 39.8195],
        ]
    ],
}
THROUGH_HOSPITAL = {"type": "LineString", "coordinates": [[109.9840, 39.8200], [109.9900, 39.8200]]}
# A small no-fly zone ~90 m south of the block: not on the path, but inside the operating area the
# geofence covers, so it goes to the vehicle as an exclusion.
SUBSTATION = {
    "name": "substation",
    "kind": "no_fly",
    "shape": {"type": "Circle", "center": [109.9820, 39.8187], "radius_m": 30},
}


async def _until(fn, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def flying(tmp_path):
    port = free_udp_ports(1)
    async with (
        SimFleet(count=1, base_port=port, speed=SPEED, home=(HOME[0], HOME[1], 1100.0)) as fleet,
        running_service(tmp_path) as svc,
    ):
        for zone in (HOSPITAL, SUBSTATION):
            assert (await svc.post("root", "/api/v1/zones", zone)).status_code == 201
        await svc.add_vehicle(sysid=1, port=port)
        link = await svc.runtime.fleet.wait_link(1, timeout_s=15)
        await link.wait_ready(timeout_s=15)
        yield svc, fleet.vehicles[0]


async def _state(svc, mid):
    return (await svc.get("olga", f"/api/v1/missions/{mid}")).json()["state"]


async def test_sweep_mission_from_create_to_completed_with_events_and_payload(flying):
    svc, vehicle = flying
    body = {
        "name": "east block sweep",
        "vehicle_id": 1,
        "plan": {
            "kind": "sweep",
            "geometry": BLOCK,
            "params": {"swath_m": 60, "alt_m": 40, "payload_on": ["spotlight"]},
        },
    }
    r = await svc.post("alice", "/api/v1/missions", body)
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active"
    # what the vehicle holds is what was validated, with the hospital as an exclusion fence
    uploaded = vehicle.mission_items()
    assert len(uploaded) == len(r.json()["items"])
    areas = vehicle.fence.areas
    inclusion = [a for a in areas if a.inclusion]
    exclusion = [a for a in areas if not a.inclusion]
    assert len(inclusion) == 1 and len(inclusion[0].polygon_latlon) >= 3
    assert [round(a.radius_m) for a in exclusion] == [30]  # the substation; the helipad is outside the area
    assert exclusion[0].centre_latlon == pytest.approx((39.8187, 109.9820), abs=1e-5)
    await _until(lambda: _equal(_state(svc, mid), "completed"), 45, "the mission to complete")
    events = (await svc.get("olga", f"/api/v1/missions/{mid}/events")).json()["items"]
    steps = [(e["from_state"], e["to_state"], e["actor"]) for e in events]
    assert steps == [
        ("draft", "draft", "alice"),
        ("draft", "validated", "alice"),
        ("validated", "uploading", "alice"),
        ("uploading", "ready", "system"),
        ("ready", "active", "alice"),
        ("active", "returning", "vehicle"),
        ("returning", "completed", "vehicle"),
    ]
    assert all(e["reason"] for e in events)
    state = vehicle.state
    assert not state.armed and state.landed_state == "on_ground"
    spot = [e for e in vehicle.payload_events if e.index == 2]
    assert [e.value for e in spot] == [1.0, -1.0] and spot[0].source == "mission"
    mission = (await svc.get("olga", f"/api/v1/missions/{mid}")).json()
    assert mission["progress_total"] == len(uploaded) and mission["ended_at"]


async def _equal(coro, expected):
    return (await coro) == expected


async def test_plan_crossing_a_no_fly_zone_never_reaches_the_vehicle(flying):
    svc, vehicle = flying
    body = {"name": "bad", "vehicle_id": 1, "plan": {"kind": "custom", "geometry": THROUGH_HOSPITAL}}
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    r = await svc.post("alice", f"/api/v1/missions/{mid}/validate")
    assert r.status_code == 422 and "hospital helipad" in r.json()["error"]["message"]
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 409
    await asyncio.sleep(0.5)
    assert vehicle.mission_items() == []
    assert not vehicle.state.armed


async def test_pause_resume_and_return_home(flying):
    svc, vehicle = flying
    line = {
        "type": "LineString",
        "coordinates": [[109.9805, 39.8200], [109.9830, 39.8215], [109.9800, 39.8220]],
    }
    body = {
        "name": "loop",
        "vehicle_id": 1,
        "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
    }
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    await svc.post("alice", f"/api/v1/missions/{mid}/validate")
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/launch")).json()["state"] == "active"
    await _until(lambda: _airborne(vehicle), 15, "the vehicle to climb")
    r = await svc.post("alice", f"/api/v1/missions/{mid}/pause")
    assert r.status_code == 200 and r.json()["state"] == "paused"
    await _until(lambda: _mode(vehicle, "hold"), 10, "hold mode")
    r = await svc.post("alice", f"/api/v1/missions/{mid}/pause")  # a repeat is harmless
    assert r.status_code == 200 and r.json()["state"] == "paused"
    r = await svc.post("alice", f"/api/v1/missions/{mid}/resume")
    assert r.status_code == 200 and r.json()["state"] == "active"
    await _until(lambda: _mode(vehicle, "mission"), 10, "mission mode")
    r = await svc.post("alice", f"/api/v1/missions/{mid}/return")
    assert r.status_code == 200 and r.json()["state"] == "returning"
    # Brought home by the pilot before its items were done: aborted, not completed.
    await _until(lambda: _equal(_state(svc, mid), "aborted"), 40, "landing")
    events = (await svc.get("olga", f"/api/v1/missions/{mid}/events")).json()["items"]
    assert [e["to_state"] for e in events][-5:] == ["active", "paused", "active", "returning", "aborted"]
    assert "the rest was not flown" in events[-1]["reason"]


async def _airborne(vehicle):
    return vehicle.state.alt_rel_m > 5


async def _mode(vehicle, mode):
    return vehicle.state.mode.lower() == mode


async def test_a_vehicle_refusing_to_arm_leaves_the_mission_ready_to_launch_again(flying):
    svc, vehicle = flying
    line = {"type": "LineString", "coordinates": [[109.9805, 39.8200], [109.9815, 39.8205]]}
    body = {
        "name": "short",
        "vehicle_id": 1,
        "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 20}},
    }
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    vehicle.set_gps_loss(True)  # pre-arm checks fail
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    # Without a position PX4 refuses MISSION: the launch stops there, the vehicle never armed.
    assert r.status_code == 503 and "start mission failed" in r.json()["error"]["message"]
    mission = (await svc.get("alice", f"/api/v1/missions/{mid}")).json()
    assert mission["state"] == "validated" and "launch again" in mission["reason"]
    assert not vehicle.state.armed
    vehicle.set_gps_loss(False)
    link = svc.runtime.fleet.link(1)
    await link.wait_ready(timeout_s=15)
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 200 and r.json()["state"] == "active"
    await _until(lambda: _equal(_state(svc, mid), "completed"), 40, "the mission to complete")
