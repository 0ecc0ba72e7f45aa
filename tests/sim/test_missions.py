"""Mission, geofence and rally transfer with PX4's validation, and mission execution."""

from __future__ import annotations

import asyncio
import math

import pytest
from pymavlink.dialects.v20 import common as mavlink

from sim import SimConfig
from tests.sim.conftest import HOME, FlyFactory
from tests.sim.gcs import NAN, Item

pytestmark = pytest.mark.timeout(30)

LAT, LON, AMSL = HOME
NAV_WAYPOINT = mavlink.MAV_CMD_NAV_WAYPOINT
MISSION_FRAME = mavlink.MAV_FRAME_MISSION
MISSION = (4, 4)


def square(d: float = 0.0004, alt: float = 20.0) -> list[Item]:
    return [
        Item(NAV_WAYPOINT, LAT + d, LON, alt),
        Item(NAV_WAYPOINT, LAT + d, LON + d, alt),
        Item(NAV_WAYPOINT, LAT, LON + d, alt),
    ]


def fence_polygon(n: int, command: int, frame: int, d: float = 0.002) -> list[Item]:
    corners = [(LAT - d, LON - d), (LAT - d, LON + d), (LAT + d, LON + d), (LAT + d, LON - d)][:n]
    return [Item(command, lat, lon, 0.0, frame, (float(n), 0.0, 0.0, 0.0)) for lat, lon in corners]


