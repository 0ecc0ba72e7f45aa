"""A serious incident's cordon takes a patrol drone that is near (airborne: no take-off, a short way) over
a far docked one; the patrol is preempted and its coverage gap backfilled by the docked drone, the dispatch
way."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.test_dispatch_flights import _east_of, _gaps, _launched_runs
from tests.integration.test_dispatch_support import dispatch_service, offset, until

# The incident's own dispatch finds no drone (none carries a thermal camera): the patrol drone stays free.
NO_DRONE_FITS = {"required_capabilities": ["thermal"]}
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.mark.parametrize("priority", [1, 5])
async def test_a_cordon_takes_a_patrol_drone_for_a_serious_incident_and_its_patrol_is_backfilled(
    tmp_path, priority
):
    async with dispatch_service(tmp_path, docks=[(0, 0), (0, 3200)], cordon_hold_s=300.0) as svc:
        clock = svc.runtime.scheduler.clock  # sim time: a minute every 3 s
        a, b = offset(0, 200), offset(0, 1400)
        c, d = offset(300, 1400), offset(300, 200)
        line = {"type": "LineString", "coordinates": [[p[1], p[0]] for p in (a, b, c, d, a)]}
        fire_at = (clock.now() + timedelta(minutes=1)).minute
        body = {
            "name": "east loop",
            "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 40}},
            "cron": f"{fire_at} * * * *",
            "estimated_duration_s": 400,
        }
        r = await svc.post("dan", "/api/v1/patrols", body)
        assert r.status_code == 201, r.text
        runs = await until(lambda: _launched_runs(svc), 30, "the patrol launch")
        assert runs[0]["vehicle_id"] == 1
        await until(
            lambda: _east_of(svc.vehicle(1).state, 900), 40, "the patrol drone to reach the east side"
        )
        lat, lon = offset(150, 1500)
        r = await svc.post(
            "dan",
            "/api/v1/incidents",
            {"lat": lat, "lon": lon, "kind": "robbery", "priority": priority, **NO_DRONE_FITS},
        )
        assert r.status_code == 201, r.text
        incident_id = r.json()["id"]
        cordon = {"lat": lat, "lon": lon, "radii_m": [150], "stations_per_ring": [1], "alt_m": 40}
        r = await svc.post("dan", "/api/v1/cordons", {**cordon, "incident_id": incident_id})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        station = r.json()["stations"][0]
        if priority > 3:  # not serious (dispatch_preempt_max_priority 3): patrols are left alone
            assert station["vehicle_id"] == 2, f"{station}"
            assert await _launched_runs(svc) and not await _gaps(svc)
            return
        assert station["vehicle_id"] == 1, f"{station}"  # the patrol drone: nearer, already in the air

        async def manned() -> bool:
            s = (await svc.get("olga", f"/api/v1/cordons/{cid}")).json()["stations"][0]
            return s["state"] == "manned" and s["vehicle_id"] == 1

        await until(manned, 60, "the patrol drone on station")
        run = (await svc.get("olga", f"/api/v1/patrols/{runs[0]['patrol_id']}/runs")).json()["items"]
        assert any(x["status"] == "preempted" for x in run)
        gaps = await until(lambda: _gaps(svc), 10, "the coverage gap")
        assert gaps[0]["vehicle_id"] == 1 and gaps[0]["incident_id"] == incident_id
        backfilled = await until(lambda: _gaps(svc, resolved=True), 20, "the backfill")
        assert backfilled[0]["resolution"].startswith("backfilled by vehicle 2")
