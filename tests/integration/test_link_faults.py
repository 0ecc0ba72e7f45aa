"""The link under load and faults, against sim/ only (PX4 SITL cannot be told to black out on cue)."""

from __future__ import annotations

import asyncio
import math

import pytest

from flightplans.items import LoiterTime, MissionItem, SetActuator, Takeoff, Waypoint
from mission.errors import LinkError
from mission.link import FlightMode, LinkManager, MavsdkVehicleLink, TelemetrySnapshot
from sim import SimConfig, SimFleet
from tests.integration.conftest import HOME, Flight, distance_m, free_udp_base, offset, wait_for_snapshot

pytestmark = pytest.mark.timeout(60)


def _patrol(north_m: float, east_m: float, *, loiter_s: float = 0.0) -> list[MissionItem]:
    """Takeoff, a leg out, a spotlight on, (a loiter,) a second leg: the shape of a short patrol."""
    out = offset(north_m, east_m)
    far = offset(north_m * 1.5, east_m * 1.5)
    items: list[MissionItem] = [Takeoff(alt_m=20.0), Waypoint(lat=out[0], lon=out[1], alt_m=20.0)]
    if loiter_s:
        items.append(LoiterTime(lat=out[0], lon=out[1], alt_m=20.0, seconds=loiter_s))
    items += [SetActuator(index=1, value=1.0), Waypoint(lat=far[0], lon=far[1], alt_m=20.0)]
    return items


async def _fly(link: MavsdkVehicleLink, items: list[MissionItem]) -> None:
    # The service's launch order: MISSION first, then arm in it. Arming first leaves an armed vehicle on
    # the ground while the mode switch is retried (lossy link, PX4's post-upload refusal), and PX4's
    # preflight auto-disarm (COM_DISARM_PRFLT, 10 s = 1.25 s of wall time at speed 8) disarms it.
    await link.upload_mission(items)
    await link.start_mission()
    await link.arm(keep_mode=True)


async def test_five_vehicles_fly_at_once(fleet_links) -> None:
    fleet, links = await fleet_links(5)
    vehicles = links.all()
    assert [v.vehicle_id for v in vehicles] == [1, 2, 3, 4, 5]
    plans = {}
    for i, link in enumerate(vehicles):
        bearing = math.radians(72 * i)
        plans[link.vehicle_id] = _patrol(150 * math.cos(bearing), 150 * math.sin(bearing))
    await asyncio.gather(*(_fly(link, plans[link.vehicle_id]) for link in vehicles))

    done = await asyncio.gather(
        *(
            wait_for_snapshot(link, lambda s: s.mission.finished, timeout_s=40, what="mission end")
            for link in vehicles
        )
    )
    for link, snap in zip(vehicles, done, strict=True):
        assert snap.vehicle_id == link.vehicle_id
        last = plans[link.vehicle_id][-1]
        assert isinstance(last, Waypoint) and snap.lat is not None and snap.lon is not None
        assert distance_m(snap.lat, snap.lon, last.lat, last.lon) < 10, (
            f"vehicle {link.vehicle_id} is elsewhere"
        )
    for vehicle in fleet.vehicles:
        assert [(e.index, e.value) for e in vehicle.payload_events] == [(1, 1.0)], f"sysid {vehicle.sysid}"

    await asyncio.gather(*(link.return_to_launch() for link in vehicles))
    await asyncio.gather(
        *(
            wait_for_snapshot(link, lambda s: not s.armed, timeout_s=40, what="landed, disarmed")
            for link in vehicles
        )
    )


@pytest.fixture
def sim_speed() -> float:
    return 8.0


async def test_ten_second_blackout_mid_mission_recovers_and_completes(sim_flight: Flight) -> None:
    link = sim_flight.link
    vehicle = sim_flight.probe.sim()
    # 100 simulated seconds of loiter = 12.5 s of wall time at speed 8: the blackout lands inside it.
    items = _patrol(200, 0, loiter_s=100)
    await _fly(link, items)
    await wait_for_snapshot(link, lambda s: s.mission.current == 2, timeout_s=20, what="the loiter item")

    vehicle.blackout(10.0)
    seen: list[TelemetrySnapshot] = []
    down = await wait_for_snapshot(link, lambda s: not s.link_up, timeout_s=6, what="link down", seen=seen)
    assert not link.connected and down.mission.total == 5
    with pytest.raises(LinkError, match=r"vehicle 1: hold failed: link down"):
        await link.hold()

    up = await wait_for_snapshot(link, lambda s: s.link_up, timeout_s=15, what="link back", seen=seen)
    assert up.in_air and up.armed
    done = await wait_for_snapshot(link, lambda s: s.mission.finished, timeout_s=30, what="mission end")
    assert done.mission.current == done.mission.total == 5
    assert [(e.index, e.value) for e in vehicle.payload_events] == [(1, 1.0)]
    assert vehicle.state.mission_state == "complete"
    await link.hold()  # and the link takes commands again


