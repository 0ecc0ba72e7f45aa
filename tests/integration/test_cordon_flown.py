"""A cordon flown with 7 sim drones: three rings of stations, each manned by the drone the min-max
assignment chose, holding there facing out along its line; one relieved on battery by the spare; ended."""

from __future__ import annotations

import math

import pytest

from flightplans.geodesy import LocalFrame
from mission.cordons.runner import AIM_AHEAD_M
from sim.camera import CameraConfig
from sim.config import SimConfig
from tests.integration.test_dispatch_support import dispatch_service, offset, until
from tests.support.geo import distance_m

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
DOCKS = [(0, 0), (300, 300), (-300, 300), (300, -300), (-300, -300), (0, 500), (0, -500)]


async def test_a_cordon_is_manned_held_relieved_and_ended(tmp_path):
    async with dispatch_service(tmp_path, docks=DOCKS, speed=10.0, event_rotate_at_pct=40.0) as svc:
        lat, lon = offset(100, 50)
        body = {
            "lat": lat,
            "lon": lon,
            "radii_m": [200, 320, 480],
            "stations_per_ring": [2, 2, 2],
            "alt_m": 40,
        }
        r = await svc.post("olga", "/api/v1/cordons", body)
        assert r.status_code == 403
        r = await svc.post("dan", "/api/v1/cordons", {**body, "radii_m": [300, 200]})
        assert r.status_code == 422 and "increase" in r.text
        r = await svc.post("dan", "/api/v1/cordons", body)
        assert r.status_code == 201, r.text
        cordon = r.json()
        cid = cordon["id"]
        stations = cordon["stations"]
        assert len(stations) == 6 and all(s["vehicle_id"] for s in stations)
        assert len({s["vehicle_id"] for s in stations}) == 6
        spare = ({1, 2, 3, 4, 5, 6, 7} - {s["vehicle_id"] for s in stations}).pop()

        async def read() -> dict:
            return (await svc.get("olga", f"/api/v1/cordons/{cid}")).json()

        async def all_manned() -> bool:
            return (await read())["report"]["manned"] == 6

        await until(all_manned, 120, "every station manned", every_s=0.5)
        rep = (await read())["report"]
        assert rep["first_station_s"] <= rep["last_station_s"]
        assert rep["per_ring"] == {str(k): {"manned": 2, "total": 2} for k in range(3)}
        for s in (await read())["stations"]:
            sim = svc.vehicle(s["vehicle_id"]).autopilot
            snap = svc.runtime.fleet.latest(s["vehicle_id"])
            assert distance_m(snap.lat, snap.lon, s["lat"], s["lon"]) < 25
            centre = distance_m(s["lat"], s["lon"], lat, lon)
            assert centre == pytest.approx(body["radii_m"][s["ring"]], abs=5)

            async def facing(sim=sim, want=s["look_deg"]) -> bool:
                return abs((sim.heading_deg - want + 180) % 360 - 180) < 10

            await until(facing, 30, f"station {s['ring']}:{s['index']} faces its line", every_s=0.2)

        # A drone low on charge is relieved by the spare; it leaves once the spare is in place.
        tired = stations[0]
        svc.vehicle(tired["vehicle_id"]).battery_sag(50)

        async def relieved() -> bool:
            s = next(
                x
                for x in (await read())["stations"]
                if x["ring"] == tired["ring"] and x["index"] == tired["index"]
            )
            return s["vehicle_id"] == spare and s["state"] == "manned"

        await until(relieved, 120, "the relief in place", every_s=0.5)
        audit = [e for e in await svc.audit() if e["action"] == "cordon.relieved"]
        assert audit and audit[0]["details"]["relieved"] == tired["vehicle_id"]

        r = await svc.post("dan", f"/api/v1/cordons/{cid}/end")
        assert r.status_code == 200 and r.json()["state"] == "ended"

        def all_home() -> bool:
            return all(not svc.runtime.fleet.latest(v).in_air for v in range(1, 8))

        await until(all_home, 120, "every cordon drone home", every_s=0.5)


