"""Heartbeat, health, streams, params and the command protocol as PX4 speaks them."""

from __future__ import annotations

import asyncio
import struct
import sys
import time

import pytest
from pymavlink.dialects.v20 import common as mavlink

from sim import SimConfig, SimFleet
from sim.config import DEFAULT_STREAM_HZ
from tests.sim.conftest import HOME, FlyFactory
from tests.sim.gcs import Gcs

pytestmark = pytest.mark.timeout(30)

HOLD = (4, 3)


async def test_heartbeat_is_a_px4_quad_in_hold(fly: FlyFactory) -> None:
    _, _, gcs = await fly()
    hb = await gcs.expect("HEARTBEAT", since=0)
    assert hb.get_srcSystem() == 1 and hb.get_srcComponent() == 1
    assert hb.type == mavlink.MAV_TYPE_QUADROTOR
    assert hb.autopilot == mavlink.MAV_AUTOPILOT_PX4
    assert hb.base_mode & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    assert not hb.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    assert hb.custom_mode == (4 << 16) | (3 << 24)  # AUTO.LOITER
    status = await gcs.expect("SYS_STATUS", since=0)
    for bit in (0x1, 0x2, 0x4, 0x20, 0x10000000):  # gyro, accel, mag, GPS, pre-arm
        assert status.onboard_control_sensors_health & bit, hex(bit)


async def test_autopilot_version_and_home_on_request(fly: FlyFactory) -> None:
    _, _, gcs = await fly()
    since = gcs.mark()
    assert await gcs.command_long(mavlink.MAV_CMD_REQUEST_MESSAGE, 148) == mavlink.MAV_RESULT_ACCEPTED
    version = await gcs.expect("AUTOPILOT_VERSION", since=since)
    assert version.capabilities & mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT
    assert version.capabilities & mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
    since = gcs.mark()
    assert await gcs.command_long(mavlink.MAV_CMD_REQUEST_MESSAGE, 242) == mavlink.MAV_RESULT_ACCEPTED
    home = await gcs.expect("HOME_POSITION", since=since)
    assert (home.latitude, home.longitude, home.altitude) == (398200000, 1099800000, 1100000)


async def test_position_streams_at_10_hz_wall_and_honours_set_message_interval(fly: FlyFactory) -> None:
    _, _, gcs = await fly(speed=5.0)
    since = gcs.mark()
    await asyncio.sleep(1.2)
    assert 8 <= gcs.count("GLOBAL_POSITION_INT", since) <= 15
    assert 1 <= gcs.count("HEARTBEAT", since) <= 2  # 1 Hz wall even at speed 5
    result = await gcs.command_long(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 33, 500_000)
    assert result == mavlink.MAV_RESULT_ACCEPTED
    since = gcs.mark()
    await asyncio.sleep(1.2)
    assert 2 <= gcs.count("GLOBAL_POSITION_INT", since) <= 3
    assert await gcs.command_long(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 33, -1) == 0
    since = gcs.mark()
    await asyncio.sleep(0.3)
    assert gcs.count("GLOBAL_POSITION_INT", since) == 0


