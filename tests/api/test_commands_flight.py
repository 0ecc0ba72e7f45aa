"""Commands over HTTP flown by a sim vehicle through MAVSDK: allowed ones fly, refused ones never leave."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from sim import SimFleet
from tests.api.test_missions_support import HOME, HOSPITAL, free_udp_ports, running_service

pytestmark = pytest.mark.timeout(60)

DO_REPOSITION = 192
DO_ORBIT = 34
# The hospital circle's western edge (150 m from its centre at 109.9870).
HOSPITAL_EDGE_LON = 109.9870 - 150 / (111_320.0 * math.cos(math.radians(39.82)))
# An event zone 500 m north of home, 40-80 m up.
BRIDGE = {
    "name": "bridge",
    "kind": "event",
    "shape": {"type": "Circle", "center": [HOME[1], 39.8245], "radius_m": 100},
    "floor_m": 40,
    "ceiling_m": 80,
}


async def _until(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def flying(tmp_path):
    port = free_udp_ports(1)
    async with (
        SimFleet(count=1, base_port=port, speed=10.0, home=(HOME[0], HOME[1], 1100.0)) as fleet,
        running_service(tmp_path) as svc,
    ):
        assert (await svc.post("root", "/api/v1/zones", HOSPITAL)).status_code == 201
        await svc.add_vehicle(sysid=1, port=port)
        link = await svc.runtime.fleet.wait_link(1, timeout_s=15)
        await link.wait_ready(timeout_s=15)
        assert (await svc.post("alice", "/api/v1/vehicles/1/control")).status_code == 200
        yield svc, fleet.vehicles[0]


async def _cmd(svc, command, **params):
    return await svc.post("alice", "/api/v1/vehicles/1/commands", {"command": command, "params": params})


def _sent(vehicle, command_id):
    return sum(1 for cmd, _ in vehicle.commands_received if cmd == command_id)


async def test_fly_by_commands_and_refusals_never_reach_the_vehicle(flying):
    svc, vehicle = flying
    assert (await _cmd(svc, "arm")).status_code == 200
    r = await _cmd(svc, "takeoff", alt_m=25)
    assert r.status_code == 200, r.text
    await _until(lambda: vehicle.state.alt_rel_m > 20, 15, "takeoff")
    # into the hospital helipad: refused with the reason, nothing sent
    before = _sent(vehicle, DO_REPOSITION)
    r = await _cmd(svc, "goto", lat=39.8200, lon=109.9870, alt_m=25)
    assert r.status_code == 422 and "hospital helipad" in r.json()["error"]["message"]
    # across it: refused too
    r = await _cmd(svc, "goto", lat=39.8200, lon=109.9920, alt_m=25)
    assert r.status_code == 422 and "enters no-fly zone 'hospital helipad'" in r.json()["error"]["message"]
    # 2 m outside its edge: inside the 20 m clearance
    r = await _cmd(svc, "goto", lat=39.8200, lon=HOSPITAL_EDGE_LON - 0.0000234, alt_m=25)
    message = r.json()["error"]["message"]
    assert r.status_code == 422 and "'hospital helipad' (0-300 m, 20 m clearance)" in message
    # climbing from 25 m to 100 m passes through a 40-80 m zone on the way
    assert (await svc.post("root", "/api/v1/zones", BRIDGE)).status_code == 201
    r = await _cmd(svc, "goto", lat=39.8290, lon=HOME[1], alt_m=100)
    assert r.status_code == 422 and "enters no-fly zone 'bridge'" in r.json()["error"]["message"], r.text
    # above the ceiling
    r = await _cmd(svc, "goto", lat=39.8210, lon=109.9810, alt_m=150)
    assert r.status_code == 422 and "above the 120 m ceiling" in r.json()["error"]["message"]
    await asyncio.sleep(0.3)
    assert _sent(vehicle, DO_REPOSITION) == before
    # a clear target flies
    r = await _cmd(svc, "goto", lat=39.8210, lon=109.9810, alt_m=30)
    assert r.status_code == 200, r.text
    await _until(
        lambda: abs(vehicle.state.lat - 39.8210) < 0.0002 and abs(vehicle.state.lon - 109.9810) < 0.0002,
        20,
        "arrival at the goto target",
    )
    r = await _cmd(svc, "payload", name="spotlight", on=True)
    assert r.status_code == 200 and "actuator 2" in r.json()["message"]
    await _until(
        lambda: any(e.index == 2 and e.source == "command" for e in vehicle.payload_events), 5, "spotlight"
    )
    r = await _cmd(svc, "orbit", lat=39.8215, lon=109.9805, alt_m=30, radius_m=40)
    assert r.status_code == 200, r.text
    await _until(lambda: _sent(vehicle, DO_ORBIT) >= 1, 5, "the orbit command")
    # battery below the reserve: only safe commands
    vehicle.battery_sag(vehicle.state.battery_pct - 15)
    await _until(lambda: (svc.runtime.fleet.latest(1).battery_pct or 100) < 20, 5, "low battery telemetry")
    r = await _cmd(svc, "goto", lat=39.8205, lon=109.9805, alt_m=30)
    assert r.status_code == 422 and "below the 20% reserve" in r.json()["error"]["message"]
    assert (await _cmd(svc, "return")).status_code == 200
    await _until(lambda: not vehicle.state.armed and vehicle.state.alt_rel_m < 1, 30, "landing at home")
    audit = (await svc.get("root", "/api/v1/audit?limit=200")).json()["items"]
    actions = [e["action"] for e in audit if e["actor"] == "alice"]
    for expected in (
        "command.arm",
        "command.takeoff",
        "command.goto",
        "command.goto.refused",
        "cmd.set_actuator",
        "command.orbit",
        "command.return",
    ):
        assert expected in actions


async def test_a_goto_is_flown_at_the_cruise_speed_the_gate_assumed(flying):
    """PX4 (and sim/, held to it) repositions at MPC_XY_CRUISE, 5 m/s; the gate and the ETAs use the
    registry's cruise speed (10 m/s here), so the executor tells the vehicle that speed after each goto."""
    svc, vehicle = flying
    assert (await _cmd(svc, "arm")).status_code == 200
    assert (await _cmd(svc, "takeoff", alt_m=30)).status_code == 200
    await _until(lambda: vehicle.state.alt_rel_m > 25, 20, "takeoff")
    r = await _cmd(svc, "goto", lat=HOME[0] + 0.008, lon=HOME[1], alt_m=30)  # 890 m north
    assert r.status_code == 200, r.text
    fastest = 0.0

    def quick() -> bool:
        nonlocal fastest
        fastest = max(fastest, svc.runtime.fleet.latest(1).ground_speed_m_s or 0.0)
        return fastest >= 9.0

    await _until(quick, 30, "the goto at 10 m/s (PX4's default would be 5)")
    audit = (await svc.get("root", "/api/v1/audit?limit=100")).json()["items"]
    speeds = [e["details"]["speed_m_s"] for e in audit if e["action"] == "cmd.set_speed"]
    assert speeds and speeds[0] == 10.0, speeds


