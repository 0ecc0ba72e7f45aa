"""Two real ``skywarden serve`` processes on one PostgreSQL, sim vehicles streaming to both.

Leases split the fleet; a pilot's commands sent to the instance that does not own the vehicle fly it (the
owner answers, audits once); ``kill -9`` of the owner mid-flight: the survivor takes the vehicle over within
10 s (PX4's data-link-loss failsafe COM_DL_LOSS_T is 10 s by default), the flight completes exactly once,
the audit chain verifies, and a websocket client on the survivor saw every vehicle throughout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.cluster.instances import ServeCluster, until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]


async def watch(
    url: str, token: str, seen: dict[int, list[float]], events: list[dict], *, charge: bool = False
) -> None:
    """A panel's websocket on one instance: when each vehicle's snapshots arrived, and every event."""
    async with connect(url.replace("http", "ws") + "/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "snapshot" and msg.get("link_up") and (not charge or msg.get("battery_pct")):
                seen.setdefault(msg["vehicle_id"], []).append(time.monotonic())
            elif msg["type"] == "event":
                events.append(msg)


async def armed(cl: ServeCluster, k: int, vid: int) -> None:
    """Arm through instance k, once the owner's telemetry of the fresh link has settled (charge known)."""
    deadline = time.monotonic() + 30
    while True:
        r = await cl.post(k, "alice", f"/api/v1/vehicles/{vid}/commands", {"command": "arm", "params": {}})
        if r.status_code == 200:
            return
        if r.json()["error"]["code"] != "vehicle_unavailable" or time.monotonic() > deadline:
            raise AssertionError(r.text)
        await asyncio.sleep(0.5)