async def test_params_read_set_list_with_bytewise_integers(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    value = await gcs.get_param("MIS_TAKEOFF_ALT")
    assert value.param_type == mavlink.MAV_PARAM_TYPE_REAL32 and value.param_value == pytest.approx(2.5)
    echo = await gcs.set_param("MIS_TAKEOFF_ALT", 17.5)
    assert echo.param_value == pytest.approx(17.5)
    assert vehicle.params["MIS_TAKEOFF_ALT"] == pytest.approx(17.5)
    gf = await gcs.get_param("GF_ACTION")
    assert gf.param_type == mavlink.MAV_PARAM_TYPE_INT32
    assert struct.unpack("<i", struct.pack("<f", gf.param_value))[0] == 2  # PX4's default: hold
    since = gcs.mark()
    gcs.send(gcs._mav.param_request_list_encode(1, 1))
    first = await gcs.expect("PARAM_VALUE", since=since)
    await asyncio.sleep(0.2)
    names = {m.param_id for m in gcs.messages[since:] if m.get_type() == "PARAM_VALUE"}
    assert len(names) == first.param_count
    assert {"RTL_RETURN_ALT", "MPC_XY_CRUISE", "NAV_ACC_RAD", "BAT_CRIT_THR", "COM_DISARM_LAND"} <= names


async def test_unknown_command_is_unsupported(fly: FlyFactory) -> None:
    _, _, gcs = await fly()
    assert await gcs.command_long(31337) == mavlink.MAV_RESULT_UNSUPPORTED
    assert await gcs.command_long(mavlink.MAV_CMD_DO_SET_RELAY, 1, 1) == mavlink.MAV_RESULT_UNSUPPORTED


async def test_retransmitted_command_gets_the_same_ack_and_runs_once(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    first = await gcs.command_long(mavlink.MAV_CMD_DO_SET_ACTUATOR, 0.75, NAN, NAN, NAN, NAN, NAN, 0)
    again = await gcs.command_long(
        mavlink.MAV_CMD_DO_SET_ACTUATOR, 0.75, NAN, NAN, NAN, NAN, NAN, 0, confirmation=1
    )
    assert first == again == mavlink.MAV_RESULT_ACCEPTED
    events = vehicle.payload_events
    assert [(e.index, e.value, e.source) for e in events] == [(1, 0.75, "command")]
    assert len([c for c in vehicle.commands_received if c[0] == mavlink.MAV_CMD_DO_SET_ACTUATOR]) == 2


async def test_fleet_vehicles_have_own_sysid_and_port() -> None:
    gcs_a = Gcs()
    port = await gcs_a.open()
    gcs_b = Gcs()
    try:
        await gcs_b.open(port + 1)
    except OSError:
        gcs_a.close()
        pytest.skip("port after an ephemeral one is busy")
    try:
        async with SimFleet(count=2, base_port=port, speed=5.0, home=HOME) as fleet:
            hb_a = await gcs_a.wait_connected()
            hb_b = await gcs_b.wait_connected()
            assert (hb_a.get_srcSystem(), hb_b.get_srcSystem()) == (1, 2)
            assert [v.port for v in fleet.vehicles] == [port, port + 1]
            # the vehicle replies to whoever spoke last
            gcs_b.target_system = 2
            assert await gcs_b.command_long(mavlink.MAV_CMD_REQUEST_MESSAGE, 148) == 0
            assert fleet.vehicles[1].gcs_address[1] == port + 1
    finally:
        gcs_a.close()
        gcs_b.close()


async def test_fleet_homes_put_each_vehicle_on_its_own_dock() -> None:
    docks = [(39.82, 109.98, 1100.0), (39.821, 109.981, 1102.0)]
    gcs = Gcs()
    port = await gcs.open()
    try:
        async with SimFleet(count=2, base_port=port, speed=5.0, homes=docks) as fleet:
            await gcs.wait_connected()
            home = await gcs.expect("HOME_POSITION", since=0)
            assert (home.latitude, home.longitude) == (398200000, 1099800000)
            second = fleet.vehicles[1].state
            assert (second.lat, second.lon, second.alt_amsl_m) == pytest.approx(docks[1])
    finally:
        gcs.close()


def test_bad_fleet_arguments_name_the_problem() -> None:
    with pytest.raises(ValueError, match="speed factor"):
        SimFleet(count=1, speed=0)
    with pytest.raises(ValueError, match="count"):
        SimFleet(count=0)
    with pytest.raises(ValueError, match="home"):
        SimFleet(count=1, home=(91.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="homes has 1 entries for 2 vehicles"):
        SimFleet(count=2, homes=[(0.0, 0.0, 0.0)])


async def test_cli_runs_fleet_until_sigterm() -> None:
    gcs = Gcs()
    port = await gcs.open()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "--count", "1", "--base-port", str(port), "--speed", "5",
        "--home", "39.82,109.98,1100",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert b"sysid=1" in line and str(port).encode() in line
        hb = await gcs.wait_connected(timeout_s=5)
        assert hb.autopilot == mavlink.MAV_AUTOPILOT_PX4
    finally:
        proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 10)
        gcs.close()
    assert code == 0


async def test_cli_puts_each_vehicle_at_its_own_home_when_given_one_per_vehicle() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "--count", "2", "--base-port", "14990", "--speed", "5",
        "--home", "39.8100,109.9500,1100", "--home", "39.8300,110.0100,1105",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [await asyncio.wait_for(proc.stdout.readline(), 10) for _ in range(2)]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert b"sysid=1" in lines[0] and b"home=39.8100000,109.9500000,1100.0" in lines[0]
    assert b"sysid=2" in lines[1] and b"home=39.8300000,110.0100000,1105.0" in lines[1]


async def test_cli_refuses_a_home_count_that_matches_neither_one_nor_the_fleet() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "--count", "3", "--home", "39.81,109.95", "--home", "39.83,110.01",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 2 and b"--home given 2 times for 3 vehicles" in err


async def test_cli_rejects_bad_home() -> None:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "--home", "abc", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 2 and b"--home" in err
    assert time.monotonic() - started < 10


NAN = float("nan")


async def test_system_time_follows_each_position_with_the_wall_clock_of_sending(fly: FlyFactory) -> None:
    _, _, gcs = await fly(speed=5.0)
    wall_minus_mono = time.time() - time.monotonic()
    since = gcs.mark()
    await asyncio.sleep(1.2)
    msgs, arrivals = gcs.messages[since:], gcs.arrivals[since:]
    positions = [i for i, m in enumerate(msgs[:-1]) if m.get_type() == "GLOBAL_POSITION_INT"]
    assert 8 <= len(positions) <= 15
    for i in positions:
        position, after = msgs[i], msgs[i + 1]
        assert after.get_type() == "SYSTEM_TIME", f"{after.get_type()} right after a position"
        assert after.time_boot_ms == position.time_boot_ms  # the same tick
        received_unix_s = arrivals[i + 1] + wall_minus_mono
        assert 0.0 <= received_unix_s - after.time_unix_usec / 1e6 < 0.05
    assert gcs.count("SYSTEM_TIME", since) - len(positions) in (0, 1)  # +1: a pair cut at the window's end


async def test_system_time_rate_is_configurable_and_can_be_switched_off(fly: FlyFactory) -> None:
    rates = {**DEFAULT_STREAM_HZ, "SYSTEM_TIME": 2.0}
    _, _, gcs = await fly(speed=5.0, config=SimConfig(stream_hz=rates))
    since = gcs.mark()
    await asyncio.sleep(1.2)
    assert 2 <= gcs.count("SYSTEM_TIME", since) <= 3
    assert 8 <= gcs.count("GLOBAL_POSITION_INT", since) <= 15
    _, _, quiet = await fly(speed=5.0, config=SimConfig(stream_hz={**DEFAULT_STREAM_HZ, "SYSTEM_TIME": 0.0}))
    since = quiet.mark()
    await asyncio.sleep(0.5)
    assert quiet.count("SYSTEM_TIME", since) == 0 and quiet.count("GLOBAL_POSITION_INT", since) >= 3


async def test_vehicles_stream_to_every_ground_station_and_number_sysids_past_the_gcs_ids() -> None:
    import socket

    from sim.fleet import sysid_for

    assert [sysid_for(i) for i in (0, 243, 244, 252, 253)] == [1, 244, 246, 254, 1]
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        socks.append(s)
    primary, extra = (s.getsockname()[1] for s in socks)
    async with SimFleet(count=1, base_port=primary, config=SimConfig(extra_gcs_base_ports=(extra,))):
        for s in socks:  # both ground stations hear the vehicle
            data = await asyncio.get_running_loop().run_in_executor(None, s.recv, 2048)
            assert data[0] == 0xFD and data[5] == 1  # MAVLink 2 from sysid 1
    for s in socks:
        s.close()