async def test_a_manual_hold_pauses_the_running_mission(flying):
    svc, vehicle = flying
    line = {
        "type": "LineString",
        "coordinates": [[109.9810, 39.8200], [109.9830, 39.8215], [109.9800, 39.8222]],
    }
    body = {
        "name": "loop",
        "vehicle_id": 1,
        "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
    }
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/launch")).json()["state"] == "active"
    await _until(lambda: vehicle.state.alt_rel_m > 5, 15, "climb")
    assert (await _cmd(svc, "hold")).status_code == 200
    mission = (await svc.get("alice", f"/api/v1/missions/{mid}")).json()
    assert mission["state"] == "paused" and mission["reason"] == "manual hold command"
    await _until(lambda: vehicle.state.mode.lower() == "hold", 5, "hold mode")
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/resume")).json()["state"] == "active"
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/abort")).json()["state"] == "aborted"
    await _until(
        lambda: vehicle.state.mode.lower() in ("return", "land"),
        5,
        f"return after abort ({vehicle.state}, {vehicle.commands_received[-3:]})",
    )


async def test_takeoff_inside_an_active_event_area_is_refused(flying):
    svc, vehicle = flying
    event = {
        "name": "concert",
        "kind": "event",
        "shape": {"type": "Circle", "center": [HOME[1], HOME[0]], "radius_m": 300},
        "floor_m": 0,
        "ceiling_m": 120,
    }
    assert (await svc.post("root", "/api/v1/zones", event)).status_code == 201
    assert (await _cmd(svc, "arm")).status_code == 200
    r = await _cmd(svc, "takeoff", alt_m=20)
    assert r.status_code == 422 and "enters no-fly zone 'concert'" in r.json()["error"]["message"]
    await asyncio.sleep(0.5)
    assert vehicle.state.alt_rel_m < 1


