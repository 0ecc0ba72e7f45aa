"""Two real ``skywarden serve`` processes: the event runner runs on the leader of "operations", and the
event's drones are owned by both instances. The leader hears the flights the other instance flies (their
stations reached, their ends) and keeps the event going on them: rings start their laps together, posts
are held, stand-down brings every drone home before the exemptions expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cluster.instances import ServeCluster, until
from tests.support.geo import offset

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]
VENUE_N = 320.0


def venue() -> dict:
    pts = [(-60, -80), (-60, 80), (60, 80), (60, -80), (-60, -80)]
    ring = [offset(VENUE_N + n, e) for n, e in pts]
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]}


async def test_the_leader_runs_an_event_on_drones_another_instance_flies(pg_url: str, tmp_path: Path) -> None:
    async with ServeCluster(pg_url, tmp_path, instances=2, vehicles=4, speed=10.0) as cl:
        await until(lambda: len({o for o, _ in cl.owners().values()}) == 2, 30, "the fleet split")

        async def leader() -> str | None:
            for k in range(2):
                if "operations" in (await cl.get(k, "olga", "/api/v1/health")).json()["leads"]:
                    return cl.nodes[k].name
            return None

        await until(leader, 30, "a leader of operations")
        lead = await leader()
        now = datetime.now(UTC)
        body = {
            "name": "final",
            "venue": venue(),
            "doors_open_at": (now - timedelta(seconds=5)).isoformat(),  # no sweep: straight to patrols
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(seconds=900)).isoformat(),
            "ring_radii_m": [220],
            "revisit_s": 90,
            "overwatch_points": 2,
            "swath_m": 40,
            "speed_m_s": 10,
            "vehicles": cl.vehicle_ids,
        }
        r = await cl.post(0, "dan", "/api/v1/security-events", body)
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
        assert (await cl.post(1, "dan", f"/api/v1/security-events/{eid}/start")).status_code == 200

        async def slots() -> list[dict]:
            f = (await cl.get(0, "olga", f"/api/v1/security-events/{eid}/live")).json()
            assert f["running"], f
            return f["slots"]

        async def held() -> bool:
            s = await slots()
            rings = [x for x in s if x["slot"].startswith("ring")]
            posts = [x for x in s if x["slot"].startswith("post")]
            return (
                bool(rings and posts)
                and all(x["stage"] == "lapping" for x in rings)
                and all(x["stage"] == "at_station" for x in posts)
            )

        await until(held, 120, "rings lapping and posts held")
        flying = {x["vehicle_id"] for x in await slots() if x["vehicle_id"] is not None}
        owners = cl.owners()
        remote = {v for v in flying if owners[v][0] != lead}
        assert remote, f"every slot drone is the leader's ({owners}); the test proves nothing"
        # Flown by their owners: the event flights of the remote drones are active, each one once.
        rows = cl.sql(
            "SELECT vehicle_id, count(*) FROM flights WHERE purpose = 'event' AND reason LIKE :r "
            "GROUP BY vehicle_id",
            r=f"event {eid} %station",
        )
        assert {v: n for v, n in rows if v in remote} == dict.fromkeys(remote, 1)

        assert (await cl.post(0, "dan", f"/api/v1/security-events/{eid}/stand-down")).status_code == 200

        def ended() -> bool:
            return cl.sql("SELECT state FROM security_events WHERE id = :e", e=eid)[0][0] == "ended"

        await until(ended, 150, "stand-down finished")
        assert cl.sims is not None
        # Exemptions expire only once every drone is home, the other instance's too.
        assert all(not v.autopilot.in_air for v in cl.sims.vehicles)
        assert cl.sql("SELECT count(*) FROM zone_exemptions WHERE revoked_at IS NULL")[0][0] == 0
