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


def _circle_zone(name, lon, lat, *, radius_m=120, floor_m=0, ceiling_m=300, starts_in_s=None):
    from datetime import UTC, datetime, timedelta

    zone = {
        "name": name,
        "kind": "event",
        "shape": {"type": "Circle", "center": [lon, lat], "radius_m": radius_m},
        "floor_m": floor_m,
        "ceiling_m": ceiling_m,
    }
    if starts_in_s is not None:
        zone["active_from"] = (datetime.now(UTC) + timedelta(seconds=starts_in_s)).isoformat()
    return zone


# ~2.7 km out and back: about 5 minutes of flight.
LONG_LINE = {"type": "LineString", "coordinates": [[109.9810, 39.8230], [109.9810, 39.8350]]}


async def test_a_zone_starting_during_the_flight_is_checked_and_fenced(svc):
    # starts in 5 minutes, across the route: the mission would still be flying then
    soon = _circle_zone("parade", 109.9810, 39.8300, starts_in_s=300)
    assert (await svc.post("root", "/api/v1/zones", soon)).status_code == 201
    mid = (await _create(svc, LONG_LINE)).json()["id"]
    r = await svc.post("alice", f"/api/v1/missions/{mid}/validate")
    assert r.status_code == 422 and "parade" in r.json()["error"]["message"], r.text
    # the same zone starting in 5 hours does not concern this flight; the mission passes
    later = _circle_zone("night market", 109.9810, 39.8300, starts_in_s=5 * 3600)
    mid2 = (await _create(svc, LONG_LINE)).json()["id"]
    zone_id = (await svc.get("root", "/api/v1/zones?limit=100")).json()["items"][-1]["id"]
    assert (
        await svc.client.put(f"/api/v1/zones/{zone_id}", json=later, headers=svc.auth("root"))
    ).status_code == 200
    assert (await svc.post("alice", f"/api/v1/missions/{mid2}/validate")).status_code == 200
    # a zone starting in 5 minutes beside the route is not crossed but goes into the geofence
    beside = _circle_zone("fair", 109.9830, 39.8290, radius_m=60, starts_in_s=300)
    r = await svc.client.put(f"/api/v1/zones/{zone_id}", json=beside, headers=svc.auth("root"))
    assert r.status_code == 200, r.text
    mid3 = (await _create(svc, LONG_LINE)).json()["id"]
    validated = (await svc.post("alice", f"/api/v1/missions/{mid3}/validate")).json()
    circles = [s for s in validated["geofence"]["shapes"] if s["kind"] == "circle"]
    assert any(abs(c["lon"] - 109.9830) < 1e-6 and c["inclusion"] is False for c in circles), circles


async def test_missions_above_the_altitude_ceiling_are_refused(svc):
    mid = (await _create(svc, CLEAR_LINE, params={"alt_m": 200})).json()["id"]
    r = await svc.post("alice", f"/api/v1/missions/{mid}/validate")
    assert r.status_code == 422 and "above the 120 m ceiling" in r.json()["error"]["message"], r.text


async def test_the_rtl_return_altitude_is_checked(svc):
    # a zone from 50 m up on the way home: the mission at 30 m flies under it, PX4's RTL climbs to 60 m
    roof = _circle_zone("stadium roof", 109.9810, 39.8270, floor_m=50, ceiling_m=300)
    assert (await svc.post("root", "/api/v1/zones", roof)).status_code == 201
    north = {"type": "MultiPoint", "coordinates": [[109.9810, 39.8330]]}
    mid = (await _create(svc, north, params={"alt_m": 30})).json()["id"]
    r = await svc.post("alice", f"/api/v1/missions/{mid}/validate")
    assert r.status_code == 422, r.text
    assert "return leg" in r.json()["error"]["message"] and "stadium roof" in r.json()["error"]["message"]


async def test_launch_is_refused_while_an_incident_holds_the_vehicle(svc):
    from mission.db import session_scope
    from mission.incidents.models import Incident

    mid = (await _create(svc, CLEAR_LINE)).json()["id"]
    assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
    with session_scope(svc.engine) as session:
        incident = Incident(kind="burglary", lat=39.821, lon=109.982, state="en_route", vehicle_id=1)
        session.add(incident)
        session.flush()
        incident_id = incident.id
    r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "vehicle_unavailable" and f"held by incident {incident_id}" in err["message"]
    assert (await svc.get("alice", f"/api/v1/missions/{mid}")).json()["state"] == "validated"
