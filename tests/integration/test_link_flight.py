"""Flights through mission.link: real MAVSDK against sim/ over UDP, and against PX4 SITL when marked px4.

Each test body runs against either vehicle (see conftest.flight); checks that need the inside of the vehicle
(payload events, the stored mission) are made only when the probe is the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from flightplans.items import FenceCircle, FencePolygon, Geofence, SetActuator, Takeoff, Waypoint
from mission.errors import LinkError
from mission.link import FlightMode, RawMissionItem, TelemetrySnapshot
from tests.integration.conftest import (
    RTL_RETURN_ALT_M,
    SIM_SPEED,
    Flight,
    distance_m,
    offset,
    wait_for_snapshot,
)
from tests.support.px4 import px4_speed

# Waits are sized from each vehicle's flight time (Flight.wall_s); the slowest flight is ~200 s of vehicle
# time, so the test's own limit follows the slower of the two speed factors.
pytestmark = pytest.mark.timeout(max(60.0, 60.0 + 400.0 / min(px4_speed(), SIM_SPEED)))

ALT_M = 20.0


async def _take_off(flight: Flight, alt_m: float = ALT_M) -> None:
    link = flight.link
    await link.arm()
    await link.takeoff(alt_m)
    await wait_for_snapshot(
        link,
        lambda s: s.in_air and (s.alt_rel_m or 0) > alt_m - 2,
        timeout_s=flight.wall_s(flight.climb_s(alt_m)),
        what=f"climb to {alt_m} m",
    )


async def test_connects_and_reports_health_at_the_throttled_rate(flight: Flight) -> None:
    link = flight.link
    snap = link.latest
    assert snap is not None and snap.link_up and link.connected
    assert snap.vehicle_id == link.vehicle_id
    assert snap.gps_ok and snap.home_ok
    assert snap.lat is not None and snap.lon is not None
    assert distance_m(snap.lat, snap.lon, flight.home[0], flight.home[1]) < 5
    assert snap.battery_pct is not None and 50 < snap.battery_pct <= 100
    assert snap.mode is not FlightMode.UNKNOWN
    assert not snap.armed and not snap.in_air

    # The vehicle streams GLOBAL_POSITION_INT at ~50 Hz; the service must see ~10 snapshots a second.
    received: list[TelemetrySnapshot] = []

    async def collect() -> None:
        async for s in link.snapshots():
            received.append(s)

    task = asyncio.create_task(collect())
    await asyncio.sleep(2.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # ~20 expected; the lower bound leaves room for a loaded 2-core machine, the upper one is the throttle
    assert 10 <= len(received) <= 23, f"{len(received)} snapshots in 2 s at telemetry_hz=10"
    assert all(s.link_up for s in received)

    if flight.probe.is_sim:  # health follows the vehicle: GPS lost, then back
        flight.probe.sim().set_gps_loss(True)
        await wait_for_snapshot(link, lambda s: not s.gps_ok, timeout_s=5, what="GPS loss reported")
        with pytest.raises(
            LinkError, match=rf"vehicle {link.vehicle_id}: wait ready failed: not ready after 1 s: GPS"
        ):
            await link.wait_ready(timeout_s=1.0)
        flight.probe.sim().set_gps_loss(False)
        await wait_for_snapshot(link, lambda s: s.gps_ok, timeout_s=5, what="GPS back")


async def test_mission_with_payload_completes_then_rtl_lands_and_disarms(flight: Flight) -> None:
    link = flight.link
    home = flight.home
    wp1 = offset(120, 0, origin=home)
    wp2 = offset(120, 80, origin=home)
    items = [
        Takeoff(alt_m=ALT_M),
        Waypoint(lat=wp1[0], lon=wp1[1], alt_m=ALT_M),
        SetActuator(index=2, value=1.0),  # e.g. the spotlight
        Waypoint(lat=wp2[0], lon=wp2[1], alt_m=ALT_M),
    ]
    await link.upload_mission(items)
    downloaded = await link.download_mission()
    assert [type(i) for i in downloaded] == [type(i) for i in items]
    assert downloaded[0] == items[0] and downloaded[2] == items[2]
    for got, sent in ((downloaded[1], items[1]), (downloaded[3], items[3])):
        assert isinstance(got, Waypoint) and isinstance(sent, Waypoint)
        assert (got.lat, got.lon, got.alt_m) == pytest.approx((sent.lat, sent.lon, sent.alt_m), abs=1e-6)

    await _take_off(flight)
    await link.start_mission()
    assert link.mode is FlightMode.MISSION

    seen: list[TelemetrySnapshot] = []
    await wait_for_snapshot(
        link,
        lambda s: s.mission.current >= 1,
        timeout_s=flight.wall_s(flight.legs_s(120)),
        what="first leg",
        seen=seen,
    )
    await link.pause()
    paused = await wait_for_snapshot(
        link, lambda s: s.mode is FlightMode.HOLD, timeout_s=5, what="paused (hold)"
    )
    await asyncio.sleep(1.0)
    still = link.latest
    assert still is not None and still.lat is not None and paused.lat is not None and paused.lon is not None
    assert still.lon is not None and distance_m(paused.lat, paused.lon, still.lat, still.lon) < 15
    assert not still.mission.finished
    await link.resume()
    assert link.mode is FlightMode.MISSION
    done = await wait_for_snapshot(
        link,
        lambda s: s.mission.finished,
        timeout_s=flight.wall_s(flight.legs_s(120, 80)),
        what="mission end",
        seen=seen,
    )
    assert done.mission.total == 4 and done.mission.current == 4
    progress = [s.mission.current for s in seen if s.mission.total == 4]
    assert progress == sorted(progress), f"mission progress went backwards: {progress}"
    assert len(set(progress)) >= 2, f"progress was not reported along the way: {set(progress)}"
    assert done.lat is not None and done.lon is not None
    assert distance_m(done.lat, done.lon, *wp2) < 10

    if flight.probe.is_sim:
        events = flight.probe.sim().payload_events
        assert [(e.index, e.value, e.source) for e in events] == [(2, 1.0, "mission")]
        assert distance_m(events[0].lat, events[0].lon, *wp1) < 10  # fired at the first waypoint

    await link.return_to_launch()
    way_home = distance_m(done.lat, done.lon, home[0], home[1])
    rtl_s = (
        flight.climb_s(RTL_RETURN_ALT_M - ALT_M)
        + flight.legs_s(way_home)
        + flight.descent_s(RTL_RETURN_ALT_M)
    )
    landed = await wait_for_snapshot(
        link,
        lambda s: not s.in_air and not s.armed,
        timeout_s=flight.wall_s(rtl_s),
        what="landing and disarming at home",
    )
    assert landed.lat is not None and landed.lon is not None
    assert distance_m(landed.lat, landed.lon, home[0], home[1]) < 5
    # Landed is the landed state; the height need only be plausible (PX4 baro drifts ~1 m on the ground).
    assert abs(landed.alt_rel_m or 0.0) < 2.5


async def test_goto_then_orbit(flight: Flight) -> None:
    link = flight.link
    await _take_off(flight)
    target = offset(-100, 0, origin=flight.home)
    await link.goto(target[0], target[1], 30.0)
    there = await wait_for_snapshot(
        link,
        lambda s: (
            s.lat is not None
            and s.lon is not None
            and distance_m(s.lat, s.lon, *target) < 3
            and abs((s.alt_rel_m or 0) - 30) < 2
        ),
        timeout_s=flight.wall_s(flight.legs_s(100) + flight.climb_s(10)),
        what="arrival at the goto point",
    )
    assert there.in_air

    center = offset(-100, 100, origin=flight.home)
    await link.orbit(center[0], center[1], 30.0, radius_m=40.0, speed_m_s=8.0, clockwise=False)

    def on_circle(s: TelemetrySnapshot) -> bool:
        near = s.lat is not None and s.lon is not None and abs(distance_m(s.lat, s.lon, *center) - 40) < 5
        return near and s.mode is FlightMode.ORBIT

    first = await wait_for_snapshot(
        link, on_circle, timeout_s=flight.wall_s(flight.legs_s(60)), what="orbiting on the 40 m circle"
    )
    assert first.lat is not None and first.lon is not None
    # Still on the circle while moving around it. PX4 builds the orbit speed up slowly (3.7 m in the first
    # 1.5 s): give it the time to cover 15 m of arc at a third of the commanded speed, plus spin-up.
    seen: list[TelemetrySnapshot] = []
    later = await wait_for_snapshot(
        link,
        lambda s: on_circle(s) and distance_m(first.lat, first.lon, s.lat, s.lon) > 15,  # type: ignore[arg-type]
        timeout_s=flight.wall_s(15 / (8.0 / 3) + 5),
        what="moving along the orbit",
        seen=seen,
    )
    assert later.mode is FlightMode.ORBIT
    off = [s for s in seen if s.mode is FlightMode.ORBIT and not on_circle(s)]
    assert not off, f"left the circle while orbiting: {off[0]}"

    await link.hold()
    held = await wait_for_snapshot(
        link, lambda s: s.mode is FlightMode.HOLD, timeout_s=flight.wall_s(2, slack_s=5), what="hold"
    )
    assert held.in_air


async def test_geofence_upload_and_bad_fence(flight: Flight) -> None:
    link = flight.link
    home = flight.home
    area = tuple(offset(n, e, origin=home) for n, e in ((-500, -500), (-500, 500), (500, 500), (500, -500)))
    no_fly = offset(200, 200, origin=home)
    fence = Geofence(
        shapes=(
            FencePolygon(points=area, inclusion=True),
            FenceCircle(lat=no_fly[0], lon=no_fly[1], radius_m=50.0, inclusion=False),
        )
    )
    await link.upload_geofence(fence)
    if flight.probe.is_sim:
        areas = flight.probe.sim().fence.areas
        assert [a.inclusion for a in areas] == [True, False]

    with pytest.raises(
        LinkError,
        match=rf"vehicle {link.vehicle_id}: upload geofence failed: shape 0: a polygon needs >= 3 points",
    ):
        await link.upload_geofence(Geofence(shapes=(FencePolygon(points=area[:2], inclusion=True),)))


async def test_unsupported_mission_item_is_a_clear_error_and_nothing_flies(flight: Flight) -> None:
    link = flight.link
    wp = offset(50, 0, origin=flight.home)
    relay = RawMissionItem(command=181, param1=0, param2=1)  # DO_SET_RELAY: PX4 refuses it in missions
    items = [Takeoff(alt_m=ALT_M), Waypoint(lat=wp[0], lon=wp[1], alt_m=ALT_M), relay]

    with pytest.raises(LinkError) as refused:
        await link.upload_mission(items)
    message = str(refused.value)
    assert message.startswith(f"vehicle {link.vehicle_id}: upload mission failed:")
    assert "item 2 (DO_SET_RELAY, command 181)" in message
    assert refused.value.vehicle_id == link.vehicle_id and refused.value.action == "upload mission"

    # A typed item the link can check itself never reaches the vehicle.
    with pytest.raises(LinkError, match=r"item 1 \(set_actuator\): actuator index must be 1..6, got 9"):
        await link.upload_mission([Takeoff(alt_m=ALT_M), SetActuator(index=9, value=1.0)])

    with pytest.raises(LinkError, match="start mission failed: the last mission upload failed"):
        await link.start_mission()

    await asyncio.sleep(1.0)
    snap = link.latest
    assert snap is not None and not snap.armed and not snap.in_air
    assert abs(snap.alt_rel_m or 0.0) < 0.5
    if flight.probe.is_sim:
        assert flight.probe.sim().mission_items() == []


async def test_live_commands_disarm_clear_actuator_speed_and_land(flight: Flight) -> None:
    link = flight.link
    await link.arm()
    await wait_for_snapshot(link, lambda s: s.armed, timeout_s=5, what="armed")
    await link.disarm()
    await wait_for_snapshot(link, lambda s: not s.armed, timeout_s=5, what="disarmed")

    wp = offset(60, 0, origin=flight.home)
    await link.upload_mission([Takeoff(alt_m=10), Waypoint(lat=wp[0], lon=wp[1], alt_m=10)])
    await link.clear_mission()
    assert await link.download_mission() == []
    if flight.probe.is_sim:
        assert flight.probe.sim().mission_items() == []

    before = flight.probe.vehicle.autopilot.params["MIS_TAKEOFF_ALT"] if flight.probe.is_sim else None
    await _take_off(flight, 15.0)  # the altitude is in the take-off command
    snap = link.latest
    assert snap is not None and (snap.alt_rel_m or 0.0) < 15.0 + 3.0, "climbed past the commanded altitude"
    if flight.probe.is_sim:  # the vehicle's own take-off altitude is left alone
        assert flight.probe.sim().autopilot.params["MIS_TAKEOFF_ALT"] == before
    result = await link.set_actuator(3, 0.5)  # e.g. the speaker, live
    # Acked, never confirmed: sim/ sends no output reports; PX4 SIH reports its outputs (SERVO_OUTPUT_RAW) but
    # has none mapped to "Actuator Set 3", and accepts the command all the same.
    assert result.delivery == "accepted" and not result.confirmed
    if flight.probe.is_sim:
        assert "reports no actuator outputs" in result.note
    else:
        assert "map an output to Actuator Set 3 (PX4: PWM_MAIN_FUNCn = 303)" in result.note
    await link.set_speed(4.0)
    if flight.probe.is_sim:
        vehicle = flight.probe.sim()
        assert [(e.index, e.value, e.source) for e in vehicle.payload_events] == [(3, 0.5, "command")]
        assert any(c == 178 and p[1] == 4.0 for c, p in vehicle.commands_received)
    with pytest.raises(
        LinkError,
        match=rf"vehicle {link.vehicle_id}: set actuator failed: actuator index must be 1\.\.6, got 7",
    ):
        await link.set_actuator(7, 0.5)

    await link.land()
    landed = await wait_for_snapshot(
        link,
        lambda s: not s.in_air and not s.armed,
        timeout_s=flight.wall_s(flight.descent_s(15.0)),
        what="landed and disarmed",
    )
    # Landed is the landed state; the height need only be plausible (PX4 baro drifts ~1 m on the ground).
    assert abs(landed.alt_rel_m or 0.0) < 2.5
