"""Dispatch against simulated vehicles through real MAVSDK: who is chosen, how it flies, relief, payload."""

from __future__ import annotations

import math
import time

import pytest

from mission.payload.actions import message_value
from tests.integration.test_dispatch_support import DispatchService, dispatch_service, offset, until

pytestmark = pytest.mark.timeout(60)

MAV_CMD_NAV_TAKEOFF = 22
MAV_CMD_DO_ORBIT = 34
MAV_CMD_DO_SET_ACTUATOR = 187


def dist_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dn = math.radians(lat2 - lat1) * 6371000.0
    de = math.radians(lon2 - lon1) * 6371000.0 * math.cos(math.radians(lat1))
    return math.hypot(dn, de)


async def incident(svc: DispatchService, north_m: float, east_m: float, **extra) -> dict:
    lat, lon = offset(north_m, east_m)
    body = {"lat": lat, "lon": lon, "kind": "intrusion", "priority": 2, **extra}
    r = await svc.post("dan", "/api/v1/incidents", body)
    assert r.status_code == 201, r.text
    return r.json()


async def get_incident(svc: DispatchService, incident_id: int) -> dict:
    r = await svc.get("olga", f"/api/v1/incidents/{incident_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_low_battery_drone_is_never_chosen_and_the_fit_one_flies_to_orbit(tmp_path):
    async with dispatch_service(tmp_path, docks=[(0, 300), (0, 1500)]) as svc:
        svc.vehicle(1).battery_sag(70.0)  # 30 % left: cannot stay 10 minutes overhead
        await until(lambda: (svc.runtime.fleet.latest(1).battery_pct or 100) < 35, 5, "the sag to show")
        t0 = time.monotonic()
        inc = await incident(svc, 200, 500, overhead_s=600, alt_m=50)
        assert inc["vehicle_id"] == 2 and inc["state"] in ("assigned", "en_route")
        weak = next(c for c in inc["decision"]["candidates"] if c["vehicle_id"] == 1)
        assert not weak["feasible"] and weak["reason"].startswith("battery too low")
        assert inc["decision"]["chosen_vehicle_id"] == 2
        # Taken off without any pilot click, quickly.
        await until(lambda: svc.runtime.dispatcher.takeoff_ack_s, 5, "the take-off ack")
        assert svc.runtime.dispatcher.takeoff_ack_s[0] <= 1.0
        assert time.monotonic() - t0 < 5
        scene = offset(200, 500)

        async def on_scene() -> bool:
            return (await get_incident(svc, inc["id"]))["state"] == "on_scene"

        await until(on_scene, 30, "arrival on scene")
        v2 = svc.vehicle(2).state
        assert dist_m(v2.lat, v2.lon, *scene) < 60 and v2.alt_rel_m > 40
        await until(lambda: svc.vehicle(2).state.mode == "orbit", 5, "the orbit")
        sent = [c for c, _ in svc.vehicle(2).commands_received]
        assert MAV_CMD_NAV_TAKEOFF in sent and MAV_CMD_DO_ORBIT in sent
        assert not svc.vehicle(1).state.armed  # the weak one never left its dock
        times = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}/response")).json()
        assert 0 <= times["to_assigned_s"] <= times["to_airborne_s"] <= times["to_on_scene_s"]
        metrics = (await svc.get("olga", "/api/v1/dispatch/metrics")).json()
        assert metrics["incidents"] == 1 and metrics["on_scene"]["p50_s"] == pytest.approx(
            times["to_on_scene_s"]
        )
        # Closing sends it home.
        r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close", {"reason": "suspect left"})
        assert r.status_code == 200 and r.json()["state"] == "closed"
        await until(
            lambda: svc.vehicle(2).state.mode in ("return", "land") or not svc.vehicle(2).state.armed,
            5,
            "the return home",
        )
        events = [e["kind"] for e in (await svc.get("olga", f"/api/v1/incidents/{inc['id']}/events")).json()]
        assert events == ["created", "assigned", "launch", "airborne", "en_route", "on_scene", "closed"]


