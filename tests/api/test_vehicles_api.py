"""The vehicle registry over HTTP: CRUD, validation naming the field, 404/409, nothing lost on bad input."""

from __future__ import annotations

import httpx

from mission.auth.roles import Role

URL = "/api/v1/vehicles"


def body(name: str = "hawk-1", sysid: int = 1, **kw: object) -> dict[str, object]:
    # enabled=False: the Runtime's fleet manager must not open UDP ports for these test vehicles.
    return {
        "name": name,
        "connection_url": f"udpin://127.0.0.1:{19000 + sysid}",
        "sysid": sysid,
        "home_lat": 39.8371,
        "home_lon": 109.9352,
        "capabilities": ["camera", "speaker"],
        "payload_actuators": {"speaker": 1},
        "enabled": False,
        **kw,
    }


async def test_crud_round_trip(client: httpx.AsyncClient, admin: dict[str, str], auth_headers) -> None:  # type: ignore[no-untyped-def]
    r = await client.post(URL, json=body(battery_wh=240), headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["battery_wh"] == 240 and created["payload_actuators"] == {"speaker": 1}
    vid = created["id"]

    observer = auth_headers[Role.observer]
    r = await client.get(f"{URL}/{vid}", headers=observer)
    assert r.status_code == 200 and r.json()["name"] == "hawk-1"

    r = await client.patch(
        f"{URL}/{vid}", json={"cruise_speed_m_s": 14.5, "dock": "Workstation Riverside"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["cruise_speed_m_s"], r.json()["dock"], r.json()["battery_wh"]) == (
        14.5,
        "Workstation Riverside",
        240,
    )

    r = await client.delete(f"{URL}/{vid}", headers=admin)
    assert r.status_code == 204
    r = await client.get(f"{URL}/{vid}", headers=observer)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": "not_found",
            "message": f"vehicle {vid} does not exist",
            "message_code": "fleet.vehicle_does_exist",
            "message_params": {"vehicle_id": vid},
        }
    }


async def test_pagination(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(1, 6):
        assert (await client.post(URL, json=body(f"v{i}", i), headers=admin)).status_code == 201
    r = await client.get(URL, params={"limit": 2, "offset": 3}, headers=admin)
    page = r.json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 3)
    assert [v["name"] for v in page["items"]] == ["v4", "v5"]
    r = await client.get(URL, params={"limit": 0}, headers=admin)
    assert r.status_code == 422
    assert r.json()["error"]["where"] == "query.limit"


async def test_validation_names_field_and_location(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post(URL, json=body(sysid=300), headers=admin)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["where"] == "body.sysid"
    assert "less than or equal to 254" in err["message"]

    r = await client.post(URL, json=body(connection_url="http://nope"), headers=admin)
    assert r.json()["error"]["where"] == "body.connection_url"
    assert "not a MAVSDK URL" in r.json()["error"]["message"]

    r = await client.post(URL, content=b"{not json", headers={**admin, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"

    r = await client.get(f"{URL}/abc", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["where"] == "path.vehicle_id"


async def test_bad_requests_lose_nothing(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    vid = (await client.post(URL, json=body(), headers=admin)).json()["id"]
    before = (await client.get(f"{URL}/{vid}", headers=admin)).json()
    audit_before = (await client.get("/api/v1/audit", headers=admin)).json()["total"]

    # Dropping the speaker while it is still mapped to an actuator is refused as a whole.
    r = await client.patch(f"{URL}/{vid}", json={"capabilities": ["camera"], "battery_wh": 1}, headers=admin)
    assert r.status_code == 422 and "capabilities do not include it" in r.json()["error"]["message"]
    r = await client.post(URL, json=body(name="other", sysid=1), headers=admin)
    assert r.status_code == 409 and "sysid 1 is already used" in r.json()["error"]["message"]
    r = await client.post(URL, json=body(name="hawk-1", sysid=2), headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = await client.patch(f"{URL}/{vid}", json={"name": None}, headers=admin)
    assert r.status_code == 422

    assert (await client.get(f"{URL}/{vid}", headers=admin)).json() == before
    assert (await client.get(URL, headers=admin)).json()["total"] == 1
    assert (await client.get("/api/v1/audit", headers=admin)).json()["total"] == audit_before


async def test_unknown_ids_are_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"battery_wh": 10}} if method == "PATCH" else {}
        r = await client.request(method, f"{URL}/4242", headers=admin, **kwargs)
        assert r.status_code == 404, method
        assert r.json()["error"]["message"] == "vehicle 4242 does not exist"


async def test_a_vehicle_with_history_cannot_be_deleted(
    app, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    from mission.db import session_scope
    from mission.missions.models import Mission

    vid = (await client.post(URL, json=body(), headers=admin)).json()["id"]
    with session_scope(app.state.engine) as session:
        session.add(Mission(name="sweep", vehicle_id=vid, plan={"kind": "custom"}, created_by="pia"))
    r = await client.delete(f"{URL}/{vid}", headers=admin)
    assert r.status_code == 409, r.text
    assert "has missions or incidents on record" in r.json()["error"]["message"]
    assert (await client.get(f"{URL}/{vid}", headers=admin)).status_code == 200
    r = await client.patch(f"{URL}/{vid}", json={"enabled": False}, headers=admin)
    assert r.json()["enabled"] is False
