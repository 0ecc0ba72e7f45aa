"""The whole service on two vehicles at once, on sim/ and on real PX4 SITL (parametrised, one body).

Dispatch auto-launches to an incident, the drone orbits on scene, a payload action is sent and recorded,
while the other vehicle flies a mission; the registry shows both links and their health; the incident's
airborne time is when telemetry showed the drone in the air; closing brings it home and it lands.
Everything is judged from telemetry and the API, as for any vehicle.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from mission.link.types import FlightMode, TelemetrySnapshot
from tests.support.geo import distance_m, offset
from tests.support.service import running_service
from tests.support.vehicles import PX4, cruise_m_s, speed_for, wall_s
from tests.support.wait import until

SIM_SPEED = 20.0
# The longest flight here is ~5 min of the vehicle's own time at PX4's 5 m/s cruise.
pytestmark = pytest.mark.timeout(wall_s(speed_for(PX4), 300.0, slack_s=90.0))

SCENE = (250.0, 150.0)  # north, east of the demo origin (m)
DOCKS = [(0.0, 0.0), (-100.0, 400.0)]


def _utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_dispatch_orbit_payload_and_a_mission_on_two_vehicles_at_once(tmp_path, vehicle_kind):
    speed = speed_for(vehicle_kind, SIM_SPEED)
    cruise = cruise_m_s(vehicle_kind)
    first_in_air: dict[int, float] = {}

    def watch(vehicle_id: int, snap: TelemetrySnapshot) -> None:
        if snap.in_air and vehicle_id not in first_in_air:
            first_in_air[vehicle_id] = snap.received_at

    async with running_service(
        tmp_path,
        docks=DOCKS,
        vehicles=vehicle_kind,
        speed=speed,
        dispatch_auto_launch=True,
        dispatch_auto_launch_max_priority=5,
    ) as svc:
        svc.runtime.fleet.add_listener(watch)
        # The registry carries each vehicle's link and health, as /ws does.
        listed = (await svc.get("olga", "/api/v1/vehicles")).json()["items"]
        assert [(v["link"]["state"], v["health"]["gps_ok"], v["health"]["armed"]) for v in listed] == [
            ("up", True, False),
            ("up", True, False),
        ]

        # Vehicle 2 flies a short mission meanwhile.
        a, b = offset(-100, 450), offset(-50, 500)
        line = {"type": "LineString", "coordinates": [[a[1], a[0]], [b[1], b[0]]]}
        body = {"name": "east hop", "vehicle_id": 2, "plan": {"kind": "custom", "geometry": line}}
        mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
        assert (await svc.post("alice", f"/api/v1/missions/{mid}/validate")).status_code == 200

        lat, lon = offset(*SCENE)
        body = {"lat": lat, "lon": lon, "kind": "intrusion", "priority": 2, "overhead_s": 600, "alt_m": 40}
        r = await svc.post("dan", "/api/v1/incidents", body)
        assert r.status_code == 201, r.text
        inc = r.json()
        assert inc["vehicle_id"] == 1 and inc["state"] in ("assigned", "en_route")
        r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
        assert r.status_code == 200 and r.json()["state"] == "active", r.text

        async def state(want: str) -> dict | None:
            got = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}")).json()
            return got if got["state"] == want else None

        out_s = 40 / 1.5 + distance_m(*offset(0, 0), lat, lon) / cruise + 20
        on_scene = await until(lambda: state("on_scene"), wall_s(speed, out_s), "arrival on scene")
        snap = svc.runtime.fleet.latest(1)
        assert snap is not None and distance_m(snap.lat, snap.lon, lat, lon) < 80
        # Airborne is when telemetry first showed it in the air, not when the take-off was acked.
        assert 1 in first_in_air
        airborne = _utc(on_scene["airborne_at"])
        assert first_in_air[1] - 0.5 <= airborne <= first_in_air[1] + 2.0
        takeoff = [e for e in await svc.audit() if e["action"] == "cmd.takeoff"]
        assert takeoff and _utc(takeoff[0]["at"]) <= airborne

        await until(
            lambda: svc.runtime.fleet.latest(1).mode is FlightMode.ORBIT, wall_s(speed, 30), "the orbit"
        )
        r = await svc.post("dan", "/api/v1/payload/vehicles/1/actions", {"action": "spotlight.on"})
        assert r.status_code == 201, r.text
        use = r.json()
        assert use["incident_id"] == inc["id"] and use["ok"] and use["delivery"] in ("accepted", "confirmed")
        assert use["delivery_note"]

        # Both fly at once; the mission ends on its own.
        async def mission_done() -> str | None:
            got = (await svc.get("olga", f"/api/v1/missions/{mid}")).json()["state"]
            return got if got in ("completed", "failed", "aborted") else None

        assert await until(mission_done, wall_s(speed, 200), "the mission to end") == "completed"

        r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close", {"reason": "all clear"})
        assert r.status_code == 200 and r.json()["state"] == "closed"
        home_s = 60 / 1.5 + distance_m(lat, lon, *offset(0, 0)) / cruise + 60 / 0.7 + 20

        def landed() -> bool:
            s = svc.runtime.fleet.latest(1)
            return s is not None and not s.in_air and not s.armed

        await until(landed, wall_s(speed, home_s), "the drone home and landed")
        snap = svc.runtime.fleet.latest(1)
        assert distance_m(snap.lat, snap.lon, *offset(*DOCKS[0])) < 10
        listed = (await svc.get("olga", "/api/v1/vehicles")).json()["items"]
        assert all(v["link"]["state"] == "up" and not v["health"]["in_air"] for v in listed)