async def test_download_round_trips_mission_fence_and_rally(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    actuator = Item(mavlink.MAV_CMD_DO_SET_ACTUATOR, frame=MISSION_FRAME, params=(1.0, NAN, NAN, NAN))
    items = [*square(), actuator]
    assert await gcs.upload(items) == mavlink.MAV_MISSION_ACCEPTED
    got = await gcs.download()
    assert [(m.command, m.x, m.y, m.z) for m in got] == [
        (i.command, round(i.lat * 1e7), round(i.lon * 1e7), i.z) for i in items
    ]
    assert got[3].param1 == 1.0 and math.isnan(got[3].param2)
    stored = vehicle.mission_items()
    assert [m.command for m in stored] == [16, 16, 16, 187]
    assert (stored[0].lat, stored[0].lon, stored[0].alt_m) == pytest.approx((LAT + 0.0004, LON, 20.0))
    assert stored[3].params[0] == 1.0
    fence = fence_polygon(4, mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, mavlink.MAV_FRAME_GLOBAL)
    assert await gcs.upload(fence, mission_type=1) == mavlink.MAV_MISSION_ACCEPTED
    assert len(await gcs.download(mission_type=1)) == 4
    assert len(vehicle.fence.areas) == 1 and vehicle.fence.areas[0].inclusion
    rally = [Item(mavlink.MAV_CMD_NAV_RALLY_POINT, LAT + 0.001, LON, 15.0)]
    assert await gcs.upload(rally, mission_type=2) == mavlink.MAV_MISSION_ACCEPTED
    assert [m.x for m in await gcs.download(mission_type=2)] == [round((LAT + 0.001) * 1e7)]


@pytest.mark.parametrize(
    "bad",
    [
        Item(mavlink.MAV_CMD_DO_SET_RELAY, frame=MISSION_FRAME, params=(1.0, 1.0, 0.0, 0.0)),
        Item(mavlink.MAV_CMD_DO_SET_SERVO, frame=MISSION_FRAME, params=(5.0, 1500.0, 0.0, 0.0)),
        Item(mavlink.MAV_CMD_DO_ORBIT, LAT, LON, 20.0, params=(20.0, 3.0, 0.0, 0.0)),
        Item(31337, frame=MISSION_FRAME),
    ],
    ids=["relay", "servo", "orbit", "unknown"],
)
async def test_unsupported_item_fails_the_upload_and_keeps_the_previous_mission(
    fly: FlyFactory, bad: Item
) -> None:
    _, vehicle, gcs = await fly()
    assert await gcs.upload(square()) == mavlink.MAV_MISSION_ACCEPTED
    result = await gcs.upload([square()[0], bad, square()[1]])
    assert result == mavlink.MAV_MISSION_UNSUPPORTED
    assert len(await gcs.download()) == 3
    assert len(vehicle.mission_items()) == 3


async def test_fence_polygon_needs_three_vertices_and_takes_frame_0_or_5(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    inclusion = mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
    two = fence_polygon(2, inclusion, mavlink.MAV_FRAME_GLOBAL)
    assert await gcs.upload(two, mission_type=1) == mavlink.MAV_MISSION_INVALID_PARAM1
    assert vehicle.fence.empty
    for frame in (mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_INT):
        three = fence_polygon(3, inclusion, frame)
        assert await gcs.upload(three, mission_type=1) == mavlink.MAV_MISSION_ACCEPTED
        assert len(vehicle.fence.areas[0].polygon_latlon) == 3


async def test_duplicate_count_rerequests_item_zero_and_out_of_order_items_are_ignored(
    fly: FlyFactory,
) -> None:
    _, vehicle, gcs = await fly()
    items = square()
    since = gcs.mark()
    gcs.send(gcs.count_msg(3))
    gcs.send(gcs.count_msg(3))
    await asyncio.sleep(0.1)
    requests = [m.seq for m in gcs.messages[since:] if m.get_type() == "MISSION_REQUEST_INT"]
    assert requests == [0, 0]
    since = gcs.mark()
    gcs.send(gcs.item_msg(2, items[2]))  # out of order
    gcs.send(gcs.item_msg(0, items[0]))
    nxt = await gcs.expect("MISSION_REQUEST_INT", since=since)
    assert nxt.seq == 1
    gcs.send(gcs.item_msg(1, items[1]))
    await gcs.expect("MISSION_REQUEST_INT", lambda m: m.seq == 2, since=since)
    gcs.send(gcs.item_msg(2, items[2]))
    ack = await gcs.expect("MISSION_ACK", since=since)
    assert ack.type == mavlink.MAV_MISSION_ACCEPTED
    assert [round(i.lat * 1e7) for i in items] == [m.x for m in vehicle.mission_items()]


async def test_upload_times_out_when_items_stop_coming(fly: FlyFactory) -> None:
    config = SimConfig(mission_upload_timeout_wall_s=0.5, mission_rerequest_wall_s=0.2)
    _, vehicle, gcs = await fly(config=config)
    since = gcs.mark()
    gcs.send(gcs.count_msg(3))
    ack = await gcs.expect("MISSION_ACK", since=since, timeout_s=2.0)
    assert ack.type == mavlink.MAV_MISSION_OPERATION_CANCELLED
    assert gcs.count("MISSION_REQUEST_INT", since) >= 2  # re-requested before giving up
    assert vehicle.mission_items() == []


async def test_mission_start_right_after_upload_is_refused_once(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    assert await gcs.upload(square()) == mavlink.MAV_MISSION_ACCEPTED
    assert await gcs.set_mode(*MISSION) == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
    assert await gcs.set_mode(*MISSION) == mavlink.MAV_RESULT_ACCEPTED
    main, sub, _ = await gcs.heartbeat_mode()
    assert (main, sub) == MISSION
    assert vehicle.state.mode == "mission"


async def test_mission_flies_items_in_order_with_payload_then_loiters_at_the_end(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly(speed=20.0)
    assert (await gcs.set_param("MIS_TAKEOFF_ALT", 10.0)).param_value == 10.0
    items = [
        Item(mavlink.MAV_CMD_NAV_TAKEOFF, 0.0, 0.0, 15.0),
        Item(NAV_WAYPOINT, LAT + 0.0005, LON, 20.0),
        Item(mavlink.MAV_CMD_DO_SET_ACTUATOR, frame=MISSION_FRAME, params=(1.0, NAN, NAN, NAN)),
        Item(mavlink.MAV_CMD_DO_CHANGE_SPEED, frame=MISSION_FRAME, params=(1.0, 5.0, -1.0, 0.0)),
        Item(mavlink.MAV_CMD_NAV_LOITER_TIME, LAT + 0.0005, LON + 0.0005, 20.0, params=(10.0, 0.0, 0.0, 0.0)),
        Item(NAV_WAYPOINT, LAT, LON + 0.0005, 25.0),
    ]
    assert await gcs.upload(items) == 0
    await asyncio.sleep(0.4)  # past PX4's post-upload refusal
    assert await gcs.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    since = gcs.mark()
    assert await gcs.set_mode(*MISSION) == 0
    done = await gcs.expect("MISSION_CURRENT", lambda m: m.mission_state == 5, since=since, timeout_s=20)
    assert (done.seq, done.total) == (5, 6)
    reached = [m.seq for m in gcs.messages[since:] if m.get_type() == "MISSION_ITEM_REACHED"]
    assert reached == [0, 1, 2, 3, 4, 5]
    (event,) = vehicle.payload_events
    assert (event.index, event.value, event.source) == (1, 1.0, "mission")
    assert event.lat == pytest.approx(LAT + 0.0005, abs=3e-5) and event.alt_rel_m == pytest.approx(20, abs=1)
    assert vehicle.autopilot.cruise_m_s == 5.0
    # PX4 v1.17 ends a mission flown in the air in AUTO.LOITER ("Mission finished, loitering")
    await gcs.wait_for("HEARTBEAT", lambda m: m.custom_mode == (4 << 16) | (3 << 24) and m.base_mode & 128)
    assert (await gcs.expect("MISSION_CURRENT")).mission_state == 5
    pos = await gcs.position()
    assert pos.relative_alt == pytest.approx(25_000, abs=1000)
    assert pos.lon == pytest.approx(round((LON + 0.0005) * 1e7), abs=300)


async def test_hold_pauses_and_mission_resumes_at_the_same_item(fly: FlyFactory) -> None:
    fleet, vehicle, gcs = await fly(speed=20.0)
    far = [Item(NAV_WAYPOINT, LAT + 0.002, LON, 20.0), Item(NAV_WAYPOINT, LAT, LON, 20.0)]
    assert await gcs.upload(far) == 0
    await asyncio.sleep(0.4)
    assert await gcs.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    assert await gcs.set_mode(*MISSION) == 0
    await fleet.wait(lambda: vehicle.state.alt_rel_m > 15 and vehicle.state.ground_speed_m_s > 3, 15)
    since = gcs.mark()
    assert await gcs.set_mode(4, 3) == 0
    paused = await gcs.expect("MISSION_CURRENT", lambda m: m.mission_state == 4, since=since)
    assert paused.seq == 0
    await asyncio.sleep(0.4)
    assert vehicle.state.ground_speed_m_s < 0.5
    assert await gcs.set_mode(*MISSION) == 0
    resumed = await gcs.expect("MISSION_CURRENT", lambda m: m.mission_state == 3, since=since)
    assert resumed.seq == 0
    await gcs.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 0, timeout_s=10)


async def test_land_item_lands_and_disarms(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly(speed=20.0)
    items = [
        Item(NAV_WAYPOINT, LAT + 0.0003, LON, 10.0),
        Item(mavlink.MAV_CMD_NAV_LAND, LAT + 0.0003, LON, 0.0),
    ]
    assert await gcs.upload(items) == 0
    await asyncio.sleep(0.4)
    assert await gcs.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    assert await gcs.set_mode(*MISSION) == 0
    await gcs.wait_for("HEARTBEAT", lambda m: not m.base_mode & 128, timeout_s=15)
    state = await gcs.expect("EXTENDED_SYS_STATE")
    assert state.landed_state == mavlink.MAV_LANDED_STATE_ON_GROUND
    assert vehicle.state.lat == pytest.approx(LAT + 0.0003, abs=2e-5)


async def test_clear_all_and_set_current(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    assert await gcs.upload(square()) == 0
    since = gcs.mark()
    gcs.send(gcs._mav.mission_set_current_encode(1, 1, 2))
    current = await gcs.expect("MISSION_CURRENT", lambda m: m.seq == 2, since=since)
    assert current.total == 3
    since = gcs.mark()
    gcs.send(gcs._mav.mission_clear_all_encode(1, 1, 0))
    ack = await gcs.expect("MISSION_ACK", since=since)
    assert ack.type == mavlink.MAV_MISSION_ACCEPTED
    assert await gcs.download() == []
    assert vehicle.state.mission_state == "no_mission"
    assert await gcs.set_mode(*MISSION) == mavlink.MAV_RESULT_DENIED  # nothing to fly


async def test_delay_gripper_winch_and_rtl_items(fly: FlyFactory) -> None:
    fleet, vehicle, gcs = await fly(speed=20.0)
    assert (await gcs.set_param("RTL_RETURN_ALT", 15.0)).param_value == 15.0
    items = [
        Item(NAV_WAYPOINT, LAT + 0.0003, LON, 12.0),
        Item(mavlink.MAV_CMD_NAV_DELAY, frame=MISSION_FRAME, params=(20.0, -1, -1, -1)),
        Item(mavlink.MAV_CMD_DO_GRIPPER, frame=MISSION_FRAME, params=(1.0, 0.0, 0.0, 0.0)),
        Item(mavlink.MAV_CMD_DO_WINCH, frame=MISSION_FRAME, params=(1.0, 0.0, 0.0, 0.0)),
        Item(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, frame=MISSION_FRAME),
    ]
    assert await gcs.upload(items) == 0
    await asyncio.sleep(0.4)
    assert await gcs.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    since = gcs.mark()
    assert await gcs.set_mode(*MISSION) == 0
    after_wp = await gcs.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 0, since=since, timeout_s=10)
    after_delay = await gcs.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 1, since=since, timeout_s=5)
    delay_wall_s = gcs.arrival_of(after_delay) - gcs.arrival_of(after_wp)
    assert delay_wall_s == pytest.approx(20.0 / 20.0, abs=0.4)  # 20 s simulated at speed 20
    assert [(e.kind, e.index) for e in vehicle.payload_events] == [("gripper", 1), ("winch", 1)]
    await gcs.wait_for("HEARTBEAT", lambda m: m.custom_mode == (4 << 16) | (5 << 24), timeout_s=5)
    await fleet.wait(lambda: not vehicle.state.armed, 15)


async def test_circle_exclusion_fence_is_breached_inside(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    centre = (LAT + 0.001, LON)
    exclusion = Item(mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, *centre, 0.0, 0, (30.0, 0, 0, 0))
    assert await gcs.upload([exclusion], mission_type=1) == mavlink.MAV_MISSION_ACCEPTED
    (area,) = vehicle.fence.areas
    assert not area.inclusion and area.radius_m == 30.0
    frame = vehicle.autopilot.frame
    assert vehicle.fence.breached(*frame.to_ne(*centre))
    assert not vehicle.fence.breached(0.0, 0.0)  # home is 111 m away
    zero_radius = Item(mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, *centre, 0.0, 0, (0.0, 0, 0, 0))
    assert await gcs.upload([zero_radius], mission_type=1) == mavlink.MAV_MISSION_INVALID_PARAM1
    assert vehicle.fence.areas == (area,)  # the previous fence stays


async def test_new_count_mid_transfer_restarts_the_upload(fly: FlyFactory) -> None:
    _, vehicle, gcs = await fly()
    items = square()
    since = gcs.mark()
    gcs.send(gcs.count_msg(3))
    await gcs.expect("MISSION_REQUEST_INT", lambda m: m.seq == 0, since=since)
    gcs.send(gcs.item_msg(0, items[0]))
    await gcs.expect("MISSION_REQUEST_INT", lambda m: m.seq == 1, since=since)
    # the GCS gave up and uploads a two-item mission instead
    assert await gcs.upload(items[:2]) == mavlink.MAV_MISSION_ACCEPTED
    assert len(vehicle.mission_items()) == 2


async def test_armed_in_mission_mode_on_the_ground_takes_off_into_the_mission(fly: FlyFactory) -> None:
    """MISSION taken while disarmed (past PX4's post-upload refusal), then a plain arm: it flies at once."""
    _, _, gcs = await fly(speed=20.0)
    assert await gcs.upload([Item(NAV_WAYPOINT, LAT + 0.0003, LON, 10.0)]) == 0
    await asyncio.sleep(0.4)  # past PX4's post-upload refusal
    assert await gcs.set_mode(*MISSION) == 0
    await gcs.wait_for("HEARTBEAT", lambda m: m.custom_mode == (4 << 16) | (4 << 24))
    assert await gcs.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    await gcs.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 0, timeout_s=15)


async def test_armed_on_the_ground_without_taking_off_disarms_after_com_disarm_prflt(fly: FlyFactory) -> None:
    """PX4's preflight auto-disarm: what turns a start refused for too long into a disarmed vehicle."""
    _, vehicle, gcs = await fly(speed=5.0)
    assert await gcs.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    armed_at = vehicle.state.sim_time_s
    text = await gcs.wait_for("STATUSTEXT", lambda m: "preflight" in m.text, timeout_s=10)
    assert "Disarmed by auto preflight disarming" in text.text
    assert not vehicle.state.armed
    assert vehicle.state.sim_time_s - armed_at == pytest.approx(10.0, abs=1.5)
