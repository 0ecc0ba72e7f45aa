"""A geofence breach over HTTP, on sim/ and on PX4 SITL: the service uploads the mission's fence, the vehicle
is driven across it from outside the service, and the service sees and reports the vehicle's own reaction.

The push comes the way a second ground station or an RC pilot would give it: a DO_ORBIT sent straight to
the vehicle on its MAVLink link, past the service's gate and executor (which would refuse it). Its centre
is inside the fence, so PX4 takes it (it checks only the centre); the circle runs beyond the fence, and the
vehicle's GF_ACTION (PX4's default, hold) stops it at the edge. PX4 says no more than "Failsafe activated":
the service reads the breach from the mode change and the fence it uploaded.
"""

from __future__ import annotations

import pytest

from flightplans.geodesy import LocalFrame
from mission.link.types import FlightMode
from mission.missions.codec import geofence_from_json
from mission.missions.fence import NEAR_EDGE_M, edge_m
from tests.api.test_missions_support import running_service
from tests.support.geo import offset
from tests.support.vehicles import PX4, VEHICLE_KINDS, speed_for, wall_s
from tests.support.wait import until

SIM_SPEED = 10.0
pytestmark = pytest.mark.timeout(wall_s(speed_for(PX4), 360.0, slack_s=90.0))
# ~600 m due east of the dock at 30 m: long enough to be mid-mission when the push comes.
LINE = {"type": "LineString", "coordinates": [[109.9805, 39.8200], [109.9875, 39.8200]]}
FENCE_MARGIN_M = 150.0  # the inclusion fence runs this far around the mission's path
ORBIT_OFFSET_M = 30.0  # the orbit's centre, north of the vehicle: inside the fence
ORBIT_RADIUS_M = 300.0  # so the vehicle heads 270 m south for the circle, through the fence's edge


@pytest.mark.parametrize("kind", VEHICLE_KINDS)
async def test_a_vehicle_pushed_across_its_fence_holds_and_the_service_reports_it(tmp_path, kind):
    speed = speed_for(kind, SIM_SPEED)
    async with running_service(
        tmp_path, docks=[(0.0, 0.0)], vehicles=kind, speed=speed, fence_margin_m=FENCE_MARGIN_M
    ) as svc:
        body = {
            "name": "east line",
            "vehicle_id": 1,
            "plan": {"kind": "custom", "geometry": LINE, "params": {"alt_m": 30}},
        }
        mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
        r = await svc.post("alice", f"/api/v1/missions/{mid}/validate")
        assert r.status_code == 200, r.text
        fence = geofence_from_json(r.json()["geofence"])
        r = await svc.post("alice", f"/api/v1/missions/{mid}/launch")
        assert r.status_code == 200 and r.json()["state"] == "active", r.text
        fleet = svc.runtime.fleet

        def cruising():
            s = fleet.latest(1)
            return (
                s is not None
                and s.mode is FlightMode.MISSION
                and (s.alt_rel_m or 0.0) > 20
                and s.mission.current >= 1
            )

        await until(cruising, wall_s(speed, 90.0), "the vehicle cruising its mission")
        here = fleet.latest(1)
        assert here is not None and here.lat is not None and here.lon is not None
        centre = offset(ORBIT_OFFSET_M, 0.0, origin=(here.lat, here.lon))
        assert edge_m(fence, lat=centre[0], lon=centre[1]) < -30, (
            "the orbit's centre must be inside the fence"
        )
        # The push, from outside the service: straight on the vehicle's link, no gate, no audit.
        await fleet.link(1).orbit(centre[0], centre[1], 30.0, radius_m=ORBIT_RADIUS_M, speed_m_s=5.0)

        async def state():
            return (await svc.get("olga", f"/api/v1/missions/{mid}")).json()["state"]

        # The service sees the vehicle leave its mission on its own: the mission is paused, by the vehicle.
        await until(lambda: _equal(state(), "paused"), wall_s(speed, 20.0), "the mission paused")
        # ... then the vehicle's breach action (GF_ACTION, hold) at the fence's edge, audited as a breach.
        breach = await until(
            lambda: _breach(svc), wall_s(speed, 90.0), "a geofence breach in the audit log", every_s=0.3
        )
        assert breach["actor"] == "vehicle" and breach["target"] == f"mission:{mid}"
        assert breach["details"]["mode"] == "hold", breach
        snap = fleet.latest(1)
        assert snap is not None and snap.mode is FlightMode.HOLD and snap.in_air
        # It stopped at the edge, not out on the orbit's circle (270 m south of where it was pushed).
        edge = edge_m(fence, lat=snap.lat, lon=snap.lon)
        assert -NEAR_EDGE_M <= edge <= 25.0, f"held {edge:.0f} m from the fence's edge"
        south = LocalFrame(here.lat, here.lon).point_to_local(snap.lat, snap.lon)[1]
        assert south < -60.0, f"held only {-south:.0f} m south of where it was pushed"
        events = (await svc.get("olga", f"/api/v1/missions/{mid}/events")).json()["items"]
        paused = events[-1]
        assert paused["to_state"] == "paused" and paused["actor"] == "vehicle", events
        assert "switched from mission to" in paused["reason"] and "on its own" in paused["reason"], paused
        # The pilot brings it home: the mission ends aborted, and nothing is left armed.
        r = await svc.post("alice", f"/api/v1/missions/{mid}/return")
        assert r.status_code == 200 and r.json()["state"] == "returning", r.text
        await until(lambda: _equal(state(), "aborted"), wall_s(speed, 200.0), "the vehicle home")
        snap = fleet.latest(1)
        assert snap is not None and not snap.armed and not snap.in_air


async def _equal(coro, expected):
    return (await coro) == expected


async def _breach(svc):
    entries = [e for e in await svc.audit() if e["action"] == "vehicle.geofence_breach"]
    return entries[0] if entries else None