async def test_twenty_percent_packet_loss_still_completes(sim_flight: Flight) -> None:
    link = sim_flight.link
    vehicle = sim_flight.probe.sim()
    vehicle.set_packet_loss(20.0)
    items = _patrol(0, 150)
    await _fly(link, items)
    done = await wait_for_snapshot(link, lambda s: s.mission.finished, timeout_s=40, what="mission end")
    assert done.mission.total == 4
    assert [(e.index, e.value) for e in vehicle.payload_events] == [(1, 1.0)]
    await link.return_to_launch()
    landed = await wait_for_snapshot(
        link, lambda s: not s.armed and not s.in_air, timeout_s=40, what="landing"
    )
    assert landed.lat is not None and landed.lon is not None
    assert distance_m(landed.lat, landed.lon, HOME[0], HOME[1]) < 5


async def test_a_restarted_service_resumes_progress_tracking() -> None:
    base = free_udp_base(1)
    url = f"udpin://0.0.0.0:{base}"
    async with SimFleet(count=1, base_port=base, speed=8.0, home=HOME) as fleet:
        items = _patrol(150, 150, loiter_s=40)
        async with LinkManager() as first:
            link = await first.add_vehicle(sysid=1, url=url)
            await link.wait_ready(timeout_s=15)
            await _fly(link, items)
            await wait_for_snapshot(link, lambda s: s.mission.current >= 1, timeout_s=20, what="first leg")
        # the service is gone; the vehicle flies on
        async with LinkManager() as second:
            link = await second.add_vehicle(sysid=1, url=url)
            await link.wait_connected(timeout_s=10)
            tracked = await wait_for_snapshot(
                link,
                lambda s: s.mission.total == len(items),
                timeout_s=15,
                what="the downloaded mission count",
            )
            assert not tracked.mission.finished
            done = await wait_for_snapshot(
                link, lambda s: s.mission.finished, timeout_s=30, what="mission end"
            )
            assert done.mission.current == len(items)
        assert fleet.vehicles[0].state.mission_state == "complete"


async def test_start_mission_retries_while_the_vehicle_refuses_after_an_upload() -> None:
    # Real PX4 answers "Switching to Mission is currently not available" right after an upload.
    base = free_udp_base(1)
    config = SimConfig(mission_start_refusal_wall_s=5.0)
    async with (
        SimFleet(count=1, base_port=base, speed=8.0, home=HOME, config=config) as fleet,
        LinkManager() as links,
    ):
        link = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base}")
        await link.wait_ready(timeout_s=15)
        await _fly(link, _patrol(100, 0))
        assert link.mode is FlightMode.MISSION
        vehicle = fleet.vehicles[0]
        to_mission = [
            p for c, p in vehicle.commands_received if c == 176 and (int(p[1]), int(p[2])) == (4, 4)
        ]
        assert len(to_mission) >= 2, "the refused first switch was not retried"
        await wait_for_snapshot(link, lambda s: s.mission.finished, timeout_s=20, what="mission end")


async def test_mission_end_is_seen_when_the_last_item_reached_message_is_lost(sim_flight: Flight) -> None:
    # MISSION_ITEM_REACHED is sent once; the end must still show from MISSION_CURRENT's state (1 Hz).
    link = sim_flight.link
    vehicle = sim_flight.probe.sim()
    await _fly(link, _patrol(100, 0))
    await wait_for_snapshot(link, lambda s: s.mission.current == 3, timeout_s=20, what="the last leg")
    vehicle.set_packet_loss(100.0)
    try:
        for _ in range(100):
            if vehicle.state.mission_state == "complete":
                break
            await asyncio.sleep(0.05)
        assert vehicle.state.mission_state == "complete"
        await asyncio.sleep(0.3)
    finally:
        vehicle.set_packet_loss(0.0)
    done = await wait_for_snapshot(link, lambda s: s.mission.finished, timeout_s=5, what="mission end")
    assert done.mission.current == done.mission.total == 4
