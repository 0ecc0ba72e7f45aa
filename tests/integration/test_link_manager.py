"""LinkManager's own contract: unique sysids, lookup, removal, and vehicles that never answer."""

from __future__ import annotations

import asyncio

import pytest

from flightplans.items import Takeoff
from mission.errors import LinkError, NotFound
from mission.link import LinkManager, VehicleLink
from tests.integration.conftest import Flight, free_udp_base, wait_for_snapshot

pytestmark = pytest.mark.timeout(30)


async def test_lookup_duplicates_removal_and_re_adding(sim_flight: Flight) -> None:
    links, link = sim_flight.links, sim_flight.link
    assert isinstance(link, VehicleLink)
    assert links.get(1) is link and links.all() == [link]

    with pytest.raises(LinkError, match="vehicle 1: add failed: sysid already linked on udpin://"):
        await links.add_vehicle(sysid=1, url=link.url)
    with pytest.raises(ValueError, match=r"sysid must be 1\.\.255 and not 245"):
        await links.add_vehicle(sysid=245, url=f"udpin://0.0.0.0:{free_udp_base(1)}")
    with pytest.raises(NotFound, match=r"vehicle 9 has no link \(known: \[1\]\)"):
        links.get(9)
    with pytest.raises(LinkError, match=r"vehicle 3: add failed: cannot open udpin://:14999"):
        await links.add_vehicle(sysid=3, url="udpin://:14999")  # MAVSDK wants an address to listen on
    assert links.all() == [link]

    ended = asyncio.Event()

    async def read_until_closed() -> None:
        async for _ in link.snapshots():
            pass
        ended.set()

    reader = asyncio.create_task(read_until_closed())
    await asyncio.sleep(0.3)
    await links.remove_vehicle(1)
    await asyncio.wait_for(ended.wait(), 2)  # the stream ends with the link
    await reader
    with pytest.raises(NotFound):
        links.get(1)
    with pytest.raises(LinkError, match="vehicle 1: arm failed: the link is closed"):
        await link.arm()

    again = await links.add_vehicle(sysid=1, url=link.url)
    await again.wait_ready(timeout_s=10)
    snap = await wait_for_snapshot(again, lambda s: s.link_up, timeout_s=3, what="a fresh snapshot")
    assert snap.vehicle_id == 1 and snap.gps_ok


async def test_a_vehicle_that_never_answers_gives_clear_errors() -> None:
    port = free_udp_base(1)
    url = f"udpin://0.0.0.0:{port}"
    async with LinkManager(telemetry_hz=10.0) as links:
        link = await links.add_vehicle(sysid=7, url=url)
        with pytest.raises(
            LinkError, match=rf"vehicle 7: connect failed: no heartbeat on {url} within 1 s"
        ) as err:
            await link.wait_connected(timeout_s=1.0)
        assert err.value.vehicle_id == 7 and err.value.action == "connect"
        with pytest.raises(
            LinkError, match=rf"vehicle 7: upload mission failed: never connected \(no heartbeat on {url}"
        ):
            await link.upload_mission([Takeoff(alt_m=10)])
        snap = link.latest
        assert snap is not None and not snap.link_up and snap.lat is None and not link.connected


async def test_bad_manager_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"telemetry_hz must be in 0\.1\.\.100, got 0"):
        LinkManager(telemetry_hz=0)
    with pytest.raises(ValueError, match="executor_workers must be >= 1, got 0"):
        LinkManager(executor_workers=0)
    with pytest.raises(RuntimeError, match="LinkManager is not running"):
        await LinkManager().add_vehicle(sysid=1, url="udpin://0.0.0.0:14540")


async def test_a_repeated_sysid_goes_to_another_mavsdk_instance_up_to_the_ceiling() -> None:
    base = free_udp_base(3)
    async with LinkManager(max_shards=2) as links:
        first = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base}")
        second = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base + 1}")
        assert links.shard_count == 2 and links.capacity == 2 * 254
        assert links.get(1, url=first.url) is first and links.get(1, url=second.url) is second
        with pytest.raises(NotFound, match="vehicle 1 is linked on 2 URLs"):
            links.get(1)
        # the limit that remains is said at once, not a hang
        with pytest.raises(LinkError, match=r"sysid 1 is already linked in all 2 MAVSDK instances"):
            await asyncio.wait_for(links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base + 2}"), 2)
        await links.remove_vehicle(1, url=second.url)
        assert links.get(1) is first


async def test_a_sysid_added_twice_at_once_still_goes_to_two_mavsdk_instances() -> None:
    """The fleet connects every vehicle at once: vehicle 1 and vehicle 254 (sysid 1 again, its own port) must
    not both land in one MAVSDK instance, which would merge them into one system (one thread, one link)."""
    base = free_udp_base(4)
    async with LinkManager() as links:
        urls = [f"udpin://0.0.0.0:{base + i}" for i in range(4)]
        added = await asyncio.gather(
            *(links.add_vehicle(sysid=1 + i // 2, url=u) for i, u in enumerate(urls))
        )
        assert links.shard_count == 2
        assert [links.get(link.vehicle_id, url=link.url) for link in added] == added
        # two adds of one sysid on one URL at once: one is refused, the other linked
        results = await asyncio.gather(
            links.add_vehicle(sysid=9, url=urls[0]),
            links.add_vehicle(sysid=9, url=urls[0]),
            return_exceptions=True,
        )
        assert sum(isinstance(r, LinkError) for r in results) == 1


async def test_closing_right_after_adding_does_not_hang() -> None:
    """The old discovery loop's asyncio.wait_for swallowed the cancel that came just after an add."""
    base = free_udp_base(20)
    for _ in range(3):
        manager = LinkManager()
        async with manager as links:
            for i in range(20):
                await links.add_vehicle(sysid=i + 1, url=f"udpin://0.0.0.0:{base + i}")
        # leaving the block closed every link and task in time (the test's timeout is the hang check)
        assert links.all() == []
