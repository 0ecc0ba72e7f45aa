"""Commands over HTTP that are refused before reaching a vehicle: role, control, airspace, payload, link."""

from __future__ import annotations

import pytest

from tests.api.test_missions_support import HOSPITAL, free_udp_ports, running_service


@pytest.fixture
async def svc(tmp_path):
    async with running_service(tmp_path) as service:
        assert (await service.post("root", "/api/v1/zones", HOSPITAL)).status_code == 201
        await service.add_vehicle(sysid=1, port=free_udp_ports(1))
        yield service


async def _cmd(svc, command, params=None, user="alice"):
    return await svc.post(user, "/api/v1/vehicles/1/commands", {"command": command, "params": params or {}})


async def test_commands_need_a_pilot_role_and_control(svc):
    r = await _cmd(svc, "arm", user="olga")
    assert r.status_code == 403
    r = await _cmd(svc, "arm")
    assert r.status_code == 403 and "take control of vehicle 1 first" in r.json()["error"]["message"]
    await svc.post("bob", "/api/v1/vehicles/1/control")
    r = await _cmd(svc, "hold")
    assert r.status_code == 403 and "controlled by bob" in r.json()["error"]["message"]


async def test_moving_commands_without_telemetry_are_refused_naming_what_is_missing(svc):
    await svc.post("alice", "/api/v1/vehicles/1/control")
    # the vehicle has never reported: no position to check the leg from, no charge to check the battery
    r = await _cmd(svc, "goto", {"lat": 39.8210, "lon": 109.9810, "alt_m": 60})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "vehicle_unavailable"
    assert "not connected" in err["message"] and "reports no position" in err["message"]
    assert "reports no battery charge" in err["message"]
    r = await _cmd(svc, "orbit", {"lat": 39.8200, "lon": 109.9885, "alt_m": 60, "radius_m": 100})
    assert r.status_code == 409 and "no position" in r.json()["error"]["message"]
    # above the ceiling is named as such, even without a position to judge the leg from
    r = await _cmd(svc, "goto", {"lat": 39.8210, "lon": 109.9810, "alt_m": 350})
    assert "350 m up is above the 120 m ceiling" in r.json()["error"]["message"]
    audit = (await svc.get("root", "/api/v1/audit?limit=100")).json()["items"]
    refused = [e for e in audit if e["action"] == "command.goto.refused"]
    assert refused and refused[0]["actor"] == "alice"
    # hold, return and land need no readings: the link decides (not connected here)
    r = await _cmd(svc, "hold")
    assert r.status_code == 409 and r.json()["error"]["code"] == "vehicle_unavailable"


async def test_bad_params_and_unknown_payload(svc):
    await svc.post("alice", "/api/v1/vehicles/1/control")
    r = await _cmd(svc, "goto", {"lat": 123, "lon": 109.98, "alt_m": 60})
    assert r.status_code == 422 and "lat" in r.json()["error"]["message"]
    r = await _cmd(svc, "fly_loop")
    assert r.status_code == 422
    r = await _cmd(svc, "payload", {"name": "siren"})
    assert r.status_code == 409 and "no actuator for 'siren'" in r.json()["error"]["message"]
    r = await _cmd(svc, "land")
    assert r.status_code == 409 and "not connected" in r.json()["error"]["message"]
