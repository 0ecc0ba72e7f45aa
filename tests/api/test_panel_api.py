"""The API the panel's jobs need: each user's language, schedules in words with their next runs, patrols
edited with their own vehicle or dock, zones split, merged, exported and imported (GeoJSON, KML), the
speaker's library edited, land-here and loop, and stable codes on refusals."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from mission.payload.actions import message_value
from tests.api.test_missions_support import HOSPITAL, free_udp_ports, running_service

pytestmark = pytest.mark.timeout(60)
SQUARE = [[109.97, 39.81], [109.99, 39.81], [109.99, 39.83], [109.97, 39.83], [109.97, 39.81]]
EAST = [[109.99, 39.81], [110.01, 39.81], [110.01, 39.83], [109.99, 39.83], [109.99, 39.81]]


@pytest.fixture
async def svc(tmp_path):
    async with running_service(tmp_path) as service:
        yield service


def _zone(name, ring, kind="patrol", **extra):
    return {"name": name, "kind": kind, "shape": {"type": "Polygon", "coordinates": [ring]}, **extra}


async def test_each_user_keeps_their_language(svc):
    assert (await svc.get("alice", "/api/v1/me/locale")).json() == {"locale": None}
    r = await svc.client.put("/api/v1/me/locale", json={"locale": "zh-CN"}, headers=svc.auth("alice"))
    assert r.status_code == 200 and r.json() == {"locale": "zh-CN"}
    assert (await svc.get("alice", "/api/v1/me/locale")).json() == {"locale": "zh-CN"}
    assert (await svc.get("bob", "/api/v1/me/locale")).json() == {"locale": None}  # per user
    r = await svc.client.put("/api/v1/me/locale", json={"locale": "fr"}, headers=svc.auth("alice"))
    assert r.status_code == 422 and "locale" in r.json()["error"]["message"]
    assert "user.locale" in [e["action"] for e in await svc.audit()]


async def test_schedule_preview_in_words_and_next_runs(svc):
    body = {"cron": "15 */2 * * *", "timezone": "UTC", "locale": "zh-CN", "count": 4}
    r = await svc.get("olga", "/api/v1/patrols/preview", **body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["description"] == "每2小时第15分"
    runs = [datetime.fromisoformat(t) for t in out["next_runs"]]
    assert len(runs) == 4 and all(t.minute == 15 and t.hour % 2 == 0 for t in runs)
    assert all(b - a == timedelta(hours=2) for a, b in itertools.pairwise(runs))
    r = await svc.get("olga", "/api/v1/patrols/preview", **{**body, "locale": "en"})
    assert r.json()["description"] == "every 2 hours at minute 15"
    # a night window keeps only the runs inside it, and says how many it skipped
    night = {"cron": "0 * * * *", "timezone": "Asia/Shanghai", "window_start": "22:00", "window_end": "02:00"}
    out = (await svc.get("olga", "/api/v1/patrols/preview", **night, count=8)).json()
    local_hours = {datetime.fromisoformat(t).astimezone().utcoffset() is not None for t in out["next_runs"]}
    assert local_hours == {True}
    hours = sorted({(datetime.fromisoformat(t) + timedelta(hours=8)).hour for t in out["next_runs"]})
    assert hours == [0, 1, 22, 23]
    assert out["skipped_outside_window"] > 0
    r = await svc.get("olga", "/api/v1/patrols/preview", cron="every day")
    err = r.json()["error"]
    assert r.status_code == 422 and err["message_code"] == "cron.invalid"
    assert err["message_params"] == {"cron": "every day"}


async def test_patrols_are_edited_with_their_vehicle_or_dock_and_listed_with_next_runs(svc):
    patrol = {
        "name": "market loop",
        "plan": {
            "kind": "perimeter",
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
            "params": {"alt_m": 50},
        },
        "cron": "30 20 * * 1-5",
        "timezone": "Asia/Shanghai",
        "dock": "Workstation Riverside",
    }
    r = await svc.post("dan", "/api/v1/patrols", patrol)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["dock"] == "Workstation Riverside" and p["vehicle_id"] is None
    r = await svc.client.put(
        f"/api/v1/patrols/{p['id']}",
        json={**patrol, "dock": None, "vehicle_id": 2, "cron": "0 8 * * *"},
        headers=svc.auth("dan"),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["vehicle_id"], r.json()["dock"], r.json()["cron"]) == (2, None, "0 8 * * *")
    r = await svc.client.put(
        f"/api/v1/patrols/{p['id']}", json={**patrol, "vehicle_id": 2}, headers=svc.auth("dan")
    )
    assert r.status_code == 422 and "not both" in r.json()["error"]["message"]
    r = await svc.client.put(f"/api/v1/patrols/{p['id']}", json=patrol, headers=svc.auth("olga"))
    assert r.status_code == 403
    sched = (await svc.get("olga", "/api/v1/patrols/schedule", locale="zh-CN", count=3)).json()
    assert [s["patrol_id"] for s in sched] == [p["id"]]
    assert sched[0]["description"] == "每天 08:00" and len(sched[0]["next_runs"]) == 3
    assert "patrol.update" in [e["action"] for e in await svc.audit()]


async def test_zones_merge_split_and_round_trip_through_geojson_and_kml(svc):
    a = (await svc.post("root", "/api/v1/zones", _zone("west", SQUARE, floor_m=0, ceiling_m=100))).json()
    b = (await svc.post("root", "/api/v1/zones", _zone("east", EAST, floor_m=10, ceiling_m=150))).json()
    r = await svc.post("root", "/api/v1/zones/merge", {"zone_ids": [a["id"], b["id"]]})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["id"] == a["id"] and (merged["floor_m"], merged["ceiling_m"]) == (0, 150)
    xs = [p[0] for p in merged["shape"]["coordinates"][0]]
    assert min(xs) == pytest.approx(109.97) and max(xs) == pytest.approx(110.01)
    assert (await svc.get("olga", f"/api/v1/zones/{b['id']}")).status_code == 404
    line = {"type": "LineString", "coordinates": [[109.98, 39.80], [109.98, 39.84]]}
    r = await svc.post("root", f"/api/v1/zones/{a['id']}/split", {"line": line})
    assert r.status_code == 200, r.text
    parts = r.json()
    assert [p["name"] for p in parts] == ["west (1)", "west (2)"] and parts[0]["id"] == a["id"]
    miss = {"type": "LineString", "coordinates": [[109.90, 39.80], [109.91, 39.84]]}
    r = await svc.post("root", f"/api/v1/zones/{a['id']}/split", {"line": miss})
    assert r.status_code == 422 and r.json()["error"]["message_code"] == "zone.split_failed"
    far = _zone("far", [[110.1, 39.9], [110.2, 39.9], [110.2, 40.0], [110.1, 40.0]])
    r = await svc.post("root", "/api/v1/zones", far)
    assert r.status_code == 201, r.text
    c = r.json()
    r = await svc.post("root", "/api/v1/zones/merge", {"zone_ids": [parts[1]["id"], c["id"]]})
    assert r.status_code == 422 and r.json()["error"]["message_code"] == "zone.merge_failed"

    circle = {
        "name": "helipad",
        "kind": "no_fly",
        "shape": {"type": "Circle", "center": [109.98, 39.82], "radius_m": 150},
    }
    assert (await svc.post("root", "/api/v1/zones", circle)).status_code == 201
    before = {z["name"]: z for z in (await svc.get("olga", "/api/v1/zones")).json()["items"]}
    for fmt in ("geojson", "kml"):
        r = await svc.get("olga", f"/api/v1/zones/export.{fmt}")
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        text = r.text
        for z in before.values():
            assert (await svc.delete("root", f"/api/v1/zones/{z['id']}")).status_code == 204
        r = await svc.post("root", "/api/v1/zones/import", {"format": fmt, "content": text})
        assert r.status_code == 200, r.text
        assert sorted(z["name"] for z in r.json()["created"]) == sorted(before)
        after = {z["name"]: z for z in (await svc.get("olga", "/api/v1/zones")).json()["items"]}
        assert after["helipad"]["shape"] == circle["shape"], fmt
        for name, z in before.items():
            assert (after[name]["kind"], after[name]["floor_m"], after[name]["ceiling_m"]) == (
                z["kind"],
                z["floor_m"],
                z["ceiling_m"],
            ), (fmt, name)
        # imported again: the same names are replaced, nothing new
        r = await svc.post("root", "/api/v1/zones/import", {"format": fmt, "content": text})
        assert (len(r.json()["created"]), len(r.json()["replaced"])) == (0, len(before))
        before = after
    r = await svc.post("root", "/api/v1/zones/import", {"format": "kml", "content": "<kml"})
    assert r.status_code == 422 and r.json()["error"]["message_code"] == "zone.import_failed"
    r = await svc.post("olga", "/api/v1/zones/import", {"format": "geojson", "content": "{}"})
    assert r.status_code == 403


async def test_message_library_is_edited_and_loop_has_its_own_value(svc):
    msg = {"name": "disperse", "slot": 3, "kind": "tts", "text": "请立即离开", "language": "zh-CN"}
    m = (await svc.post("root", "/api/v1/payload/messages", msg)).json()
    r = await svc.client.put(
        f"/api/v1/payload/messages/{m['id']}",
        json={**msg, "text": "Leave the area now", "language": "en"},
        headers=svc.auth("root"),
    )
    assert r.status_code == 200 and (r.json()["text"], r.json()["language"]) == ("Leave the area now", "en")
    other = (await svc.post("root", "/api/v1/payload/messages", {**msg, "name": "other", "slot": 4})).json()
    r = await svc.client.put(f"/api/v1/payload/messages/{other['id']}", json=msg, headers=svc.auth("root"))
    assert r.status_code == 409
    assert (await svc.delete("olga", f"/api/v1/payload/messages/{other['id']}")).status_code == 403
    assert (await svc.delete("root", f"/api/v1/payload/messages/{other['id']}")).status_code == 204
    actions = [e["action"] for e in await svc.audit()]
    assert {"payload.message.update", "payload.message.delete"} <= set(actions)
    # every slot's loop value lies strictly between its own and the next slot's
    for slot in range(1, 16):
        assert message_value(slot) < message_value(slot, loop=True) < message_value(slot + 1)
    assert message_value(16, loop=True) < 1.0


async def test_refusals_carry_stable_codes_and_land_here_is_judged_as_a_flight(svc):
    assert (await svc.post("root", "/api/v1/zones", HOSPITAL)).status_code == 201
    await svc.add_vehicle(sysid=1, port=free_udp_ports(1))
    r = await svc.post(
        "alice",
        "/api/v1/vehicles/1/commands",
        {"command": "goto", "params": {"lat": 39.82, "lon": 109.98, "alt_m": 40}},
    )
    err = r.json()["error"]
    assert r.status_code == 403 and err["message_code"] == "gate.authority.control"
    assert err["details"][0]["code"] == "authority.control" and err["details"][0]["message"]
    await svc.post("alice", "/api/v1/vehicles/1/control")
    land_here = {"command": "land", "params": {"lat": 39.8210, "lon": 109.9810, "alt_m": 40}}
    r = await svc.post("alice", "/api/v1/vehicles/1/commands", land_here)
    err = r.json()["error"]
    # judged as a flight there (no position and no charge yet), not as a plain landing
    assert r.status_code == 409 and err["message_code"].startswith("gate.")
    assert {"vehicle.position", "battery.unknown"} <= {d["code"] for d in err["details"]}
    r = await svc.post("alice", "/api/v1/vehicles/1/commands", {"command": "land", "params": {"lat": 39.82}})
    assert r.status_code == 422 and "both lat and lon" in r.json()["error"]["message"]


async def test_reports_give_response_percentiles_drone_hours_and_patrol_completion(svc):
    from sqlmodel import Session

    from mission.flights.models import Flight
    from mission.incidents.models import Incident
    from mission.patrols.models import Patrol, PatrolRun
    from mission.reports.models import Sortie

    await svc.add_vehicle(sysid=1, port=free_udp_ports(1), dock="North")
    inside = [[109.97, 39.81], [109.99, 39.81], [109.99, 39.83], [109.97, 39.83], [109.97, 39.81]]
    assert (await svc.post("root", "/api/v1/zones", _zone("Patrol A", inside))).status_code == 201
    t0 = datetime.now().astimezone() - timedelta(hours=2)
    with Session(svc.engine) as session:
        for i, (prio, on_scene_s) in enumerate([(1, 60), (1, 120), (1, 180), (2, 300), (2, None)]):
            session.add(
                Incident(
                    kind="burglary",
                    priority=prio,
                    lat=39.82 if i < 3 else 39.90,
                    lon=109.98,
                    vehicle_id=1,
                    state="on_scene" if on_scene_s else "assigned",
                    created_at=t0,
                    assigned_at=t0,
                    on_scene_at=t0 + timedelta(seconds=on_scene_s) if on_scene_s else None,
                )
            )
        session.add(
            Flight(
                vehicle_id=1,
                purpose="manual",
                state="completed",
                legs=[],
                airborne=True,
                requested_by="alice",
                created_at=t0,
                ended_at=t0 + timedelta(minutes=30),
            )
        )
        for start, end, off_h in [(60, 20, 0), (90, 75, 1), (70, None, 1.5), (100, 10, -200)]:
            session.add(
                Sortie(
                    vehicle_id=1,
                    took_off_at=t0 + timedelta(hours=off_h),
                    start_pct=start,
                    landed_at=None if end is None else t0 + timedelta(hours=off_h, minutes=20),
                    end_pct=end,
                )
            )
        patrol = Patrol(name="loop", plan={"kind": "orbit"}, cron="0 * * * *")
        session.add(patrol)
        session.flush()
        for k, status in enumerate(["completed", "completed", "preempted", "skipped"]):
            session.add(
                PatrolRun(patrol_id=patrol.id, scheduled_for=t0 + timedelta(minutes=k), status=status)
            )
        session.commit()
    r = await svc.get("dan", "/api/v1/reports")
    assert r.status_code == 200, r.text
    rep = r.json()
    rows = {(x["group"], x["key"]): x for x in rep["response"]}
    p1 = rows[("priority", "P1")]
    assert (p1["incidents"], p1["on_scene"], p1["p50_s"], p1["p90_s"]) == (3, 3, 120.0, 168.0)
    assert (rows[("priority", "P2")]["incidents"], rows[("priority", "P2")]["on_scene"]) == (2, 1)
    assert rows[("zone", "Patrol A")]["incidents"] == 3 and rows[("zone", "-")]["incidents"] == 2
    assert rows[("dock", "North")]["incidents"] == 5
    drone = rep["drones"][0]
    assert (drone["flights"], drone["flight_hours"]) == (1, 0.5)
    # 60 -> 20 % and 90 -> 75 %: 0.55 cycles; the one still in the air counts as a sortie, adds no charge.
    assert (drone["sorties"], drone["charge_used_pct"], drone["battery_cycles"]) == (3, 55.0, 0.55)
    loop = next(p for p in rep["patrols"] if p["name"] == "loop")
    assert (loop["runs"], loop["launched"], loop["completed"], loop["skipped"]) == (4, 3, 2, 1)
    assert loop["completion"] == pytest.approx(2 / 3, abs=1e-3)
    csv_text = (await svc.get("dan", "/api/v1/reports/response.csv")).text
    assert (
        csv_text.splitlines()[0] == "group,key,incidents,on_scene,p50_s,p90_s"
        and "P1,3,3,120.0,168.0" in csv_text
    )
    assert (await svc.get("olga", "/api/v1/reports")).status_code == 403
    early = (t0 - timedelta(days=3)).isoformat()
    r = await svc.get("dan", "/api/v1/reports", since=early, until=(t0 - timedelta(days=2)).isoformat())
    assert r.json()["response"] == [] and r.json()["drones"][0]["flights"] == 0
    r = await svc.get("dan", "/api/v1/reports", since=t0.isoformat(), until=early)
    assert r.status_code == 422 and r.json()["error"]["message_code"] == "report.period"


async def test_audit_is_filtered_by_user_vehicle_incident_and_time_and_exported(svc):
    await svc.add_vehicle(sysid=1, port=free_udp_ports(1))
    await svc.post("alice", "/api/v1/vehicles/1/control")
    await svc.post("alice", "/api/v1/vehicles/1/commands", {"command": "hold"})
    r = await svc.post(
        "dan", "/api/v1/incidents", {"lat": 39.82, "lon": 109.98, "kind": "fire", "priority": 1}
    )
    incident = r.json()["id"]
    page = (await svc.get("root", "/api/v1/audit", actor="alice", vehicle_id=1)).json()
    assert "control.take" in [e["action"] for e in page["items"]] and {e["actor"] for e in page["items"]} == {
        "alice"
    }
    assert all(e["target"] == "vehicle:1" or e["details"].get("vehicle_id") == 1 for e in page["items"])
    page = (await svc.get("root", "/api/v1/audit", incident_id=incident)).json()
    assert page["total"] >= 1 and all(
        e["target"] == f"incident:{incident}" or e["details"].get("incident_id") == incident
        for e in page["items"]
    )
    future = (datetime.now().astimezone() + timedelta(hours=1)).isoformat()
    assert (await svc.get("root", "/api/v1/audit", since=future)).json()["total"] == 0
    r = await svc.get("root", "/api/v1/audit/export.csv", actor="alice")
    lines = r.text.splitlines()
    assert r.status_code == 200 and lines[0] == "seq,at,actor,action,target,details,hash"
    assert len(lines) - 1 == (await svc.get("root", "/api/v1/audit", actor="alice")).json()["total"]
    assert (await svc.get("dan", "/api/v1/audit/export.csv")).status_code == 403
