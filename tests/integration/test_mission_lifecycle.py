"""The whole mission lifecycle over HTTP against a vehicle flown through real MAVSDK: sim/ and PX4 SITL.

The scenarios run on both (``flying`` is parametrised): what only the simulator can show (the stored mission
and fence, payload events, fault injection) is checked on sim/ alone; everything else from telemetry.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.api.test_missions_support import HOSPITAL, running_service
from tests.support.vehicles import SIM, VEHICLE_KINDS, speed_for, wall_s

SPEED = 20.0  # sim time factor
# The sweep is ~1 km and ~4 min of PX4's own time at its 5 m/s cruise: the wait and the limit follow that.
pytestmark = pytest.mark.timeout(wall_s(speed_for("px4"), 420.0, slack_s=60.0))
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


async def _flying(tmp_path, kind):
    async with running_service(
        tmp_path,
        docks=[(0.0, 0.0)],
        vehicles=kind,
        speed=speed_for(kind, SPEED),
        zones=[HOSPITAL, SUBSTATION],
    ) as svc:
        yield svc, (svc.vehicle(1) if kind == SIM else None)


@pytest.fixture(params=VEHICLE_KINDS)
async def flying(tmp_path, request):
    """The service with one vehicle at home: sim/ or a fresh PX4 (the vehicle is None on PX4)."""
    async for pair in _flying(tmp_path, request.param):
        yield pair


@pytest.fixture
async def sim_flying(tmp_path):
    """As ``flying``, on sim/ only (fault injection)."""
    async for pair in _flying(tmp_path, SIM):
        yield pair


def _snap(svc):
    return svc.runtime.fleet.latest(1)


def _wait(svc, vehicle_s):
    return wall_s(svc.speed, vehicle_s)


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
    # Straight after the upload, on a vehicle that just booted: PX4 refuses MISSION for a moment then.
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active"
    assert _snap(svc).in_air, "active before the vehicle was seen in the air"
    # MISSION taken while disarmed, then armed without leaving it (PX4 takes off at once): never an armed
    # vehicle waiting on its dock for a mode switch (PX4 refuses MISSION, then auto-disarms).
    sent = [(e["action"], e["details"]) for e in await svc.audit() if e["action"].startswith("cmd.")]
    ok = [a for a, _ in sent if not a.endswith(".failed")]
    first_arm = ok.index("cmd.arm")
    assert ok[:first_arm] == ["cmd.upload_geofence", "cmd.upload_mission", "cmd.start_mission"], sent
    assert all(d.get("keep_mode") for a, d in sent if a.startswith("cmd.arm")), sent
    items = r.json()["items"]
    if vehicle is not None:
        # what the vehicle holds is what was validated, with the hospital as an exclusion fence
        uploaded = vehicle.mission_items()
        assert len(uploaded) == len(items)
        areas = vehicle.fence.areas
        inclusion = [a for a in areas if a.inclusion]
        exclusion = [a for a in areas if not a.inclusion]
        assert len(inclusion) == 1 and len(inclusion[0].polygon_latlon) >= 3
        assert [round(a.radius_m) for a in exclusion] == [30]  # the substation; the helipad is outside
        assert exclusion[0].centre_latlon == pytest.approx((39.8187, 109.9820), abs=1e-5)
    flown = r.json()["metrics"]["length_m"] if "length_m" in (r.json().get("metrics") or {}) else 1500.0
    await _until(
        lambda: _equal(_state(svc, mid), "completed"), _wait(svc, 360 + flown / 5), "the mission to complete"
    )
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
    snap = _snap(svc)
    assert not snap.armed and not snap.in_air
    if vehicle is not None:
        spot = [e for e in vehicle.payload_events if e.index == 2]
        assert [e.value for e in spot] == [1.0, -1.0] and spot[0].source == "mission"
    mission = (await svc.get("olga", f"/api/v1/missions/{mid}")).json()
    assert mission["progress_total"] == len(items) and mission["ended_at"]


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
    if vehicle is not None:
        assert vehicle.mission_items() == []
    assert not _snap(svc).armed


async def test_pause_resume_and_return_home(flying):
    svc, _ = flying
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
    await _until(lambda: _airborne(svc), _wait(svc, 20), "the vehicle to climb")
    r = await svc.post("alice", f"/api/v1/missions/{mid}/pause")
    assert r.status_code == 200 and r.json()["state"] == "paused"
    await _until(lambda: _mode(svc, "hold"), _wait(svc, 3), "hold mode")
    r = await svc.post("alice", f"/api/v1/missions/{mid}/pause")  # a repeat is harmless
    assert r.status_code == 200 and r.json()["state"] == "paused"
    r = await svc.post("alice", f"/api/v1/missions/{mid}/resume")
    assert r.status_code == 200 and r.json()["state"] == "active"
    await _until(lambda: _mode(svc, "mission"), _wait(svc, 3), "mission mode")
    r = await svc.post("alice", f"/api/v1/missions/{mid}/return")
    assert r.status_code == 200 and r.json()["state"] == "returning"
    # Brought home by the pilot before its items were done: aborted, not completed (PX4 then reports its
    # progress as N of N once landed; the mission keeps the item it was at).
    await _until(lambda: _equal(_state(svc, mid), "aborted"), _wait(svc, 180), "landing")
    events = (await svc.get("olga", f"/api/v1/missions/{mid}/events")).json()["items"]
    assert [e["to_state"] for e in events][-5:] == ["active", "paused", "active", "returning", "aborted"]
    assert "the rest was not flown" in events[-1]["reason"]


async def _airborne(svc):
    snap = _snap(svc)
    return snap is not None and snap.in_air and (snap.alt_rel_m or 0.0) > 5


async def _mode(svc, mode):
    snap = _snap(svc)
    return snap is not None and snap.mode.value == mode


async def test_a_vehicle_refusing_to_arm_leaves_the_mission_ready_to_launch_again(sim_flying):
    svc, vehicle = sim_flying
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
