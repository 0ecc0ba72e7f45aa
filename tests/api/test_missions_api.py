"""Missions over HTTP without a flying vehicle: creation, the safety gate, refusals with reasons, events."""

from __future__ import annotations

import pytest

from tests import conftest_db
from tests.api.test_missions_support import HOME, HOSPITAL, free_udp_ports, running_service

# A short line east of home, clear of the hospital (its geofence margin reaches the helipad).
CLEAR_LINE = {"type": "LineString", "coordinates": [[109.9810, 39.8205], [109.9840, 39.8195]]}
# A line straight through the hospital helipad.
THROUGH_HOSPITAL = {"type": "LineString", "coordinates": [[109.9840, 39.8200], [109.9900, 39.8200]]}


# These run on SQLite and on PostgreSQL.
db_url = conftest_db.db_url


@pytest.fixture
async def svc(tmp_path, db_url):
    async with running_service(tmp_path, db_url=db_url) as service:
        r = await service.post("root", "/api/v1/zones", HOSPITAL)
        assert r.status_code == 201, r.text
        await service.add_vehicle(sysid=1, port=free_udp_ports(1))
        yield service


async def _create(svc, geometry, *, user="alice", kind="custom", params=None):
    body = {
        "name": "patrol",
        "vehicle_id": 1,
        "plan": {"kind": kind, "geometry": geometry, "params": params or {}},
    }
    return await svc.post(user, "/api/v1/missions", body)


async def test_create_validate_and_events_record_who_and_why(svc):
    r = await _create(svc, CLEAR_LINE)
    assert r.status_code == 201, r.text
    mission = r.json()
    assert mission["state"] == "draft" and mission["created_by"] == "alice"
    assert mission["path"]["type"] == "LineString" and mission["violations"] == []
    r = await svc.post("alice", f"/api/v1/missions/{mission['id']}/validate")
    assert r.status_code == 200, r.text
    validated = r.json()
    assert validated["state"] == "validated"
    kinds = [i["kind"] for i in validated["items"]]
    assert kinds[0] == "takeoff" and kinds[-1] == "return" and "waypoint" in kinds
    fence = validated["geofence"]["shapes"]
    assert fence[0]["kind"] == "polygon" and fence[0]["inclusion"] is True
    assert any(
        s["kind"] == "circle" and not s["inclusion"] for s in fence
    )  # the hospital goes with the mission
    r = await svc.get("olga", f"/api/v1/missions/{mission['id']}/events")
    events = r.json()
    assert r.status_code == 200 and events["total"] == 2
    assert [(e["from_state"], e["to_state"], e["actor"]) for e in events["items"]] == [
        ("draft", "draft", "alice"),
        ("draft", "validated", "alice"),
    ]
    audit = await svc.get("root", "/api/v1/audit?limit=100")
    actions = [e["action"] for e in audit.json()["items"]]
    assert "mission.create" in actions and "mission.validate" in actions


async def test_plan_through_a_no_fly_zone_is_refused_by_the_gate(svc):
    r = await _create(svc, THROUGH_HOSPITAL)
    assert r.status_code == 201
    mission = r.json()
    assert mission["violations"] and "hospital helipad" in mission["violations"][0]["message"]
    r = await svc.post("alice", f"/api/v1/missions/{mission['id']}/validate")
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == "airspace_violation" and "hospital helipad" in body["message"]
    r = await svc.get("alice", f"/api/v1/missions/{mission['id']}")
    assert r.json()["state"] == "draft" and r.json()["items"] is None  # nothing compiled to upload
    r = await svc.post("alice", f"/api/v1/missions/{mission['id']}/launch")
    assert r.status_code == 409 and "launch is only possible from validated" in r.json()["error"]["message"]


async def test_illegal_transitions_are_409_with_the_reason(svc):
    mid = (await _create(svc, CLEAR_LINE)).json()["id"]
    for action, needed in [("pause", "active"), ("resume", "paused"), ("launch", "validated")]:
        r = await svc.post("alice", f"/api/v1/missions/{mid}/{action}")
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_transition"
        assert f"mission {mid} is draft" in err["message"] and needed in err["message"]
    r = await svc.post("alice", f"/api/v1/missions/{mid}/abort")
    assert r.status_code == 200 and r.json()["state"] == "aborted"
    r = await svc.post("alice", f"/api/v1/missions/{mid}/validate")
    assert r.status_code == 409 and "aborted" in r.json()["error"]["message"]


async def test_launch_refused_while_the_vehicle_is_not_connected(svc):
    mid = (await _create(svc, CLEAR_LINE)).json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 409
    assert (
        r.json()["error"]["code"] == "vehicle_unavailable" and "not connected" in r.json()["error"]["message"]
    )
    assert (await svc.get("alice", f"/api/v1/missions/{mid}")).json()["state"] == "validated"


async def test_roles_and_control_authority_guard_mission_actions(svc):
    assert (await _create(svc, CLEAR_LINE, user="olga")).status_code == 403
    assert (await _create(svc, CLEAR_LINE, user="dan")).status_code == 403
    mid = (await _create(svc, CLEAR_LINE)).json()["id"]
    assert (await svc.post("bob", "/api/v1/vehicles/1/control")).status_code == 200
    r = await svc.post("alice", f"/api/v1/missions/{mid}/abort")
    assert r.status_code == 403 and "controlled by bob" in r.json()["error"]["message"]


async def test_bad_plans_are_422_naming_the_problem(svc):
    r = await _create(svc, {"type": "Point", "coordinates": [109.98, 39.82]}, kind="sweep")
    assert r.status_code == 422 and "Polygon" in r.json()["error"]["message"]
    r = await _create(svc, CLEAR_LINE, params={"swath": 3})
    assert r.status_code == 422 and "params.swath" in r.json()["error"]["message"]
    r = await svc.post(
        "alice",
        "/api/v1/missions",
        {"name": "x", "vehicle_id": 99, "plan": {"kind": "custom", "geometry": CLEAR_LINE}},
    )
    assert r.status_code == 404 and "vehicle 99" in r.json()["error"]["message"]
    r = await svc.get("alice", "/api/v1/missions/12345")
    assert r.status_code == 404 and "mission 12345 does not exist" in r.json()["error"]["message"]


async def test_list_is_paginated(svc):
    for _ in range(3):
        await _create(svc, CLEAR_LINE)
    r = await svc.get("olga", "/api/v1/missions?limit=2&offset=0")
    page = r.json()
    assert page["total"] == 3 and page["limit"] == 2 and len(page["items"]) == 2
    assert page["items"][0]["id"] > page["items"][1]["id"]
    assert HOME  # the fixture's vehicle lives at the demo home
