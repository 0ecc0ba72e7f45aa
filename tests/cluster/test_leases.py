"""Vehicle leases, fencing and leader locks on the real PostgreSQL, with two and three instances."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mission.audit.models import AuditEntry
from mission.cluster import Cluster, ClusterConfig, StaleOwner
from mission.db import make_engine
from mission.flights import commander as cmd
from tests.cluster.conftest import register

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

TTL_S, BEAT_S = 1.5, 0.25


def cluster(engine: Engine, name: str, ids: list[int], **kw: Any) -> Cluster:
    return Cluster(
        engine=engine,
        config=ClusterConfig(instance_id=name, ttl_s=TTL_S, heartbeat_s=BEAT_S),
        vehicles=lambda: list(ids),
        **kw,
    )


async def crash(c: Cluster) -> None:
    """Die like kill -9: stop beating without handing anything over."""
    assert c._task is not None
    c._task.cancel()
    await asyncio.gather(c._task, return_exceptions=True)
    for task, _stop in c._running.values():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Any, timeout_s: float = 15.0, what: str = "condition") -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def test_leases_split_the_fleet_and_a_dead_instances_vehicles_are_taken_over(pg: Engine) -> None:
    ids = register(pg, 12)
    async with cluster(pg, "a", ids) as a, cluster(pg, "b", ids) as b, cluster(pg, "c", ids) as c:
        everyone = (a, b, c)
        await until(lambda: sum(len(x.owned()) for x in everyone) == 12, what="every vehicle owned")
        await until(lambda: all(len(x.owned()) == 4 for x in everyone), what="an even split")
        owned = [set(x.owned()) for x in everyone]
        assert set().union(*owned) == set(ids) and sum(map(len, owned)) == 12  # disjoint
        before = b.owned()
        await crash(b)
        took = await until(lambda: set(a.owned()) | set(c.owned()) == set(ids), what="takeover")
        assert took <= TTL_S + 3 * BEAT_S + 1.0
        for vid, epoch in before.items():  # every taken vehicle has a new epoch
            assert {**a.owned(), **c.owned()}[vid] == epoch + 1
        assert not set(a.owned()) & set(c.owned())


async def test_a_stale_owner_can_never_command(pg: Engine) -> None:
    ids = register(pg, 2)
    sent: list[tuple[int, str]] = []

    class Link:
        connected = True

        def __init__(self, vid: int) -> None:
            self.vid = vid

        async def arm(self) -> None:
            sent.append((self.vid, "arm"))

    class Links:
        def link(self, vehicle_id: int) -> Any:
            return Link(vehicle_id)

    async with cluster(pg, "a", ids) as a:
        await until(lambda: len(a.owned()) == 2, what="a owns both")
        stale = cmd.Commander(engine=pg, links=Links(), fence=a)
        await stale.send(ids[0], cmd.Arm(), actor="test")
        assert sent == [(ids[0], "arm")]
        await crash(a)  # a is paused (a long GC, a frozen VM) and does not know it lost its leases
        async with cluster(pg, "b", ids) as b:
            await until(lambda: len(b.owned()) == 2, what="b takes over")
            fresh = cmd.Commander(engine=pg, links=Links(), fence=b)
            with pytest.raises(StaleOwner, match=r"instance \(a, epoch 1\) no longer owns it \(b at epoch 2"):
                await stale.send(ids[0], cmd.Arm(), actor="test")
            assert a.refused_stale == 1
            await fresh.send(ids[0], cmd.Arm(), actor="test")
    assert sent == [(ids[0], "arm"), (ids[0], "arm")]  # the stale one never left
    with Session(pg) as session:
        arms = session.exec(select(AuditEntry).where(AuditEntry.action == "cmd.arm")).all()
    assert len(arms) == 2  # and wrote no audit entry


async def test_singletons_run_on_one_leader_and_move_on_failover(pg: Engine) -> None:
    ids = register(pg, 1)
    running: dict[str, int] = {}

    def factory(name: str) -> Any:
        @contextlib.asynccontextmanager
        async def run() -> AsyncIterator[None]:
            running[name] = running.get(name, 0) + 1
            try:
                yield
            finally:
                running[name] -= 1

        return run

    a, b = cluster(pg, "a", ids), cluster(pg, "b", ids)
    a.singleton("patrols", factory("a"))
    b.singleton("patrols", factory("b"))
    async with a, b:
        await until(lambda: sum(running.values()) == 1, what="one leader")
        leader, other = (a, b) if a.leads("patrols") else (b, a)
        for _ in range(8):  # stays one leader over several passes
            await asyncio.sleep(BEAT_S)
            assert sum(running.values()) == 1
        await crash(leader)
        running[leader.instance_id] = 0
        await until(lambda: other.leads("patrols") and running.get(other.instance_id) == 1, what="failover")


async def test_a_clean_stop_hands_over_at_once_and_a_new_instance_gets_its_share(pg: Engine) -> None:
    ids = register(pg, 6)
    async with cluster(pg, "a", ids) as a:
        await until(lambda: len(a.owned()) == 6, what="a alone owns all")
        async with cluster(pg, "b", ids) as b:  # a gives back idle vehicles beyond its share
            await until(lambda: len(a.owned()) == 3 and len(b.owned()) == 3, what="rebalanced")
        took = await until(lambda: len(a.owned()) == 6, what="b's vehicles back to a")
        assert took < TTL_S  # b left: no waiting for its leases to expire


async def test_a_busy_vehicle_is_not_given_away_to_balance(pg: Engine) -> None:
    ids = register(pg, 4)
    async with cluster(pg, "a", ids, can_release=lambda vid: False) as a:
        await until(lambda: len(a.owned()) == 4, what="a owns all")
        async with cluster(pg, "b", ids) as b:
            await asyncio.sleep(6 * BEAT_S)
            assert len(a.owned()) == 4 and b.owned() == {}


def test_clustering_on_sqlite_is_refused_clearly(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(RuntimeError, match="several instances need PostgreSQL"):
        Cluster(engine=engine, config=ClusterConfig(instance_id="a"), vehicles=list)
    with pytest.raises(ValueError, match="heartbeat_s"):
        ClusterConfig(instance_id="a", ttl_s=1.0, heartbeat_s=0.6)