async def test_a_hold_the_vehicle_refuses_leaves_the_mission_active(flying):
    svc, vehicle = flying
    line = {"type": "LineString", "coordinates": [[109.9810, 39.8200], [109.9840, 39.8220]]}
    body = {
        "name": "line",
        "vehicle_id": 1,
        "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
    }
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/launch")).json()["state"] == "active"
    await _until(lambda: vehicle.state.alt_rel_m > 5, 15, "climb")
    vehicle.blackout(15.0)  # the hold never reaches the vehicle
    started = time.monotonic()
    r = await _cmd(svc, "hold")
    assert r.status_code == 503, r.text
    mission = (await svc.get("alice", f"/api/v1/missions/{mid}")).json()
    assert mission["state"] == "active", mission  # not marked paused: the vehicle never held
    await asyncio.sleep(max(0.0, 15.5 - (time.monotonic() - started)))
    await _until(lambda: svc.runtime.fleet.latest(1).link_up, 10, "the link back")
    events = (await svc.get("alice", f"/api/v1/missions/{mid}/events")).json()["items"]
    assert "paused" not in [e["to_state"] for e in events]


@pytest.fixture
async def fast(tmp_path):
    port = free_udp_ports(1)
    async with (
        SimFleet(count=1, base_port=port, speed=30.0, home=(HOME[0], HOME[1], 1100.0)) as fleet,
        running_service(tmp_path) as svc,
    ):
        await svc.add_vehicle(sysid=1, port=port)
        link = await svc.runtime.fleet.wait_link(1, timeout_s=15)
        await link.wait_ready(timeout_s=15)
        assert (await svc.post("alice", "/api/v1/vehicles/1/control")).status_code == 200
        yield svc, fleet.vehicles[0]


async def test_return_flies_around_a_zone_on_the_straight_way_home(fast):
    svc, vehicle = fast
    assert (await _cmd(svc, "arm")).status_code == 200
    assert (await _cmd(svc, "takeoff", alt_m=30)).status_code == 200
    await _until(lambda: vehicle.state.alt_rel_m > 25, 15, "takeoff")
    # airborne on direct commands: no mission may be launched on it
    await _until(lambda: svc.runtime.fleet.latest(1).in_air, 10, "in-air telemetry")
    line = {"type": "LineString", "coordinates": [[109.9810, 39.8205], [109.9830, 39.8210]]}
    body = {
        "name": "l",
        "vehicle_id": 1,
        "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
    }
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 409 and "vehicle 1 is airborne" in r.json()["error"]["message"], r.text
    far = (HOME[0], HOME[1] + 0.0050)  # ~430 m east
    assert (await _cmd(svc, "goto", lat=far[0], lon=far[1], alt_m=30)).status_code == 200
    await _until(
        lambda: abs(vehicle.state.lat - far[0]) < 0.0002 and abs(vehicle.state.lon - far[1]) < 0.0002,
        20,
        "arrival east",
    )
    # meanwhile a no-fly zone is declared on the straight line home
    fire = {
        "name": "fire",
        "kind": "no_fly",
        "shape": {"type": "Circle", "center": [HOME[1] + 0.0025, HOME[0]], "radius_m": 60},
        "floor_m": 0,
        "ceiling_m": 300,
    }
    assert (await svc.post("root", "/api/v1/zones", fire)).status_code == 201
    from shapely.geometry import Point

    from mission.airspace.service import circle_polygon

    zone = circle_polygon(lon=HOME[1] + 0.0025, lat=HOME[0], radius_m=60)
    m_per_deg = 111_320.0 * math.cos(math.radians(HOME[0]))
    r = await _cmd(svc, "return")
    assert r.status_code == 200, r.text
    closest_m = math.inf
    deadline = time.monotonic() + 25
    while vehicle.state.armed and time.monotonic() < deadline:
        here = Point(vehicle.state.lon, vehicle.state.lat)
        closest_m = min(closest_m, here.distance(zone) * m_per_deg)
        await asyncio.sleep(0.02)
    assert not vehicle.state.armed, "the vehicle did not land in time"
    assert abs(vehicle.state.lat - HOME[0]) < 0.0003 and abs(vehicle.state.lon - HOME[1]) < 0.0003
    assert closest_m > 5, f"the way home came within {closest_m:.0f} m of the no-fly zone"
