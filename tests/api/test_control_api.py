"""Control authority over HTTP: one pilot at a time, explicit audited handoff, admin force."""

from __future__ import annotations

import pytest

from tests.api.test_missions_support import free_udp_ports, running_service


@pytest.fixture
async def svc(tmp_path):
    async with running_service(tmp_path) as service:
        await service.add_vehicle(sysid=1, port=free_udp_ports(1))
        yield service


async def test_one_pilot_holds_a_vehicle_and_hands_it_off_explicitly(svc):
    r = await svc.get("olga", "/api/v1/vehicles/1/control")
    assert r.status_code == 200 and r.json()["holder"] is None
    r = await svc.post("alice", "/api/v1/vehicles/1/control")
    assert r.status_code == 200 and r.json()["holder"] == "alice"
    assert (
        await svc.post("alice", "/api/v1/vehicles/1/control")
    ).status_code == 200  # taking it again is fine
    r = await svc.post("bob", "/api/v1/vehicles/1/control")
    assert r.status_code == 409 and "controlled by alice" in r.json()["error"]["message"]
    r = await svc.post("bob", "/api/v1/vehicles/1/control/handoff", {"to_username": "bob"})
    assert r.status_code == 403 and "only the holder" in r.json()["error"]["message"]
    r = await svc.post("alice", "/api/v1/vehicles/1/control/handoff", {"to_username": "olga"})
    assert r.status_code == 409 and "role observer" in r.json()["error"]["message"]
    r = await svc.post("alice", "/api/v1/vehicles/1/control/handoff", {"to_username": "nobody"})
    assert r.status_code == 409 and "does not exist" in r.json()["error"]["message"]
    r = await svc.post("alice", "/api/v1/vehicles/1/control/handoff", {"to_username": "bob"})
    assert r.status_code == 200 and r.json()["holder"] == "bob"
    r = await svc.delete("alice", "/api/v1/vehicles/1/control")
    assert r.status_code == 403 and "controlled by bob" in r.json()["error"]["message"]
    r = await svc.delete("bob", "/api/v1/vehicles/1/control")
    assert r.status_code == 200 and r.json()["holder"] is None
    audit = (await svc.get("root", "/api/v1/audit?limit=100")).json()["items"]
    trail = [(e["action"], e["actor"], e["details"]) for e in audit if e["action"].startswith("control.")]
    assert ("control.take", "alice", {}) in trail
    assert ("control.handoff", "alice", {"from": "alice", "to": "bob"}) in trail
    assert ("control.release", "bob", {"holder": "bob"}) in trail


async def test_admin_can_force_take_and_it_is_audited(svc):
    await svc.post("alice", "/api/v1/vehicles/1/control")
    r = await svc.post("root", "/api/v1/vehicles/1/control")
    assert r.status_code == 409 and "force=true" in r.json()["error"]["message"]
    r = await svc.post("root", "/api/v1/vehicles/1/control?force=true")
    assert r.status_code == 200 and r.json()["holder"] == "root"
    audit = (await svc.get("root", "/api/v1/audit?limit=100")).json()["items"]
    assert any(e["action"] == "control.take" and e["details"] == {"forced_from": "alice"} for e in audit)
    # a pilot cannot force
    r = await svc.post("bob", "/api/v1/vehicles/1/control?force=true")
    assert r.status_code == 409


async def test_roles_and_unknown_vehicle(svc):
    for user in ("olga", "dan"):
        r = await svc.post(user, "/api/v1/vehicles/1/control")
        assert r.status_code == 403, user
    r = await svc.post("alice", "/api/v1/vehicles/77/control")
    assert r.status_code == 404 and "vehicle 77" in r.json()["error"]["message"]
    r = await svc.client.post("/api/v1/vehicles/1/control")
    assert r.status_code == 401
