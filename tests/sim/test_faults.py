"""Faults switched at run time: packet loss, blackout, reboot."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymavlink.dialects.v20 import common as mavlink

from sim import SimConfig
from tests.sim.conftest import HOME, FlyFactory
from tests.sim.gcs import NAN, Item

pytestmark = pytest.mark.timeout(30)

LAT, LON, AMSL = HOME
ARM = mavlink.MAV_CMD_COMPONENT_ARM_DISARM
REBOOT = mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN


async def test_packet_loss_drops_that_share_both_ways(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly(config=SimConfig(random_seed=7))
    since = gcs.mark()
    await asyncio.sleep(1.5)
    clean = len(gcs.messages) - since  # all streams: ~50 messages
    vehicle.set_packet_loss(50)
    since = gcs.mark()
    await asyncio.sleep(1.5)
    lossy = len(gcs.messages) - since
    assert 0.3 * clean <= lossy <= 0.7 * clean
    since = gcs.mark()
    for _ in range(40):
        gcs.send(gcs._mav.param_request_read_encode(1, 1, b"NAV_ACC_RAD", -1))
    await asyncio.sleep(0.2)
    answered = gcs.count("PARAM_VALUE", since)
    assert 3 <= answered <= 18  # ~25 %: request and reply each survive half the time
    vehicle.set_packet_loss(0)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        vehicle.set_packet_loss(120)


async def test_upload_completes_through_packet_loss(fly: FlyFactory) -> None:
    config = SimConfig(random_seed=3, mission_rerequest_wall_s=0.1)
    _, vehicle, gcs = await fly(config=config)
    vehicle.set_packet_loss(25)
    items = [Item(mavlink.MAV_CMD_NAV_WAYPOINT, LAT + 0.0001 * i, LON, 20.0) for i in range(10)]
    result = None
    for _ in range(10):  # a lost MISSION_COUNT or ACK needs a retry, as MAVSDK does
        try:
            result = await gcs.upload(items, timeout_s=1.0)
            break
        except TimeoutError:
            continue
    assert result == mavlink.MAV_MISSION_ACCEPTED
    assert len(vehicle.mission_items()) == 10


async def test_blackout_silences_both_ways_then_resumes(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    vehicle.blackout(1.0)
    start = time.monotonic()
    since = gcs.mark()
    with pytest.raises(TimeoutError):
        await gcs.command_long(mavlink.MAV_CMD_DO_SET_ACTUATOR, 0.5, NAN, NAN, NAN, NAN, NAN, timeout_s=0.5)
    await asyncio.sleep(max(0.0, 0.9 - (time.monotonic() - start)))
    assert gcs.count("GLOBAL_POSITION_INT", since) == 0
    await gcs.expect("HEARTBEAT", timeout_s=2.0)
    assert vehicle.payload_events == []  # the command never arrived
    assert await gcs.command_long(mavlink.MAV_CMD_DO_SET_ACTUATOR, 0.5, NAN, NAN, NAN, NAN, NAN, 0) == 0
    assert len(vehicle.payload_events) == 1


async def test_reboot_command_restarts_silently_and_keeps_the_mission(fly: FlyFactory) -> None:
    _, _, gcs = await fly(speed=4.0)
    assert await gcs.upload([Item(mavlink.MAV_CMD_NAV_WAYPOINT, LAT + 0.001, LON, 20.0)]) == 0
    await asyncio.sleep(0.3)
    before = await gcs.position()
    assert before.time_boot_ms > 1000
    assert await gcs.command_long(REBOOT, 1) == mavlink.MAV_RESULT_ACCEPTED
    since = gcs.mark()
    await asyncio.sleep(0.4)  # 2 s simulated silence at speed 4 is 0.5 s wall
    assert gcs.count("HEARTBEAT", since) == 0
    after = await gcs.position(timeout_s=2.0)
    assert after.time_boot_ms < before.time_boot_ms
    hb = await gcs.expect("HEARTBEAT")
    assert not hb.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    assert len(await gcs.download()) == 1


async def test_reboot_refused_while_armed(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    assert await gcs.command_long(ARM, 1) == 0
    assert await gcs.command_long(REBOOT, 1) == mavlink.MAV_RESULT_DENIED
    assert vehicle.state.armed


async def test_reboot_in_flight_comes_back_holding_with_the_mission(fly: FlyFactory) -> None:
    fleet, vehicle, gcs = await fly()
    items = [Item(mavlink.MAV_CMD_NAV_WAYPOINT, LAT + 0.003, LON, 20.0)]
    assert await gcs.upload(items) == 0
    await asyncio.sleep(0.4)
    assert await gcs.command_long(ARM, 1) == 0
    assert await gcs.set_mode(4, 4) == 0
    await fleet.wait(lambda: vehicle.state.alt_rel_m > 15, 10)
    await vehicle.reboot()
    state = vehicle.state
    assert (state.mode, state.armed, state.landed_state) == ("hold", True, "in_air")
    assert (state.mission_count, state.mission_seq, state.mission_state) == (1, 0, "paused")
    assert await gcs.set_mode(4, 4) == 0
    await gcs.wait_for("MISSION_ITEM_REACHED", lambda m: m.seq == 0)