async def test_patrolling_drone_near_the_incident_beats_a_farther_docked_one(tmp_path):
    from datetime import timedelta

    async with dispatch_service(tmp_path, docks=[(0, 0), (0, 2600)]) as svc:
        clock = svc.runtime.scheduler.clock  # sim time: a minute every 3 s
        a, b = offset(0, 200), offset(0, 1400)
        c, d = offset(300, 1400), offset(300, 200)
        line = {"type": "LineString", "coordinates": [[p[1], p[0]] for p in (a, b, c, d, a)]}
        fire_at = (clock.now() + timedelta(minutes=1)).minute  # once an hour, at the next minute
        body = {
            "name": "east loop",
            "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 40}},
            "cron": f"{fire_at} * * * *",
            "estimated_duration_s": 400,
        }
        r = await svc.post("dan", "/api/v1/patrols", body)
        assert r.status_code == 201, r.text
        # The scheduler launches it at the next minute onto the drone docked next to it.
        runs = await until(lambda: _launched_runs(svc), 30, "the patrol launch")
        assert runs[0]["vehicle_id"] == 1
        await until(
            lambda: _east_of(svc.vehicle(1).state, 900), 20, "the patrol drone to reach the east side"
        )
        inc = await incident(svc, 250, 1700, overhead_s=120)
        assert inc["vehicle_id"] == 1, inc["decision"]["explanation"]
        chosen = inc["decision"]["candidates"][0]
        assert chosen["activity"] == "patrol" and chosen["preempts_patrol_run"] == runs[0]["id"]
        docked = next(x for x in inc["decision"]["candidates"] if x["vehicle_id"] == 2)
        assert docked["feasible"] and docked["eta_s"] > chosen["eta_s"]

        async def on_scene() -> bool:
            return (await get_incident(svc, inc["id"]))["state"] == "on_scene"

        await until(on_scene, 30, "the patrol drone on scene")
        run = (await svc.get("olga", f"/api/v1/patrols/{runs[0]['patrol_id']}/runs")).json()["items"]
        assert any(x["status"] == "preempted" for x in run)
        gaps = await until(lambda: _gaps(svc), 10, "the coverage gap")
        assert gaps[0]["vehicle_id"] == 1 and gaps[0]["incident_id"] == inc["id"]
        assert gaps[0]["remaining"]["waypoints"]
        # The unfinished patrol is flown by the free docked drone.
        backfilled = await until(lambda: _gaps(svc, resolved=True), 15, "the backfill")
        assert backfilled[0]["resolution"].startswith("backfilled by vehicle 2")
        await until(lambda: svc.vehicle(2).state.armed, 10, "the backfill drone to take off")


async def _launched_runs(svc: DispatchService) -> list[dict]:
    items = (await svc.get("olga", "/api/v1/patrols/runs")).json()["items"]
    return [r for r in items if r["status"] == "launched"]


async def _gaps(svc: DispatchService, *, resolved: bool | None = None) -> list[dict]:
    items = (await svc.get("olga", "/api/v1/dispatch/coverage-gaps")).json()["items"]
    return [g for g in items if resolved is None or (g["ended_at"] is not None) == resolved]


def _east_of(state, east_m: float) -> bool:
    _, lon = offset(0, east_m)
    return state.alt_rel_m > 20 and state.lon >= lon


