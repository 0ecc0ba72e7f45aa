"""Every change made through the API lands in the audit chain, and tampering shows in /audit/verify."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from mission.auth.roles import Role
from mission.db import session_scope
from tests.api.test_vehicles_api import body


async def test_changes_are_audited_and_tampering_is_reported(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    vid = (await client.post("/api/v1/vehicles", json=body(), headers=admin)).json()["id"]
    await client.patch(f"/api/v1/vehicles/{vid}", json={"battery_wh": 300}, headers=admin)
    await client.delete(f"/api/v1/vehicles/{vid}", headers=admin)
    page = (await client.get("/api/v1/audit", headers=admin)).json()
    assert [(e["actor"], e["action"], e["target"]) for e in page["items"]] == [
        ("token:test-admin", "vehicle.delete", f"vehicle:{vid}"),
        ("token:test-admin", "vehicle.update", f"vehicle:{vid}"),
        ("token:test-admin", "vehicle.create", f"vehicle:{vid}"),
    ]
    assert page["items"][1]["details"] == {"battery_wh": 300}
    assert (await client.get("/api/v1/audit/verify", headers=admin)).json()["ok"] is True

    with session_scope(app.state.engine) as s:
        s.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1"))
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    report = (await client.get("/api/v1/audit/verify", headers=admin)).json()
    assert report["ok"] is False
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(1, "edited"), (2, "missing")]


async def test_only_admins_read_the_audit_log(client: httpx.AsyncClient, auth_headers) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.pilot, Role.dispatcher, Role.observer):
        for path in ("/api/v1/audit", "/api/v1/audit/verify"):
            r = await client.get(path, headers=auth_headers[role])
            assert r.status_code == 403, (role, path)
            assert f"role {role.value} may not do this" in r.json()["error"]["message"]
