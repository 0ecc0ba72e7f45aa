"""Flights survive a restart of the service: a dispatch on its way and a routed return both carry on."""

from __future__ import annotations

import pytest

from tests.integration.test_dispatch_safety import _zone_polygon
from tests.support.geo import distance_m, offset
from tests.support.service import running_service
from tests.support.wait import until

pytestmark = pytest.mark.timeout(90)
SPEED = 10.0


async def _state(svc, incident_id: int) -> str:  # type: ignore[no-untyped-def]
    return (await svc.get("olga", f"/api/v1/incidents/{incident_id}")).json()["state"]


async def test_a_dispatch_flight_goes_on_after_a_restart_without_a_second_take_off(tmp_path):
    async with running_service(
        tmp_path, docks=[(0, 0), (0, 3000)], speed=SPEED, dispatch_auto_launch=True
    ) as svc:
        lat, lon = offset(0, 1500)
        body = {"lat": lat, "lon": lon, "kind": "fight", "priority": 1, "alt_m": 50, "overhead_s": 600}
        inc = (await svc.post("dan", "/api/v1/incidents", body)).json()
        vid = inc["vehicle_id"]
        assert vid is not None

        async def en_route() -> bool:
            return await _state(svc, inc["id"]) == "en_route"

        await until(en_route, 20, "the drone on its way")
        await until(lambda: svc.vehicle(vid).state.alt_rel_m > 30, 20, "the climb")
        await svc.restart()  # the service goes away mid-flight and comes back on the same database
        rows = (await svc.get("olga", "/api/v1/flights/supervision")).json()

        async def supervised() -> bool:
            rows = (await svc.get("olga", "/api/v1/flights/supervision")).json()
            return any(
                r["vehicle_id"] == vid and (r["supervised_by"] or "").startswith("flight:") for r in rows
            )

        await until(supervised, 10, "the drone supervised again")

        async def on_scene() -> bool:
            return await _state(svc, inc["id"]) == "on_scene"

        await until(on_scene, 40, "the drone on scene after the restart")
        v = svc.vehicle(vid).state
        assert distance_m(v.lat, v.lon, lat, lon) < 80
        incident = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}")).json()
        assert incident["vehicle_id"] == vid  # the same drone, the same incident
        takeoffs = [r for r in svc.vehicle(vid).received if r.kind == "command" and r.command == 22]
        assert (
            len(takeoffs) >= 1 and len({round(r.at) for r in takeoffs}) == 1
        )  # one take-off (resends aside)
        audit = await svc.audit()
        assert any(e["action"] == "flight.recovered" for e in audit)
        assert (await svc.get("root", "/api/v1/audit/verify")).json()["ok"]
        del rows


async def test_a_routed_return_goes_on_after_a_restart_and_the_mission_is_not_failed(tmp_path):
    zone = {"name": "helipad", "kind": "no_fly", "shape": _zone_polygon((-150, 150), (450, 750))}
    async with running_service(tmp_path, docks=[(0, 0)], speed=SPEED, zones=[zone]) as svc:
        far = offset(0, 1300)
        line = {"type": "LineString", "coordinates": [[far[1], far[0]], [far[1] + 0.002, far[0]]]}
        body = {
            "name": "east",
            "vehicle_id": 1,
            "plan": {"kind": "route", "geometry": line, "params": {"alt_m": 40}},
        }
        mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
        assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
        assert (await svc.post("alice", f"/api/v1/missions/{mid}/launch")).status_code == 200
        await until(
            lambda: distance_m(svc.vehicle(1).state.lat, svc.vehicle(1).state.lon, *far) < 200, 40, "far east"
        )
        r = await svc.post("alice", f"/api/v1/missions/{mid}/return")
        assert r.status_code == 200 and r.json()["state"] == "returning"
        await svc.restart()
        home = offset(0, 0)

        async def landed_home() -> bool:
            v = svc.vehicle(1).state
            return not v.armed and distance_m(v.lat, v.lon, *home) < 30

        await until(landed_home, 60, "the drone home")

        async def ended() -> dict | None:
            m = (await svc.get("alice", f"/api/v1/missions/{mid}")).json()
            return m if m["state"] not in ("returning", "active") else None

        mission = await until(ended, 15, "the mission to end")
        assert mission["state"] == "aborted", mission  # home early by the pilot; never failed by the restart
        ring = zone["shape"]["coordinates"][0]
        west, east = ring[0][0], ring[2][0]
        south, north = ring[0][1], ring[2][1]
        gotos = [r for r in svc.vehicle(1).received if r.kind == "command" and r.command == 192]
        for r in gotos:  # no reposition target inside the helipad
            lat, lon = r.params[4] / 1e7, r.params[5] / 1e7
            assert not (west <= lon <= east and south <= lat <= north)