async def test_relief_is_on_scene_before_the_first_drone_leaves(tmp_path):
    async with dispatch_service(tmp_path, docks=[(0, 0), (0, 900)]) as svc:
        inc = await incident(svc, 300, 300, overhead_s=3600, alt_m=50)
        assert inc["vehicle_id"] == 1
        scene = offset(300, 300)

        async def on_scene() -> bool:
            return (await get_incident(svc, inc["id"]))["state"] == "on_scene"

        await until(on_scene, 30, "the first drone on scene")
        svc.vehicle(1).battery_sag(50.0)  # now it can stay only a few minutes more
        arrived = left = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and left is None:
            v1, v2 = svc.vehicle(1).state, svc.vehicle(2).state
            if arrived is None and v2.alt_rel_m > 30 and dist_m(v2.lat, v2.lon, *scene) < 80:
                arrived = time.monotonic()
            if dist_m(v1.lat, v1.lon, *scene) > 120:
                left = time.monotonic()
            await _sleep(0.05)
        assert left is not None, "the first drone never left"
        assert arrived is not None and arrived < left, (
            "the relief was not overhead before the first drone left"
        )
        events = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}/events")).json()
        kinds = [e["kind"] for e in events]
        assert kinds.index("relief_dispatched") < kinds.index("relieved")
        assert (await get_incident(svc, inc["id"]))["vehicle_id"] == 2
        await until(lambda: svc.vehicle(1).state.mode in ("return", "land"), 5, "the first drone going home")


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


async def test_payload_actions_reach_the_vehicle_as_actuator_commands_and_are_recorded(tmp_path):
    async with dispatch_service(tmp_path, docks=[(0, 0)]) as svc:
        r = await svc.post(
            "dan",
            "/api/v1/payload/messages",
            {"name": "leave the area", "slot": 3, "kind": "tts", "text": "请离开该区域"},
        )
        assert r.status_code == 201, r.text
        message_id = r.json()["id"]
        docks = (await svc.get("olga", "/api/v1/dispatch/docks")).json()
        assert docks[0]["vehicle_id"] == 1 and docks[0]["docked"] and docks[0]["battery_pct"] > 90
        assert docks[0]["full_in_s"] is not None
        # A pilot needs control of the vehicle, as for /commands payload.
        r = await svc.post("alice", "/api/v1/payload/vehicles/1/actions", {"action": "siren.on"})
        assert r.status_code == 403 and "take control of vehicle 1" in r.json()["error"]["message"]
        assert (await svc.post("alice", "/api/v1/vehicles/1/control")).status_code == 200
        r = await svc.post(
            "alice",
            "/api/v1/payload/vehicles/1/actions",
            {"action": "speaker.play", "message_id": message_id},
        )
        assert r.status_code == 201, r.text
        r = await svc.post("alice", "/api/v1/payload/vehicles/1/actions", {"action": "spotlight.strobe"})
        assert r.status_code == 201, r.text
        events = await until(
            lambda: svc.vehicle(1).payload_events if len(svc.vehicle(1).payload_events) >= 2 else None,
            5,
            "the payload events",
        )
        assert [(e.index, e.value, e.source) for e in events] == [
            (1, pytest.approx(message_value(3), abs=1e-4), "command"),
            (2, 0.0, "command"),
        ]
        assert sum(1 for c, _ in svc.vehicle(1).commands_received if c == MAV_CMD_DO_SET_ACTUATOR) >= 2
        uses = (await svc.get("olga", "/api/v1/payload/uses")).json()["items"]
        assert [(u["action"], u["actor"], u["ok"]) for u in uses] == [
            ("spotlight.strobe", "alice", True),
            ("speaker.play", "alice", True),
        ]
        # Acked but not confirmed: sim/ sends no output reports to confirm an actuator by.
        assert {(u["delivery"], u["delivery_note"]) for u in uses} == {
            ("accepted", "accepted; the vehicle reports no actuator outputs to confirm it")
        }
        assert uses[0]["lat"] == pytest.approx(offset(0, 0)[0], abs=1e-4)
        audit = (await svc.get("root", "/api/v1/audit?action=cmd.set_actuator")).json()["items"]
        played = [e for e in audit if e["details"]["payload"] == "speaker.play"]
        assert played and played[0]["actor"] == "alice" and played[0]["details"]["message_id"] == message_id
        assert (
            await svc.client.delete("/api/v1/vehicles/1/control", headers=svc.auth("alice"))
        ).status_code == 200
        # A dispatcher needs no control, but only on a vehicle serving an open incident.
        r = await svc.post("dan", "/api/v1/payload/vehicles/1/actions", {"action": "siren.on"})
        assert r.status_code == 403 and "not assigned to an open incident" in r.json()["error"]["message"]
        lat, lon = offset(100, 100)
        body = {"lat": lat, "lon": lon, "kind": "fight", "auto_dispatch": False}
        inc = (await svc.post("dan", "/api/v1/incidents", body)).json()
        r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/dispatch?launch=false", None)
        assert r.status_code == 200 and r.json()["chosen_vehicle_id"] == 1
        r = await svc.post("dan", "/api/v1/payload/vehicles/1/actions", {"action": "siren.on"})
        assert r.status_code == 201, r.text
        assert r.json()["incident_id"] == inc["id"] and r.json()["actor"] == "dan"
        # ... and never against the pilot who holds it.
        assert (await svc.post("alice", "/api/v1/vehicles/1/control")).status_code == 200
        r = await svc.post("dan", "/api/v1/payload/vehicles/1/actions", {"action": "siren.off"})
        assert r.status_code == 403 and "controlled by alice" in r.json()["error"]["message"]
        assert (
            await svc.client.delete("/api/v1/vehicles/1/control", headers=svc.auth("alice"))
        ).status_code == 200
        # Observers cannot use payloads.
        r = await svc.post("olga", "/api/v1/payload/vehicles/1/actions", {"action": "siren.on"})
        assert r.status_code == 403
        # A failed send is audited too (intent before the send, the failure after).
        svc.vehicle(1).blackout(30.0)
        r = await svc.post("dan", "/api/v1/payload/vehicles/1/actions", {"action": "siren.off"})
        assert r.status_code == 503, r.text
        svc.vehicle(1).blackout(0.0)
        entries = (await svc.get("root", "/api/v1/audit?limit=5")).json()["items"]
        assert [e["action"] for e in entries[:2]] == ["cmd.set_actuator.failed", "cmd.set_actuator"]
        assert entries[0]["details"]["payload"] == "siren.off"
        assert (await svc.get("root", "/api/v1/audit/verify")).json()["ok"]


