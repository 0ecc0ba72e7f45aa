"""Dispatch safety through real MAVSDK against sim/: failed flights come home, fence before arming,
leave time, pilots never overridden, routed returns around no-fly zones, airspace over the flight's span.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point, box

from mission.errors import LinkError
from tests.integration.test_dispatch_support import DispatchService, dispatch_service, offset, until

pytestmark = pytest.mark.timeout(30)
SPEED = 20.0


async def incident(svc: DispatchService, north_m: float, east_m: float, **extra) -> dict:
    lat, lon = offset(north_m, east_m)
    r = await svc.post("dan", "/api/v1/incidents", {"lat": lat, "lon": lon, "kind": "intrusion", **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def state_of(svc: DispatchService, incident_id: int) -> str:
    return (await svc.get("olga", f"/api/v1/incidents/{incident_id}")).json()["state"]


async def event_kinds(svc: DispatchService, incident_id: int) -> list[str]:
    return [e["kind"] for e in (await svc.get("olga", f"/api/v1/incidents/{incident_id}/events")).json()]


async def audit_actions(svc: DispatchService, prefix: str = "cmd.") -> list[tuple[str, str]]:
    """(action, target) of the audit entries with ``prefix``, oldest first."""
    items = (await svc.get("root", f"/api/v1/audit?action={prefix}&limit=200")).json()["items"]
    return [(e["action"], e["target"]) for e in reversed(items)]


async def on_scene(svc: DispatchService, incident_id: int) -> None:
    async def arrived() -> bool:
        return await state_of(svc, incident_id) == "on_scene"

    await until(arrived, 20, "arrival on scene")


def going_home(svc: DispatchService, vid: int) -> bool:
    return svc.vehicle(vid).state.mode in ("return", "land")


async def test_a_flight_that_fails_in_the_air_sends_the_drone_home_and_frees_the_incident(tmp_path):
    # A transit leg that cannot finish in time (1 wall s for a 1.5 km leg) is a failed flight.
    async with dispatch_service(tmp_path, docks=[(0, 0)], dispatch_leg_timeout_s=1.0) as svc:
        inc = await incident(svc, 0, 1500, alt_m=40)
        await until(lambda: going_home(svc, 1), 15, "the failed drone to be sent home")
        assert svc.vehicle(1).state.alt_rel_m > 1  # it was in the air, unsupervised without the fix
        kinds = await event_kinds(svc, inc["id"])
        assert "unassigned" in kinds
        assert await state_of(svc, inc["id"]) == "new"  # never left en_route
        actions = await audit_actions(svc)
        names = [a for a, _ in actions]
        assert names[:4] == ["cmd.upload_geofence", "cmd.arm", "cmd.takeoff", "cmd.goto"]
        assert ("cmd.rtl", "vehicle:1") in actions
        assert (await svc.get("root", "/api/v1/audit/verify")).json()["ok"]


async def test_an_unexpected_error_in_the_air_is_logged_and_the_drone_sent_home(
    tmp_path, monkeypatch, caplog
):
    async with dispatch_service(tmp_path, docks=[(0, 0)]) as svc:
        link = svc.runtime.fleet.link(1)

        async def broken_goto(lat: float, lon: float, alt_rel_m: float) -> None:  # a bug, not a link error
            raise RuntimeError("goto: unexpected None")

        monkeypatch.setattr(link, "goto", broken_goto)
        inc = await incident(svc, 300, 300, alt_m=40)
        await until(lambda: going_home(svc, 1), 15, "the drone to be sent home")
        assert await state_of(svc, inc["id"]) == "new"
        assert any("failed unexpectedly" in r.getMessage() and r.exc_info is not None for r in caplog.records)


async def test_a_refused_fence_keeps_the_drone_on_the_ground(tmp_path, monkeypatch):
    async with dispatch_service(tmp_path, docks=[(0, 0)]) as svc:
        link = svc.runtime.fleet.link(1)

        async def refused(fence) -> None:  # the vehicle refusing the upload (fault injection at the link)
            raise LinkError("vehicle 1: geofence upload refused", vehicle_id=1, action="geofence")

        monkeypatch.setattr(link, "upload_geofence", refused)
        inc = await incident(svc, 300, 300, alt_m=40)

        async def unassigned() -> bool:
            return "unassigned" in await event_kinds(svc, inc["id"])

        await until(unassigned, 10, "the failed flight to be recorded")
        await asyncio.sleep(0.5)
        assert not svc.vehicle(1).state.armed and svc.vehicle(1).state.alt_rel_m < 1.0
        names = [a for a, _ in await audit_actions(svc)]
        # Audited before the upload, its failure after it; nothing else was sent.
        assert names == ["cmd.upload_geofence", "cmd.upload_geofence.failed"]
        assert await state_of(svc, inc["id"]) == "new"


async def test_a_drone_at_its_leave_time_with_no_relief_goes_home(tmp_path):
    async with dispatch_service(tmp_path, docks=[(0, 0)]) as svc:
        inc = await incident(svc, 300, 300, alt_m=40, overhead_s=3600)
        await on_scene(svc, inc["id"])
        svc.vehicle(1).battery_sag(72.0)  # ~24 % left: just its return and reserve
        await until(lambda: going_home(svc, 1), 15, "the drone to leave for its reserve")
        # The service sent it, well above the vehicle's own low-battery failsafe (15 %).
        assert svc.vehicle(1).state.battery_pct > 17.0
        kinds = await event_kinds(svc, inc["id"])
        assert "left_for_reserve" in kinds and "unassigned" in kinds[kinds.index("left_for_reserve") :]
        assert await state_of(svc, inc["id"]) == "new"
        assert ("cmd.rtl", "vehicle:1") in await audit_actions(svc)


async def test_closing_or_leave_time_never_override_the_pilot_who_holds_the_drone(tmp_path):
    async with dispatch_service(tmp_path, docks=[(0, 0)]) as svc:
        inc = await incident(svc, 300, 300, alt_m=40, overhead_s=3600)
        await on_scene(svc, inc["id"])
        assert (await svc.post("alice", "/api/v1/vehicles/1/control")).status_code == 200
        svc.vehicle(1).battery_sag(72.0)  # the leave time comes: the pilot decides, not dispatch
        await asyncio.sleep(1.5)
        assert not going_home(svc, 1)
        r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close", {"reason": "handled"})
        assert r.status_code == 200 and r.json()["state"] == "closed"

        async def noted() -> bool:
            return "pilot_holds" in await event_kinds(svc, inc["id"])

        await until(noted, 5, "the skipped return to be noted")
        await asyncio.sleep(0.5)
        assert not going_home(svc, 1) and svc.vehicle(1).state.mode == "orbit"
        assert not [a for a in await audit_actions(svc) if a[0] == "cmd.rtl"]


def _zone_polygon(north: tuple[float, float], east: tuple[float, float]) -> dict:
    (s, n), (w, e) = north, east
    sw, ne = offset(s, w), offset(n, e)
    ring = [[sw[1], sw[0]], [ne[1], sw[0]], [ne[1], ne[0]], [sw[1], ne[0]], [sw[1], sw[0]]]
    return {"type": "Polygon", "coordinates": [ring]}


async def test_going_home_flies_around_a_no_fly_zone_across_the_straight_line(tmp_path):
    zone = {"name": "helipad", "kind": "no_fly", "shape": _zone_polygon((-150, 150), (450, 750))}
    async with dispatch_service(tmp_path, docks=[(0, 0)], zones=[zone]) as svc:
        inc = await incident(svc, 0, 1200, alt_m=40)
        await on_scene(svc, inc["id"])
        r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close", {"reason": "handled"})
        assert r.status_code == 200
        ring = zone["shape"]["coordinates"][0]
        helipad = box(ring[0][0], ring[0][1], ring[2][0], ring[2][1])
        track = []
        home = offset(0, 0)
        while True:
            v = svc.vehicle(1).state
            track.append((v.lat, v.lon, v.mode))
            if not v.armed or _dist(v.lat, v.lon, *home) < 30:
                break
            assert len(track) < 20 / 0.05, "the drone did not get home"
            await asyncio.sleep(0.05)
        assert not [p for p in track if helipad.contains(Point(p[1], p[0]))], "flew through the no-fly zone"
        actions = await audit_actions(svc)
        home_legs = [i for i, (a, _) in enumerate(actions) if a == "cmd.goto"]
        rtl = actions.index(("cmd.rtl", "vehicle:1"))
        assert home_legs and home_legs[-1] < rtl  # the detour before RTL


def _dist(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dn = math.radians(lat2 - lat1) * 6371000.0
    de = math.radians(lon2 - lon1) * 6371000.0 * math.cos(math.radians(lat1))
    return math.hypot(dn, de)


async def test_dispatch_sees_zones_that_start_during_the_flight(tmp_path):
    soon = datetime.now(UTC) + timedelta(seconds=60)  # 60 wall s = 20 sim minutes at this speed
    later = datetime.now(UTC) + timedelta(hours=3)
    zones = [
        {
            "name": "match",
            "kind": "event",
            "shape": _zone_polygon((-150, 150), (450, 750)),
            "active_from": soon.isoformat(),
            "active_until": (soon + timedelta(hours=2)).isoformat(),
        },
        {
            "name": "parade",
            "kind": "event",
            "shape": _zone_polygon((150, 400), (450, 750)),
            "active_from": later.isoformat(),
            "active_until": (later + timedelta(hours=1)).isoformat(),
        },
    ]
    async with dispatch_service(tmp_path, docks=[(0, 0)], zones=zones) as svc:
        east = offset(0, 1200)
        north = offset(600, 1200)  # the straight line there crosses only the parade

        async def route(lat: float, lon: float, overhead_s: float) -> list:
            q = f"lat={lat}&lon={lon}&overhead_s={overhead_s}&alt_m=40"
            cands = (await svc.get("olga", f"/api/v1/dispatch/candidates?{q}")).json()["candidates"]
            return cands[0]["route_latlon"]

        # A 20-minute overwatch overlaps the match starting in 20 sim minutes: the route goes around it.
        assert len(await route(*east, 1200)) > 2
        # A one-minute job ends (with margin) before the match starts: straight there.
        assert len(await route(*east, 60)) == 2
        # The parade starts hours after any flight: it does not bend the route.
        assert len(await route(*north, 1200)) == 2