def worst_gap_s(times: list[float], start: float, end: float) -> float:
    inside = [start, *(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


async def test_two_instances_share_the_fleet_forward_commands_and_survive_a_kill_9(
    pg_url: str, tmp_path: Path
) -> None:
    async with ServeCluster(pg_url, tmp_path, instances=2, vehicles=4) as cl:
        ids = cl.vehicle_ids
        await until(lambda: len(cl.owners()) == 4, 30, "every vehicle owned")
        await until(
            lambda: sorted(o for o, _ in cl.owners().values()).count("i0") == 2, 20, "an even split (2 + 2)"
        )
        owners = cl.owners()
        vid = next(v for v in ids if owners[v][0] == "i0")
        sim = cl.sims.vehicles[ids.index(vid)] if cl.sims else None
        assert sim is not None

        seen: dict[int, list[float]] = {}
        events: list[dict] = []
        watcher = asyncio.create_task(watch(cl.nodes[1].url, cl.tokens["olga"], seen, events))
        try:
            await until(lambda: set(seen) == set(ids), 20, "the survivor's websocket sees every vehicle")

            # a pilot's commands on the non-owner fly the vehicle (forwarded to i0, answered by it)
            r = await cl.post(1, "alice", f"/api/v1/vehicles/{vid}/control")
            assert r.status_code == 200, r.text
            await armed(cl, 1, vid)
            takeoff = {"command": "takeoff", "params": {"alt_m": 25}}
            r = await cl.post(1, "alice", f"/api/v1/vehicles/{vid}/commands", takeoff)
            assert r.status_code == 200, r.text
            await until(lambda: sim.state.alt_rel_m > 20, 40, "take-off")
            takeoffs = cl.sql(
                "SELECT count(*) FROM audit_log WHERE action = 'cmd.takeoff' AND target = :t",
                t=f"vehicle:{vid}",
            )
            assert takeoffs[0][0] == 1  # audited once, by the owner
            await until(  # the owner's events reach the other instance's panel
                lambda: any(
                    e["kind"] == "vehicle.command" and e["data"].get("via") == "i0" and e["vehicle_id"] == vid
                    for e in events
                ),
                10,
                "the owner's command event on i1's websocket",
            )
            lat0, lon0 = sim.state.lat, sim.state.lon
            north = lat0 + 250 / 111_320.0
            goto = {"command": "goto", "params": {"lat": north, "lon": lon0, "alt_m": 25}}
            r = await cl.post(1, "alice", f"/api/v1/vehicles/{vid}/commands", goto)
            assert r.status_code == 200, r.text
            await until(lambda: (sim.state.lat - lat0) * 111_320 > 60, 40, "on its way north")
            r = await cl.post(
                1, "alice", f"/api/v1/vehicles/{vid}/commands", {"command": "return", "params": {}}
            )
            assert r.status_code == 200, r.text
            returns = cl.sql(
                "SELECT id FROM flights WHERE vehicle_id = :v AND purpose = 'return' ORDER BY id", v=vid
            )
            assert len(returns) == 1

            leaders = {}
            for k in (0, 1):
                health = (await cl.get(k, "olga", "/api/v1/health")).json()
                leaders.update({name: health["instance_id"] for name in health["leads"]})
            assert set(leaders) == {
                "overwatch",
                "patrols",
                "operations",
            }  # each singleton runs on one instance

            # kill -9 of the owner mid-return
            killed_at = time.monotonic()
            cl.kill(0)
            took = await until(lambda: cl.owners().get(vid, ("", 0))[0] == "i1", 15, "takeover")
            assert took < 10.0, took
            assert cl.owners()[vid][1] > owners[vid][1]  # a new epoch
            await until(lambda: all(o == "i1" for o, _ in cl.owners().values()), 15, "all of i0's vehicles")

            async def survivor_leads() -> bool:
                health = (await cl.get(1, "olga", "/api/v1/health")).json()
                return set(health["leads"]) == {"overwatch", "patrols", "operations"}

            await until(survivor_leads, 15, "the singletons on the survivor")
            await until(
                lambda: (
                    cl.sql("SELECT state FROM flights WHERE id = :f", f=returns[0][0])[0][0] == "completed"
                ),
                120,
                "the return flight completed by the survivor",
            )
            assert not sim.state.armed or sim.state.alt_rel_m < 1.0
            home_m = math.hypot((sim.state.lat - lat0) * 111_320, 0.0)
            assert home_m < 30, home_m
            again = cl.sql("SELECT count(*) FROM flights WHERE vehicle_id = :v AND purpose = 'return'", v=vid)
            assert again[0][0] == 1  # continued, never launched twice
            recovered = cl.sql("SELECT count(*) FROM audit_log WHERE action = 'flight.recovered'")
            assert recovered[0][0] >= 1
            end = time.monotonic()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        for v in ids:  # the survivor's panel saw every vehicle throughout, the killed owner's too
            assert worst_gap_s(seen.get(v, []), killed_at - 2, end) < 3.0, (v, "snapshot gap")
        r = await cl.get(1, "root", "/api/v1/audit/verify")
        assert r.status_code == 200 and r.json()["ok"], r.text


async def test_three_instances_a_dispatch_flight_goes_on_after_its_owner_is_killed(
    pg_url: str, tmp_path: Path
) -> None:
    """The incident goes to an instance that does not own the chosen drone: the owner picks the recorded
    flight up and flies it; killed mid-way, a survivor takes it over and it reaches the scene once."""
    auto = {"SKYWARDEN_DISPATCH_AUTO_LAUNCH": "true"}  # priority 1 launches at once
    async with ServeCluster(pg_url, tmp_path, instances=3, vehicles=3, env=auto) as cl:
        ids = cl.vehicle_ids
        await until(lambda: len(cl.owners()) == 3, 30, "every vehicle owned")
        await until(lambda: len({o for o, _ in cl.owners().values()}) == 3, 30, "one vehicle each")
        assert cl.sims is not None
        north = cl.sims.vehicles[-1].state  # the northernmost drone is the nearest to the incident
        target = ids[-1]
        owner = cl.index_of(cl.owners()[target][0])
        reporter = (owner + 1) % 3
        charged: dict[int, list[float]] = {}
        watcher = asyncio.create_task(
            watch(cl.nodes[reporter].url, cl.tokens["olga"], charged, [], charge=True)
        )
        try:  # the reporter ranks by what it knows: wait until it knows every drone's charge
            await until(lambda: set(charged) == set(ids), 30, "the reporter knowing every charge")
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        body = {"lat": north.lat + 400 / 111_320, "lon": north.lon, "kind": "intrusion", "priority": 1}
        r = await cl.post(reporter, "dan", "/api/v1/incidents", body)
        assert r.status_code == 201, r.text
        incident = r.json()["id"]
        assert r.json()["vehicle_id"] == target

        def incident_state() -> tuple[str, int | None]:
            row = cl.sql("SELECT state, vehicle_id FROM incidents WHERE id = :i", i=incident)[0]
            return row[0], row[1]

        try:
            await until(lambda: incident_state()[0] in ("en_route", "on_scene"), 60, "en route")
        except AssertionError:
            incident_row = cl.sql(
                "SELECT state, vehicle_id, decision, close_reason FROM incidents WHERE id = :i", i=incident
            )
            flights_rows = cl.sql("SELECT id, vehicle_id, purpose, state, outcome FROM flights")
            raise AssertionError(
                f"incident {incident_row}; flights {flights_rows}; body {r.json()}"
            ) from None
        assert incident_state()[1] == target
        sim = cl.sims.vehicles[-1]
        await until(lambda: sim.state.alt_rel_m > 10, 30, "airborne")
        cl.kill(owner)
        took = await until(lambda: cl.owners().get(target, ("", 0))[0] != f"i{owner}", 15, "takeover")
        assert took < 10.0, took
        await until(lambda: incident_state()[0] == "on_scene", 90, "on scene after the takeover")
        dispatches = cl.sql(
            "SELECT count(*) FROM flights WHERE incident_id = :i AND purpose = 'dispatch'", i=incident
        )
        assert dispatches[0][0] == 1  # flown on, never launched twice
        takeoffs = cl.sql(
            "SELECT count(*) FROM audit_log WHERE action = 'cmd.takeoff' AND target = :t",
            t=f"vehicle:{target}",
        )
        assert takeoffs[0][0] == 1
        survivor = next(k for k in range(3) if k != owner)
        r = await cl.get(survivor, "root", "/api/v1/audit/verify")
        assert r.status_code == 200 and r.json()["ok"], r.text


async def test_a_mission_launched_on_the_non_owner_completes_after_its_owner_is_killed(
    pg_url: str, tmp_path: Path
) -> None:
    async with ServeCluster(pg_url, tmp_path, instances=2, vehicles=2) as cl:
        await until(lambda: len({o for o, _ in cl.owners().values()}) == 2, 30, "one vehicle each")
        vid = next(v for v, (o, _) in cl.owners().items() if o == "i0")
        assert cl.sims is not None
        sim = cl.sims.vehicles[cl.vehicle_ids.index(vid)]
        lat, lon = sim.state.lat, sim.state.lon
        d = 1 / 111_320
        line = {
            "type": "LineString",
            "coordinates": [[lon, lat + 60 * d], [lon + 250 * d, lat + 150 * d], [lon, lat + 250 * d]],
        }
        body = {
            "name": "loop",
            "vehicle_id": vid,
            "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
        }
        r = await cl.post(1, "alice", "/api/v1/missions", body)
        assert r.status_code == 201, r.text
        mid = r.json()["id"]
        assert (await cl.post(1, "alice", f"/api/v1/missions/{mid}/validate")).status_code == 200
        deadline = time.monotonic() + 30
        while True:  # forwarded to i0, which launches it (once its fresh link knows the charge)
            r = await cl.post(1, "alice", f"/api/v1/missions/{mid}/launch")
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert r.status_code == 200 and r.json()["state"] == "active", r.text

        def state() -> str:
            return str(cl.sql("SELECT state FROM missions WHERE id = :m", m=mid)[0][0])

        await until(lambda: sim.state.alt_rel_m > 20, 40, "climbing")
        cl.kill(0)
        took = await until(lambda: cl.owners().get(vid, ("", 0))[0] == "i1", 15, "takeover")
        assert took < 10.0, took
        await until(lambda: state() in ("completed", "aborted", "failed"), 120, "the mission's end")
        assert state() == "completed"
        uploads = cl.sql(
            "SELECT count(*) FROM audit_log WHERE action = 'cmd.upload_mission' AND target = :t",
            t=f"vehicle:{vid}",
        )
        assert uploads[0][0] == 1  # taken over as it flew, never uploaded or launched again
        r = await cl.get(1, "root", "/api/v1/audit/verify")
        assert r.status_code == 200 and r.json()["ok"], r.text


async def test_a_patrol_goes_on_when_the_leader_flying_it_is_killed(pg_url: str, tmp_path: Path) -> None:
    """The leader's scheduler launches the patrol on a drone it owns; killed mid-patrol, the survivor leads
    the scheduler (the slot is not launched again) and flies the patrol's mission to its end."""
    speed = 5.0
    boundary = (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    clock_start = boundary - timedelta(seconds=50)  # the slot comes 50 sim s (10 wall s) after start
    env = {"SKYWARDEN_PATROL_CLOCK_START": clock_start.isoformat()}
    async with ServeCluster(pg_url, tmp_path, instances=2, vehicles=2, speed=speed, env=env) as cl:
        await until(lambda: len({o for o, _ in cl.owners().values()}) == 2, 30, "one vehicle each")
        assert cl.sims is not None
        home = cl.sims.vehicles[0].state
        d = 1 / 111_320
        line = {
            "type": "LineString",
            "coordinates": [[home.lon + 80 * d, home.lat], [home.lon + 250 * d, home.lat + 150 * d]],
        }
        body = {
            "name": "loop",
            "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
            "cron": f"{boundary.minute} * * * *",
            "estimated_duration_s": 300,
        }
        r = await cl.post(1, "dan", "/api/v1/patrols", body)
        assert r.status_code == 201, r.text
        await until(
            lambda: cl.sql("SELECT count(*) FROM patrol_runs WHERE status = 'launched'")[0][0] == 1,
            60,
            "launch",
        )
        vid, mid = cl.sql("SELECT vehicle_id, mission_id FROM patrol_runs")[0]
        leader = cl.owners()[vid][0]
        sim = cl.sims.vehicles[cl.vehicle_ids.index(vid)]
        await until(lambda: sim.state.alt_rel_m > 15, 40, "the patrol drone climbing")
        k = cl.index_of(leader)
        cl.kill(k)
        survivor = 1 - k
        took = await until(lambda: cl.owners().get(vid, ("", 0))[0] == f"i{survivor}", 15, "takeover")
        assert took < 10.0, took

        async def leads() -> bool:
            return set((await cl.get(survivor, "olga", "/api/v1/health")).json()["leads"]) == {
                "overwatch",
                "patrols",
                "operations",
            }

        await until(leads, 15, "the survivor leading the scheduler")
        await until(
            lambda: (
                cl.sql("SELECT state FROM missions WHERE id = :m", m=mid)[0][0]
                in ("completed", "aborted", "failed")
            ),
            120,
            "the patrol's end",
        )
        assert cl.sql("SELECT state FROM missions WHERE id = :m", m=mid)[0][0] == "completed"
        assert cl.sql("SELECT count(*) FROM patrol_runs")[0][0] == 1  # the slot was not launched again
        assert cl.sql("SELECT count(*) FROM missions")[0][0] == 1
        r = await cl.get(survivor, "root", "/api/v1/audit/verify")
        assert r.status_code == 200 and r.json()["ok"], r.text


async def test_the_leaders_scheduler_launches_a_patrol_on_another_instances_drone(
    pg_url: str, tmp_path: Path
) -> None:
    """The patrol's own drone belongs to the instance that does not lead the scheduler: the run is handed to
    that owner, which launches it once (as ``system:scheduler``) and flies it to its end."""
    speed = 5.0
    boundary = (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    clock_start = boundary - timedelta(seconds=50)  # the slot comes 50 sim s (10 wall s) after start
    env = {"SKYWARDEN_PATROL_CLOCK_START": clock_start.isoformat()}
    async with ServeCluster(pg_url, tmp_path, instances=2, vehicles=2, speed=speed, env=env) as cl:
        await until(lambda: len({o for o, _ in cl.owners().values()}) == 2, 30, "one vehicle each")
        assert cl.sims is not None

        leaders: list[str] = []

        async def patrol_leader() -> bool:
            for k in (0, 1):
                health = (await cl.get(k, "olga", "/api/v1/health")).json()
                if "patrols" in health["leads"]:
                    leaders.append(str(health["instance_id"]))
                    return True
            return False

        await until(patrol_leader, 30, "a leader of the patrol scheduler")
        leader = leaders[-1]
        vid = next(v for v, (owner, _) in cl.owners().items() if owner != leader)
        owner = cl.owners()[vid][0]
        sim = cl.sims.vehicles[cl.vehicle_ids.index(vid)]
        home = sim.state
        d = 1 / 111_320
        line = {
            "type": "LineString",
            "coordinates": [[home.lon + 80 * d, home.lat], [home.lon + 200 * d, home.lat + 100 * d]],
        }
        body = {
            "name": "elsewhere",
            "plan": {"kind": "custom", "geometry": line, "params": {"alt_m": 30}},
            "cron": f"{boundary.minute} * * * *",
            "estimated_duration_s": 300,
            "vehicle_id": vid,
        }
        r = await cl.post(cl.index_of(leader), "dan", "/api/v1/patrols", body)
        assert r.status_code == 201, r.text
        await until(
            lambda: cl.sql("SELECT status FROM patrol_runs") in ([("launched",)], [("failed",)]),
            60,
            "the run launched (or failed)",
        )
        status, run_vid, mid, reason = cl.sql(
            "SELECT status, vehicle_id, mission_id, reason FROM patrol_runs"
        )[0]
        assert (status, run_vid) == ("launched", vid), reason
        launches = cl.sql(
            "SELECT actor, details FROM audit_log WHERE action = 'mission.launch' AND target = :t",
            t=f"mission:{mid}",
        )
        assert [a for a, _ in launches] == ["system:scheduler"]  # launched once, by the scheduler's actor
        await until(lambda: sim.state.alt_rel_m > 15, 40, "the patrol drone climbing")
        await until(
            lambda: (
                cl.sql("SELECT state FROM missions WHERE id = :m", m=mid)[0][0]
                in ("completed", "aborted", "failed")
            ),
            120,
            "the patrol's end",
        )
        assert cl.sql("SELECT state FROM missions WHERE id = :m", m=mid)[0][0] == "completed"
        assert cl.sql("SELECT count(*) FROM missions")[0][0] == 1
        assert cl.owners()[vid][0] == owner  # flown by its owner throughout
        r = await cl.get(0, "root", "/api/v1/audit/verify")
        assert r.status_code == 200 and r.json()["ok"], r.text