async def test_a_station_left_by_a_pilot_takeover_is_refilled(tmp_path):
    async with dispatch_service(tmp_path, docks=DOCKS[:3], speed=10.0) as svc:
        lat, lon = offset(100, 0)
        body = {"lat": lat, "lon": lon, "radii_m": [250], "stations_per_ring": [2], "alt_m": 40}
        r = await svc.post("dan", "/api/v1/cordons", body)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]

        async def stations() -> list[dict]:
            return (await svc.get("olga", f"/api/v1/cordons/{cid}")).json()["stations"]

        async def all_manned() -> bool:
            return all(s["state"] == "manned" for s in await stations())

        await until(all_manned, 90, "both stations manned", every_s=0.5)
        taken = (await stations())[0]
        first = {s["vehicle_id"] for s in await stations()}
        spare = ({1, 2, 3} - first).pop()
        assert (await svc.post("alice", f"/api/v1/vehicles/{taken['vehicle_id']}/control")).status_code == 200

        async def refilled() -> bool:
            s = next(x for x in await stations() if x["index"] == taken["index"])
            return s["vehicle_id"] == spare and s["state"] == "manned"

        await until(refilled, 90, "the pilot's station refilled by the spare", every_s=0.5)
        snap = svc.runtime.fleet.latest(spare)
        assert distance_m(snap.lat, snap.lon, taken["lat"], taken["lon"]) < 25
        audit = [e for e in await svc.audit() if e["action"] == "cordon.refilled"]
        assert [a["details"]["vehicle_id"] for a in audit] == [spare]
        # The pilot's drone is not sent anywhere by the cordon: still held by the pilot.
        sup = (await svc.get("olga", "/api/v1/flights/supervision")).json()
        held = next(x for x in sup if x["vehicle_id"] == taken["vehicle_id"])
        assert (held["supervised_by"] or "").startswith("pilot:")

        assert (await svc.post("dan", f"/api/v1/cordons/{cid}/end")).status_code == 200
        await svc.client.delete(f"/api/v1/vehicles/{taken['vehicle_id']}/control", headers=svc.auth("alice"))
        others = first - {taken["vehicle_id"]} | {spare}

        def home() -> bool:
            return all(not svc.runtime.fleet.latest(v).in_air for v in others)

        await until(home, 120, "the cordon's drones home", every_s=0.5)


async def test_a_station_drone_faces_the_road_and_its_gimbal_looks_at_it(tmp_path):
    camera = SimConfig(camera=CameraConfig(width=320, height=180, fps=5.0, bitrate_bps=200_000))
    async with dispatch_service(
        tmp_path, docks=DOCKS[:1], speed=10.0, sim_config=camera, video_storage_dir=tmp_path / "video"
    ) as svc:
        lat, lon = offset(100, 0)
        body = {"lat": lat, "lon": lon, "radii_m": [200], "stations_per_ring": [1], "alt_m": 40}
        r = await svc.post("dan", "/api/v1/cordons", body)
        assert r.status_code == 201, r.text
        (station,) = r.json()["stations"]
        sim = svc.vehicle(1)

        def aimed() -> bool:
            return sim.camera.roi is not None

        await until(aimed, 90, "the gimbal aimed at the station", every_s=0.2)
        look = math.radians(station["look_deg"])
        want = LocalFrame(station["lat"], station["lon"]).point_to_wgs84(
            AIM_AHEAD_M * math.sin(look), AIM_AHEAD_M * math.cos(look)
        )
        roi_lat, roi_lon, roi_alt = sim.camera.roi
        assert distance_m(roi_lat, roi_lon, *want) < 2
        assert roi_alt == pytest.approx(svc.runtime.fleet.profile(1).home_alt_m, abs=0.5)
        snap = svc.runtime.fleet.latest(1)
        assert distance_m(snap.lat, snap.lon, station["lat"], station["lon"]) < 25
        assert abs((sim.autopilot.heading_deg - station["look_deg"] + 180) % 360 - 180) < 10
        audit = [e for e in await svc.audit() if e["action"].startswith("cmd.camera")]
        assert audit and audit[0]["actor"] == "system:cordons"
        assert (await svc.post("dan", f"/api/v1/cordons/{r.json()['id']}/end")).status_code == 200
        await until(lambda: not svc.runtime.fleet.latest(1).in_air, 120, "home", every_s=0.5)
