"""Patrols over HTTP: define with cron/window/capabilities, validation, roles, enable, runs, delete."""

from __future__ import annotations

import pytest

from tests.integration.test_dispatch_support import dispatch_service

pytestmark = pytest.mark.timeout(30)
AREA = {
    "type": "Polygon",
    "coordinates": [[[109.97, 39.81], [109.99, 39.81], [109.99, 39.83], [109.97, 39.83], [109.97, 39.81]]],
}


@pytest.fixture
async def svc(tmp_path, db_url):
    async with dispatch_service(tmp_path, docks=[], database_url=db_url) as service:
        yield service


def patrol(**extra):
    return {
        "name": "night perimeter",
        "plan": {"kind": "perimeter", "geometry": AREA, "params": {"alt_m": 50}},
        "cron": "0 22 * * *",
        "timezone": "Asia/Shanghai",
        "window_start": "21:00",
        "window_end": "05:00",
        "required_capabilities": ["spotlight"],
        **extra,
    }


async def test_define_list_disable_and_delete(svc):
    r = await svc.post("dan", "/api/v1/patrols", patrol())
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["cron"] == "0 22 * * *" and p["required_capabilities"] == ["spotlight"] and p["enabled"]
    page = (await svc.get("olga", "/api/v1/patrols")).json()
    assert page["total"] == 1 and page["items"][0]["name"] == "night perimeter"
    r = await svc.client.patch(f"/api/v1/patrols/{p['id']}", json={"enabled": False}, headers=svc.auth("dan"))
    assert r.status_code == 200 and not r.json()["enabled"]
    assert (await svc.get("olga", f"/api/v1/patrols/{p['id']}/runs")).json()["total"] == 0
    r = await svc.client.delete(f"/api/v1/patrols/{p['id']}", headers=svc.auth("dan"))
    assert r.status_code == 204
    assert (await svc.get("olga", f"/api/v1/patrols/{p['id']}")).status_code == 404
    actions = [e["action"] for e in (await svc.get("root", "/api/v1/audit")).json()["items"]]
    assert {"patrol.create", "patrol.disable", "patrol.delete"} <= set(actions)


async def test_bad_patrols_say_what_is_wrong(svc):
    r = await svc.post("dan", "/api/v1/patrols", patrol(cron="sometimes"))
    assert r.status_code == 422 and "cron 'sometimes' is not a valid" in r.json()["error"]["message"]
    r = await svc.post("dan", "/api/v1/patrols", patrol(window_end=None))
    assert r.status_code == 422 and "window_start and window_end go together" in r.json()["error"]["message"]
    r = await svc.post("dan", "/api/v1/patrols", patrol(plan={"kind": "perimeter"}))
    assert r.status_code == 422 and "geometry" in r.json()["error"]["message"]
    assert (await svc.post("dan", "/api/v1/patrols", patrol())).status_code == 201
    r = await svc.post("dan", "/api/v1/patrols", patrol())
    assert r.status_code == 409 and "already exists" in r.json()["error"]["message"]


async def test_only_dispatchers_and_admins_define_patrols(svc):
    assert (await svc.post("olga", "/api/v1/patrols", patrol())).status_code == 403
    assert (await svc.post("alice", "/api/v1/patrols", patrol())).status_code == 403
    assert (await svc.post("root", "/api/v1/patrols", patrol())).status_code == 201


async def test_a_patrol_plan_is_checked_in_full_at_creation(svc):
    cases = [
        ({"kind": "bogus", "geometry": 5}, "plan.kind"),
        ({"kind": "perimeter", "geometry": 5}, "plan.geometry"),
        ({"kind": "perimeter", "geometry": {"type": "Point", "coordinates": [109.98, 39.82]}}, "Polygon"),
        ({"kind": "perimeter", "geometry": {"type": "Blob"}}, "'Blob' is not a geometry"),
        ({"kind": "perimeter", "geometry": AREA, "params": {"swath_m": 30}}, "params.swath_m"),
        ({"kind": "perimeter", "geometry": AREA, "params": {"alt_m": -4}}, "params.alt_m"),
    ]
    for plan, named in cases:
        r = await svc.post("dan", "/api/v1/patrols", patrol(plan=plan))
        assert r.status_code == 422, (plan, r.text)
        err = r.json()["error"]
        assert named in err["message"], (plan, err)
        assert "plan" in (err.get("where") or "")
    assert (await svc.get("olga", "/api/v1/patrols")).json()["total"] == 0
