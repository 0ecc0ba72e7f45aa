"""Two real ``skywarden serve`` processes: the cordon runner runs on the leader of "operations", and the
cordon's drones are owned by both instances. The owner of each drone uploads the station's fence and flies
its station flight; the leader hears the stations reached (manned, times reported) and ends the cordon with
every drone home."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.instances import ServeCluster, until
from tests.support.geo import offset

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]


async def test_the_leader_runs_a_cordon_on_drones_another_instance_flies(pg_url: str, tmp_path: Path) -> None:
    async with ServeCluster(pg_url, tmp_path, instances=2, vehicles=4, speed=10.0) as cl:
        await until(lambda: len({o for o, _ in cl.owners().values()}) == 2, 30, "the fleet split")

        async def leader() -> str | None:
            for k in range(2):
                if "operations" in (await cl.get(k, "olga", "/api/v1/health")).json()["leads"]:
                    return cl.nodes[k].name
            return None

        await until(leader, 30, "a leader of operations")
        lead = await leader()
        lat, lon = offset(90.0, 60.0)
        body = {"lat": lat, "lon": lon, "radii_m": [150, 260], "stations_per_ring": [2, 2], "alt_m": 40}
        # Asked of either instance: forwarded to the leader, which runs the cordon.
        r = await cl.post(1, "dan", "/api/v1/cordons", body)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]

        async def read() -> dict:
            return (await cl.get(0, "olga", f"/api/v1/cordons/{cid}")).json()

        async def all_manned() -> bool:
            return (await read())["report"]["manned"] == 4

        await until(all_manned, 150, "every station manned")
        cordon = await read()
        rep = cordon["report"]
        assert rep["first_station_s"] is not None and rep["last_station_s"] is not None
        assert rep["per_ring"] == {"0": {"manned": 2, "total": 2}, "1": {"manned": 2, "total": 2}}
        on_station = {s["vehicle_id"] for s in cordon["stations"]}
        owners = cl.owners()
        remote = {v for v in on_station if owners[v][0] != lead}
        assert remote, f"every station drone is the leader's ({owners}); the test proves nothing"
        # Flown by their owners, each station flight once (no refusal, no refill), and fenced by them.
        rows = cl.sql(
            "SELECT vehicle_id, count(*) FROM flights WHERE purpose = 'cordon' AND reason LIKE :r "
            "GROUP BY vehicle_id",
            r=f"cordon {cid} station %",
        )
        assert dict(rows) == dict.fromkeys(on_station, 1)
        assert cl.sims is not None
        for vid in on_station:
            sim = cl.sims.vehicles[cl.vehicle_ids.index(vid)].autopilot
            assert sim.in_air and sim.fence_items, f"vehicle {vid} flies unfenced"

        r = await cl.post(0, "dan", f"/api/v1/cordons/{cid}/end")
        assert r.status_code == 200, r.text

        def home() -> bool:
            return all(not v.autopilot.in_air for v in cl.sims.vehicles) if cl.sims else False

        await until(home, 150, "every drone home")
        assert (await read())["state"] == "ended"