async def test_with_no_drone_to_backfill_the_patrol_resumes_after_the_incident(tmp_path):
    from datetime import timedelta

    async with dispatch_service(tmp_path, docks=[(0, 0)]) as svc:
        clock = svc.runtime.scheduler.clock
        pts = [offset(0, 200), offset(0, 900), offset(300, 900), offset(300, 200), offset(0, 200)]
        line = {"type": "LineString", "coordinates": [[p[1], p[0]] for p in pts]}
        fire_at = (clock.now() + timedelta(minutes=1)).minute
        body = {
            "name": "short loop",
            "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 40}},
            "cron": f"{fire_at} * * * *",
            "estimated_duration_s": 300,
        }
        assert (await svc.post("dan", "/api/v1/patrols", body)).status_code == 201
        runs = await until(lambda: _launched_runs(svc), 30, "the patrol launch")
        mission_id = runs[0]["mission_id"]
        await until(lambda: _east_of(svc.vehicle(1).state, 500), 20, "the patrol under way")
        inc = await incident(svc, 150, 700, overhead_s=600)
        assert inc["vehicle_id"] == 1

        async def on_scene() -> bool:
            return (await get_incident(svc, inc["id"]))["state"] == "on_scene"

        await until(on_scene, 30, "the patrol drone on scene")
        mission = (await svc.get("olga", f"/api/v1/missions/{mission_id}")).json()
        assert mission["state"] == "paused"
        gaps = await _gaps(svc)
        assert gaps[0]["resolution"] == "resume later"  # nobody else to fly it
        r = await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close", {"reason": "handled"})
        assert r.status_code == 200

        async def resumed() -> bool:
            m = (await svc.get("olga", f"/api/v1/missions/{mission_id}")).json()
            return m["state"] == "active"

        await until(resumed, 10, "the patrol to resume")
        await until(lambda: svc.vehicle(1).state.mode == "mission", 5, "the vehicle back on its mission")
        gap = (await until(lambda: _gaps(svc, resolved=True), 5, "the gap closed"))[0]
        assert gap["resolution"] == "resumed by vehicle 1" and gap["ended_at"]
