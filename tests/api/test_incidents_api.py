"""Incidents over HTTP (SQLite and PostgreSQL): report, validation, roles, lifecycle errors, pagination."""

from __future__ import annotations

import pytest

from tests.integration.test_dispatch_support import dispatch_service, offset

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def svc(tmp_path, db_url):
    async with dispatch_service(tmp_path, docks=[], database_url=db_url) as service:
        yield service


def body(**extra):
    lat, lon = offset(100, 100)
    return {"lat": lat, "lon": lon, "kind": "fire", "priority": 1, "notes": "smoke seen", **extra}


async def test_report_without_vehicles_is_kept_new_with_the_reason(svc):
    r = await svc.post("dan", "/api/v1/incidents", body())
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["state"] == "new" and inc["vehicle_id"] is None
    assert inc["decision"]["explanation"] == "no vehicles are registered"
    assert inc["channel"] == "api" and inc["created_by"] == "dan" and inc["created_at"]
    events = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}/events")).json()
    assert [e["kind"] for e in events] == ["created", "no_vehicle"]
    audit = (await svc.get("root", "/api/v1/audit?action=incident.create")).json()["items"]
    assert audit[0]["target"] == f"incident:{inc['id']}"


async def test_panel_reports_are_marked_as_such(svc):
    r = await svc.post("dan", "/api/v1/incidents", body(source="panel", auto_dispatch=False))
    assert r.status_code == 201 and r.json()["channel"] == "panel" and r.json()["decision"] is None


async def test_bad_input_names_the_field(svc):
    r = await svc.post("dan", "/api/v1/incidents", body(lat=123.0))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] and "lat" in (err.get("where") or "") + err["message"]
    r = await svc.post("dan", "/api/v1/incidents", body(kind="Fire Alarm!"))
    assert (
        r.status_code == 422
        and "kind" in (r.json()["error"].get("where") or "") + r.json()["error"]["message"]
    )
    r = await svc.post("dan", "/api/v1/incidents", body(priority=9))
    assert r.status_code == 422


async def test_observers_read_but_cannot_report(svc):
    assert (await svc.post("olga", "/api/v1/incidents", body())).status_code == 403
    assert (await svc.get("olga", "/api/v1/incidents")).status_code == 200
    assert (await svc.client.get("/api/v1/incidents")).status_code == 401


async def test_close_then_dispatch_is_a_conflict_and_unknown_is_404(svc):
    inc = (await svc.post("dan", "/api/v1/incidents", body(auto_dispatch=False))).json()
    r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close", {"reason": "false alarm"})
    assert (
        r.status_code == 200 and r.json()["state"] == "closed" and r.json()["close_reason"] == "false alarm"
    )
    assert r.json()["closed_at"]
    r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/dispatch")
    assert r.status_code == 409 and "closed" in r.json()["error"]["message"]
    r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close")
    assert r.status_code == 409
    r = await svc.get("olga", "/api/v1/incidents/9999")
    assert r.status_code == 404 and r.json()["error"]["message"] == "incident 9999 does not exist"


async def test_list_pages_and_filters_by_state(svc):
    for _ in range(3):
        await svc.post("dan", "/api/v1/incidents", body(auto_dispatch=False))
    page = (await svc.get("olga", "/api/v1/incidents?limit=2&offset=0")).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    assert page["items"][0]["id"] > page["items"][1]["id"]
    new = (await svc.get("olga", "/api/v1/incidents?state=new")).json()
    assert new["total"] == 3
    assert (await svc.get("olga", "/api/v1/incidents?state=bogus")).status_code == 422
    times = (await svc.get("olga", f"/api/v1/incidents/{page['items'][0]['id']}/response")).json()
    assert times["to_assigned_s"] is None and times["to_on_scene_s"] is None
