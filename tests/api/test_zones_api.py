"""Airspace zones over HTTP: CRUD, the active-window filter, shape validation."""

from __future__ import annotations

import httpx

from mission.auth.roles import Role

URL = "/api/v1/zones"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[109.97, 39.81], [109.99, 39.81], [109.99, 39.83], [109.97, 39.83]]],
}


async def test_zone_crud_and_active_filter(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers
) -> None:  # type: ignore[no-untyped-def]
    event = {
        "name": "Stadium match",
        "kind": "event",
        "shape": {"type": "Circle", "center": [109.9805, 39.8005], "radius_m": 450},
        "ceiling_m": 300,
        "active_from": "2026-06-01T18:00:00+08:00",
        "active_until": "2026-06-01T23:00:00+08:00",
    }
    r = await client.post(URL, json=event, headers=admin)
    assert r.status_code == 201, r.text
    zone = r.json()
    assert zone["active_from"] == "2026-06-01T10:00:00Z"  # stored and returned in UTC
    r = await client.post(URL, json={"name": "Prison", "kind": "no_fly", "shape": SQUARE}, headers=admin)
    assert r.status_code == 201
    prison = r.json()
    assert prison["shape"]["coordinates"][0][-1] == [109.97, 39.81]  # ring closed

    pilot = auth_headers[Role.pilot]
    r = await client.get(URL, params={"active_at": "2026-06-01T12:00:00Z"}, headers=pilot)
    assert [z["name"] for z in r.json()["items"]] == ["Stadium match", "Prison"]
    r = await client.get(URL, params={"active_at": "2026-06-01T16:00:00Z"}, headers=pilot)
    assert [z["name"] for z in r.json()["items"]] == ["Prison"]
    r = await client.get(URL, params={"kind": "event"}, headers=pilot)
    assert r.json()["total"] == 1

    r = await client.put(
        f"{URL}/{prison['id']}",
        json={"name": "Prison", "kind": "no_fly", "shape": SQUARE, "ceiling_m": 80},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["ceiling_m"] == 80
    assert (await client.delete(f"{URL}/{prison['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"{URL}/{prison['id']}", headers=pilot)).status_code == 404


async def test_bad_zones_are_422_with_the_reason(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1]]]}
    r = await client.post(URL, json={"name": "x", "kind": "no_fly", "shape": bowtie}, headers=admin)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["where"].startswith("body.shape") and "Self-intersection" in err["message"]
    r = await client.post(
        URL,
        json={"name": "x", "kind": "no_fly", "shape": SQUARE, "floor_m": 100, "ceiling_m": 20},
        headers=admin,
    )
    assert r.status_code == 422 and "must be above floor_m" in r.json()["error"]["message"]
    r = await client.post(URL, json={"name": "x", "kind": "volcano", "shape": SQUARE}, headers=admin)
    assert r.json()["error"]["where"] == "body.kind"
    assert (await client.get(URL, headers=admin)).json()["total"] == 0
    await client.post(URL, json={"name": "x", "kind": "no_fly", "shape": SQUARE}, headers=admin)
    r = await client.post(URL, json={"name": "x", "kind": "patrol", "shape": SQUARE}, headers=admin)
    assert r.status_code == 409 and "'x' already exists" in r.json()["error"]["message"]


async def test_nul_bytes_are_refused_not_crashed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """PostgreSQL text cannot hold NUL; the answer is a 422 on both databases, never a 500."""
    zone = {"name": "bad\u0000name", "kind": "no_fly", "shape": SQUARE}
    r = await client.post(URL, json=zone, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["where"] == "body.name" and "control characters" in r.json()["error"]["message"]
