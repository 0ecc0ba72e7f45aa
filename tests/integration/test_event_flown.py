"""A large event flown end to end with 6 sim drones at speed 10: the sweep before doors, rings held by
synchronised laps, posts held, a relief in place before the relieved drone leaves, a pilot takeover
filled, an incident in the venue served by an event drone, then stand-down (all home, exemptions gone)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from sqlmodel import Session, col, select

from flightplans.geodesy import LocalFrame
from mission.flights.models import Flight
from tests.integration.test_dispatch_support import dispatch_service, offset, until

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow, pytest.mark.mqtt]
VENUE_N = 600.0
DOCKS = [(0, 0), (0, 60), (60, 0), (-60, 0), (0, -60), (60, 60)]


def venue() -> dict:
    pts = [(-60, -80), (-60, 80), (60, 80), (60, -80), (-60, -80)]
    ring = [offset(VENUE_N + n, e) for n, e in pts]
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]}


async def live(svc, event_id: int) -> dict:
    r = await svc.get("olga", f"/api/v1/security-events/{event_id}/live")
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_event_is_flown_held_relieved_and_stood_down(tmp_path):
    prefix = f"sw-event-{uuid.uuid4().hex[:8]}"
    mqtt = {"mqtt_url": "mqtt://127.0.0.1:1883", "mqtt_topic_prefix": prefix, "mqtt_client_id": prefix}
    async with (
        dispatch_service(tmp_path, docks=DOCKS, speed=10.0, event_rotate_at_pct=40.0, **mqtt) as svc,
        aiomqtt.Client("127.0.0.1", 1883, identifier=f"probe-{prefix}") as probe,
    ):
        now = datetime.now(UTC)
        body = {
            "name": "derby",
            "venue": venue(),
            "doors_open_at": (now + timedelta(seconds=60)).isoformat(),
            "starts_at": (now + timedelta(seconds=70)).isoformat(),
            "ends_at": (now + timedelta(seconds=600)).isoformat(),
            "ring_radii_m": [220],
            "revisit_s": 90,
            "overwatch_points": 2,
            "swath_m": 40,
            "speed_m_s": 10,
            "vehicles": [1, 2, 3, 4, 5, 6],
        }
        r = await svc.post("dan", "/api/v1/security-events", body)
        assert r.status_code == 201, r.text
        ev = r.json()
        eid = ev["id"]
        assert ev["assigned"] == [1, 2, 3, 4, 5, 6]
        assert sorted(e["vehicle_id"] for e in ev["exemptions"]) == [1, 2, 3, 4, 5, 6]
        assert (await svc.post("dan", f"/api/v1/security-events/{eid}/start")).status_code == 200

        async def figures() -> dict:
            return await live(svc, eid)

        async def sweep_done() -> bool:
            return (await figures())["sweep_done_before_doors"]

        await until(sweep_done, 90, "the sweep done before doors", every_s=0.5)
        f = await figures()
        assert f["sweep_coverage_flown"] >= 0.95, f

        async def held() -> bool:
            slots = (await figures())["slots"]
            return all(s["stage"] == "lapping" for s in slots if s["slot"].startswith("ring")) and all(
                s["stage"] == "at_station" for s in slots if s["slot"].startswith("post")
            )

        await until(held, 90, "rings lapping and posts held", every_s=0.5)

        # The live measures are published on skywarden/events/security/{id}.
        await probe.subscribe(f"{prefix}/events/security/{eid}")

        async def published() -> dict:
            async for message in probe.messages:
                body = json.loads(message.payload)
                return body.get("data", body)
            raise AssertionError("subscription ended")

        live_mqtt = await asyncio.wait_for(published(), 20)
        assert live_mqtt["event_id"] == eid and "ring_gaps_s" in live_mqtt and live_mqtt["incursions"] == 0

        # A relief: a ring drone's battery drops; its relief is in place before it leaves.
        slots = (await figures())["slots"]
        ring_vid = next(s["vehicle_id"] for s in slots if s["slot"].startswith("ring"))
        svc.vehicle(ring_vid).battery_sag(50)

        async def relieved() -> bool:
            return (await figures())["reliefs"] >= 1

        await until(relieved, 120, "a relief", every_s=0.5)
        timeline = (await figures())["timeline"]
        whats = [t["what"] for t in timeline]
        assert whats.index("relief in place") < whats.index("relieved")

        # A pilot takes a post drone: the runner fills the hole with a spare.
        slots = (await figures())["slots"]
        post_vid = next(s["vehicle_id"] for s in slots if s["slot"].startswith("post"))
        assert (await svc.post("alice", f"/api/v1/vehicles/{post_vid}/control")).status_code == 200

        async def filled() -> bool:
            f = await figures()
            return f["holes_filled"] >= 1 and all(
                s["vehicle_id"] not in (None, post_vid) for s in f["slots"] if s["slot"].startswith("post")
            )

        await until(filled, 90, "the pilot's hole filled", every_s=0.5)
        # The pilot's drone is exempt while it is assigned: the gate lets it fly over the pitch.
        lat, lon = offset(VENUE_N + 20, 30)
        goto = {"command": "goto", "params": {"lat": lat, "lon": lon, "alt_m": 50}}
        r = await svc.post("alice", f"/api/v1/vehicles/{post_vid}/commands", goto)
        assert r.status_code == 200, r.text

        # Rings held through the relief and the takeover (a lap and more flown since they started).
        f = await figures()
        print("before the incident", {k: f[k] for k in ("ring_gaps_s", "posts_manned_share")})
        assert f["ring_gap_s_max"] <= f["ring_target_s"], f

        # An incident inside the venue: only event drones are exempt, so one of them serves it.
        lat, lon = offset(VENUE_N, 0)
        r = await svc.post(
            "dan", "/api/v1/incidents", {"lat": lat, "lon": lon, "kind": "fight", "priority": 1}
        )
        assert r.status_code == 201, r.text
        inc = r.json()

        async def served() -> bool:
            i = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}")).json()
            return i["state"] == "on_scene"

        await until(served, 90, "the venue incident on scene", every_s=0.5)
        i = (await svc.get("olga", f"/api/v1/incidents/{inc['id']}")).json()
        assert i["vehicle_id"] in range(1, 7) and i["vehicle_id"] != post_vid

        f = await figures()
        assert f["incursions"] == 0

        r = await svc.post("dan", f"/api/v1/security-events/{eid}/stand-down")
        assert r.status_code == 200, r.text
        await svc.post("dan", f"/api/v1/incidents/{inc['id']}/close")

        async def ended() -> bool:
            ev = (await svc.get("olga", f"/api/v1/security-events/{eid}")).json()
            return ev["state"] == "ended"

        await until(ended, 150, "stand-down finished", every_s=0.5)
        ev = (await svc.get("olga", f"/api/v1/security-events/{eid}")).json()
        assert all(e["revoked_at"] is not None for e in ev["exemptions"])
        # Its exemption expired with the stand-down: the same flight is refused, naming the event zone.
        r = await svc.post("alice", f"/api/v1/vehicles/{post_vid}/commands", goto)
        assert r.status_code == 422 and "event: derby" in r.json()["error"]["message"], r.text

        def all_home() -> bool:  # but the pilot's
            snaps = [svc.runtime.fleet.latest(v) for v in range(1, 7) if v != post_vid]
            return all(s is not None and not s.in_air for s in snaps)

        await until(all_home, 120, "every event drone home", every_s=0.5)
        await svc.client.delete(f"/api/v1/vehicles/{post_vid}/control", headers=svc.auth("alice"))


def _takeoffs(svc, vid: int) -> int:  # type: ignore[no-untyped-def]
    """Take-off commands the sim drone received (a resend within the same second counts once)."""
    return len({round(r.at) for r in svc.vehicle(vid).received if r.kind == "command" and r.command == 22})


def _station_flights(svc) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    with Session(svc.engine) as session:
        rows = session.exec(select(Flight).where(col(Flight.purpose) == "event"))
        return sorted((f.id or 0, f.vehicle_id) for f in rows if "station" in f.reason)


async def test_an_event_goes_on_after_a_restart_without_a_second_launch(tmp_path):
    async with dispatch_service(tmp_path, docks=DOCKS[:5], speed=10.0) as svc:
        now = datetime.now(UTC)
        body = {
            "name": "cup",
            "venue": venue(),
            "doors_open_at": (now - timedelta(seconds=5)).isoformat(),  # no sweep: straight to patrols
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(seconds=900)).isoformat(),
            "ring_radii_m": [220],
            "revisit_s": 90,
            "overwatch_points": 2,
            "swath_m": 40,
            "speed_m_s": 10,
            "vehicles": [1, 2, 3, 4, 5],
        }
        r = await svc.post("dan", "/api/v1/security-events", body)
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
        assert (await svc.post("dan", f"/api/v1/security-events/{eid}/start")).status_code == 200

        async def held_by() -> dict[str, int] | None:
            f = await live(svc, eid)
            if not f.get("running"):
                return None
            slots = f["slots"]
            rings = [s for s in slots if s["slot"].startswith("ring")]
            posts = [s for s in slots if s["slot"].startswith("post")]
            ok = all(s["stage"] == "lapping" for s in rings) and all(
                s["stage"] == "at_station" for s in posts
            )
            return {s["slot"]: s["vehicle_id"] for s in rings + posts} if ok and rings and posts else None

        await until(held_by, 90, "rings lapping and posts held", every_s=0.5)
        before = await held_by()
        assert before is not None
        # Posts face the venue (their sector), nose toward its centre.
        centre = LocalFrame(*offset(VENUE_N, 0))
        for slot, vid in before.items():
            if not slot.startswith("post"):
                continue
            snap = svc.runtime.fleet.latest(vid)
            x, y = centre.point_to_local(snap.lat, snap.lon)
            inward = math.degrees(math.atan2(-x, -y)) % 360

            def facing(vid: int = vid, inward: float = inward) -> bool:
                return abs((svc.vehicle(vid).autopilot.heading_deg - inward + 180) % 360 - 180) < 12

            await until(facing, 30, f"{slot} facing the venue", every_s=0.2)
        takeoffs = {v: _takeoffs(svc, v) for v in range(1, 6)}
        flights = _station_flights(svc)

        await svc.restart()  # the service goes away mid-event and comes back on the same database

        async def resumed() -> bool:
            return await held_by() == before

        await until(resumed, 60, "the same event resumed with the same drones in the same slots", every_s=0.5)
        f = await live(svc, eid)
        assert any(t["what"] == "recovered after a restart" for t in f["timeline"]), f["timeline"]
        ev = (await svc.get("olga", f"/api/v1/security-events/{eid}")).json()
        assert ev["state"] == "running"
        assert sorted(e["vehicle_id"] for e in ev["exemptions"]) == [1, 2, 3, 4, 5]
        assert all(e["revoked_at"] is None for e in ev["exemptions"])

        # Two revisit targets of flight time after the restart the rings still hold their gap, the posts are
        # manned, and no drone was launched a second time (the spare stayed on its dock).
        t0 = asyncio.get_running_loop().time()
        await until(
            lambda: asyncio.get_running_loop().time() - t0 > 2 * 90 / svc.speed, 60, "two revisit targets"
        )
        f = await live(svc, eid)
        assert f["ring_gaps_s"] and f["ring_gap_s_max"] <= f["ring_target_s"], f
        assert await held_by() == before
        assert {v: _takeoffs(svc, v) for v in range(1, 6)} == takeoffs
        assert _station_flights(svc) == flights  # nobody sent to a station again
        spare = ({1, 2, 3, 4, 5} - set(before.values())).pop()
        assert not svc.runtime.fleet.latest(spare).in_air

        assert (await svc.post("dan", f"/api/v1/security-events/{eid}/stand-down")).status_code == 200

        async def ended() -> bool:
            return (await svc.get("olga", f"/api/v1/security-events/{eid}")).json()["state"] == "ended"

        await until(ended, 150, "stand-down finished", every_s=0.5)

        def all_home() -> bool:
            return all(not svc.runtime.fleet.latest(v).in_air for v in range(1, 6))

        await until(all_home, 120, "every event drone home", every_s=0.5)
