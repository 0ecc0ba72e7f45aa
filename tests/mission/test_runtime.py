"""The Runtime against a simulated vehicle: live events, link loss, vehicle failsafes, in-process restart."""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import asynccontextmanager

import pytest
from sqlmodel import select

from mission.db import make_engine, session_scope
from mission.fleet.models import Vehicle
from mission.link import LinkManager
from mission.missions.models import MissionCreate, MissionEvent
from mission.runtime import Runtime
from mission.safety.gate import Asker
from sim import SimFleet
from tests.api.test_missions_support import HOME, free_udp_ports, make_schema
from tests.support.service import test_settings

ALICE = Asker("alice", "pilot")

pytestmark = pytest.mark.timeout(60)

LINE = {"type": "LineString", "coordinates": [[109.9810, 39.8200], [109.9850, 39.8225], [109.9880, 39.8240]]}


@pytest.fixture
async def world(tmp_path):
    port = free_udp_ports(1)
    engine = make_engine(f"sqlite:///{tmp_path / 'rt.db'}")
    make_schema(engine)
    with session_scope(engine) as session:
        session.add(
            Vehicle(
                name="drone-1",
                connection_url=f"udpin://0.0.0.0:{port}",
                sysid=1,
                home_lat=HOME[0],
                home_lon=HOME[1],
                home_alt_m=1100.0,
            )
        )
    async with SimFleet(count=1, base_port=port, speed=20.0, home=(HOME[0], HOME[1], 1100.0)) as fleet:
        yield engine, fleet.vehicles[0], port
    engine.dispose()


@asynccontextmanager
async def runtime(engine, **settings):
    config = test_settings(engine.url.render_as_string(hide_password=False), **settings)
    async with Runtime(settings=config, engine=engine) as rt:
        link = await rt.fleet.wait_link(1, timeout_s=15)
        await link.wait_ready(timeout_s=15)
        yield rt


async def _launch(rt) -> int:
    # As a pilot would: launch once the vehicle is linked and reports its charge (the runtime links it
    # in the background; on a loaded machine that takes a few seconds).
    await _until(
        lambda: (s := rt.fleet.latest(1)) is not None and s.link_up and s.battery_pct is not None,
        20,
        "the vehicle's first telemetry",
    )
    data = MissionCreate.model_validate(
        {
            "name": "line",
            "vehicle_id": 1,
            "plan": {"kind": "custom", "geometry": LINE, "params": {"alt_m": 30}},
        }
    )
    mission = rt.missions.create(data=data, asker=ALICE)
    rt.missions.validate(mission_id=mission.id, asker=ALICE)
    launched = await rt.missions.launch(mission_id=mission.id, asker=ALICE)
    assert launched.state == "active"
    return mission.id


def _mission(engine, mid):
    from mission.missions import service

    with session_scope(engine) as session:
        return service.get(session=session, mission_id=mid)


def _events(engine, mid):
    with session_scope(engine) as session:
        return list(session.exec(select(MissionEvent).where(MissionEvent.mission_id == mid)).all())


async def _until(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_transitions_reach_the_hub_live(world):
    engine, _vehicle, _ = world
    async with runtime(engine) as rt:
        with rt.hub.subscribe(kinds=["mission.transition"], name="test") as sub:
            mid = await _launch(rt)
            await _until(lambda: _mission(engine, mid).state == "completed", 40, "completion")
            events = [r.event for r in sub.take().events]
    moves = [(e.data["from_state"], e.data["to_state"], e.data["actor"]) for e in events]
    assert moves[0] == ("draft", "validated", "alice")
    assert moves[-1] == ("returning", "completed", "vehicle")
    assert all(e.mission_id == mid and e.vehicle_id == 1 for e in events)


async def test_in_process_restart_resumes_tracking_and_records_completion_once(world):
    engine, vehicle, _ = world
    async with runtime(engine) as rt:
        mid = await _launch(rt)
        await _until(lambda: vehicle.state.mission_seq >= 3, 20, "the vehicle to be under way")
    # the service is gone; the vehicle flies on
    assert _mission(engine, mid).state == "active"
    rt = Runtime(settings=test_settings(str(engine.url)), engine=engine)
    with rt.hub.subscribe(kinds=["mission.recovered", "mission.transition"], name="test") as sub:
        async with rt:
            await _until(lambda: _mission(engine, mid).state == "completed", 40, "completion after restart")
            kinds = [r.event.kind for r in sub.take().events]
    assert kinds[0] == "mission.recovered"
    to_states = [e.to_state for e in _events(engine, mid)]
    assert to_states.count("completed") == 1 and to_states.count("active") == 1


async def test_vehicle_holding_another_mission_after_restart_is_failed_with_the_reason(world):
    engine, vehicle, port = world
    async with runtime(engine) as rt:
        mid = await _launch(rt)
        await _until(lambda: vehicle.state.mission_seq >= 2, 20, "the vehicle to be under way")
        link = rt.fleet.link(1)
        from flightplans.items import Takeoff, Waypoint

        await link.pause()
        # someone else (another ground station) replaces the mission while the service is away
        other = [Takeoff(alt_m=20), Waypoint(lat=HOME[0], lon=HOME[1] + 0.001, alt_m=20)]
    async with LinkManager(telemetry_hz=5.0) as links:
        foreign = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{port}")
        await foreign.wait_connected(timeout_s=10)
        await foreign.upload_mission(other)
        await links.remove_vehicle(1)
    async with runtime(engine):
        await _until(lambda: _mission(engine, mid).state == "failed", 20, "the mismatch to be noticed")
    assert "holds another mission (2 items)" in (_mission(engine, mid).reason or "")


async def test_link_lost_beyond_the_timeout_fails_the_mission(world):
    engine, vehicle, _ = world
    async with runtime(engine, link_loss_timeout_s=2.0) as rt:
        mid = await _launch(rt)
        vehicle.blackout(6.0)
        await _until(lambda: _mission(engine, mid).state == "failed", 15, "the link-loss failure")
    m = _mission(engine, mid)
    assert "link to vehicle 1 lost" in (m.reason or "")
    assert [e.actor for e in _events(engine, mid)][-1] == "system"


async def test_vehicle_failsafe_return_is_recorded_with_the_vehicle_as_actor(world):
    engine, vehicle, _ = world
    async with runtime(engine) as rt:
        mid = await _launch(rt)
        await _until(lambda: vehicle.state.alt_rel_m > 10, 15, "climb")
        vehicle.battery_sag(vehicle.state.battery_pct - 6)  # critical: PX4 returns (or lands, if emergency)
        await _until(lambda: _mission(engine, mid).state in ("returning", "completed"), 15, "the failsafe")
        ret = [e for e in _events(engine, mid) if e.to_state == "returning"]
        assert ret and ret[0].actor == "vehicle"
        assert re.search(r"vehicle switched to (return|land)", ret[0].reason), ret[0].reason
        # Home before its items were done, on the vehicle's own decision: failed, never completed.
        await _until(lambda: _mission(engine, mid).state == "failed", 30, "the landing")
        assert "the rest was not flown" in (_mission(engine, mid).reason or "")


async def test_a_launch_cut_short_by_a_crash_is_revalidated_not_flown_on_restart(world):
    engine, vehicle, _ = world
    async with runtime(engine) as rt:
        data = MissionCreate.model_validate(
            {
                "name": "line",
                "vehicle_id": 1,
                "plan": {"kind": "custom", "geometry": LINE, "params": {"alt_m": 30}},
            }
        )
        mid = rt.missions.create(data=data, asker=ALICE).id
        rt.missions.validate(mission_id=mid, asker=ALICE)
    # the launch was committed (state uploading) and then the service died before it reached the vehicle
    from mission.audit.models import AuditEntry
    from mission.missions import service

    with session_scope(engine) as session:
        service.transition(
            session=session, mission_id=mid, action="launch", actor="alice", reason="launch requested"
        )
    async with runtime(engine):
        await _until(lambda: _mission(engine, mid).state == "validated", 10, "the re-validation")
        await asyncio.sleep(1.0)
    assert vehicle.mission_items() == [] and not vehicle.state.armed  # nothing stale was flown
    last = _events(engine, mid)[-1]
    assert (last.from_state, last.to_state, last.actor) == ("uploading", "validated", "system:recovery")
    assert "service restarted" in last.reason and "launch again" in last.reason
    with session_scope(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
    assert "mission.recovery.revalidate" in actions


async def test_abort_during_the_launch_stops_it_before_the_vehicle_flies(world, monkeypatch):
    engine, vehicle, _ = world
    async with runtime(engine) as rt:
        # The vehicle is still taking the upload when the abort comes (at speed 20 a real upload is over
        # before a loaded machine gets round to the abort, so the test holds it there).
        uploading = asyncio.Event()

        async def slow_upload(_items):
            uploading.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(rt.fleet.link(1), "upload_mission", slow_upload)
        data = MissionCreate.model_validate(
            {
                "name": "line",
                "vehicle_id": 1,
                "plan": {"kind": "custom", "geometry": LINE, "params": {"alt_m": 30}},
            }
        )
        mid = rt.missions.create(data=data, asker=ALICE).id
        rt.missions.validate(mission_id=mid, asker=ALICE)
        launch = asyncio.ensure_future(rt.missions.launch(mission_id=mid, asker=ALICE))
        await asyncio.wait_for(uploading.wait(), 20)
        assert _mission(engine, mid).state == "uploading"
        aborted = await rt.missions.abort(mission_id=mid, asker=ALICE)
        assert aborted.state == "aborted"
        with pytest.raises(Exception, match="aborted during its launch"):
            await launch
        await asyncio.sleep(2.0)  # long enough for a stray arm/start to show
        assert not vehicle.state.armed and vehicle.state.alt_rel_m < 1
        assert _mission(engine, mid).state == "aborted"


async def test_resume_is_refused_when_a_new_zone_blocks_the_rest_of_the_mission(world):
    engine, vehicle, _ = world
    from mission.airspace.models import ZoneCreate
    from mission.airspace.service import create_zone

    async with runtime(engine) as rt:
        mid = await _launch(rt)
        await _until(lambda: vehicle.state.mission_seq >= 3, 20, "the vehicle to be under way")
        await rt.missions.pause(mission_id=mid, asker=ALICE)
        # a no-fly zone declared over the last waypoint while the vehicle holds
        with session_scope(engine) as session:
            create_zone(
                session=session,
                data=ZoneCreate.model_validate(
                    {
                        "name": "fire",
                        "kind": "no_fly",
                        "shape": {"type": "Circle", "center": LINE["coordinates"][-1], "radius_m": 80},
                        "floor_m": 0,
                        "ceiling_m": 300,
                    }
                ),
            )
        with pytest.raises(Exception, match=r"resume of vehicle 1 refused: .*'fire'"):
            await rt.missions.resume(mission_id=mid, asker=ALICE)
        assert _mission(engine, mid).state == "paused"
        await rt.missions.abort(mission_id=mid, asker=ALICE)


async def test_fleet_follows_the_registry_and_reports_link_changes(world, tmp_path):
    engine, vehicle, _ = world
    config = test_settings(str(engine.url), registry_poll_s=0.3)
    rt = Runtime(settings=config, engine=engine)
    with rt.hub.subscribe(kinds=["link.up", "link.down"], name="test") as sub:
        async with rt:
            await rt.fleet.wait_link(1, timeout_s=15)
            base = free_udp_ports(2)
            late_port = base + 1  # the second vehicle of this fleet is sysid 2
            async with SimFleet(count=2, base_port=base, speed=20.0, home=(HOME[0], HOME[1], 1100.0)):
                with session_scope(engine) as session:
                    session.add(
                        Vehicle(
                            name="drone-2",
                            connection_url=f"udpin://0.0.0.0:{late_port}",
                            sysid=2,
                            home_lat=HOME[0],
                            home_lon=HOME[1],
                        )
                    )
                second = await rt.fleet.wait_link(2, timeout_s=15)  # picked up without a restart
                assert second.vehicle_id == 2
            vehicle.blackout(5.0)
            await _until(lambda: not rt.fleet.latest(1).link_up, 10, "link down")
            await _until(lambda: rt.fleet.latest(1).link_up, 15, "link back")
            seen = [(r.event.kind, r.event.vehicle_id) for r in sub.take().events]
    assert ("link.up", 1) in seen and ("link.down", 1) in seen and ("link.up", 2) in seen
    assert seen.index(("link.down", 1)) < len(seen) - 1 - seen[::-1].index(("link.up", 1))


async def test_a_mission_that_finished_while_the_service_was_down_is_recorded_completed_on_restart(world):
    engine, vehicle, _ = world
    async with runtime(engine) as rt:
        mid = await _launch(rt)
        await _until(lambda: vehicle.state.mission_seq >= 2, 20, "the vehicle to be under way")
    await _until(
        lambda: not vehicle.state.armed and vehicle.state.landed_state == "on_ground", 30, "the landing"
    )
    assert _mission(engine, mid).state == "active"  # nobody was there to see it
    async with runtime(engine):
        await _until(lambda: _mission(engine, mid).state == "completed", 20, "reconciliation")
    last = _events(engine, mid)[-1]
    assert (last.from_state, last.to_state, last.actor) == ("active", "completed", "vehicle")
    assert "landed" in last.reason
    assert [e.to_state for e in _events(engine, mid)].count("completed") == 1


async def test_snapshots_reach_the_hub_under_the_registry_id_not_the_sysid(world):
    engine, _, _ = world
    base = free_udp_ports(3)
    async with SimFleet(count=3, base_port=base, speed=20.0, home=(HOME[0], HOME[1], 1100.0)):
        with session_scope(engine) as session:
            session.add(  # registry id 2, MAVLink sysid 3
                Vehicle(
                    name="drone-3",
                    connection_url=f"udpin://0.0.0.0:{base + 2}",
                    sysid=3,
                    home_lat=HOME[0],
                    home_lon=HOME[1],
                )
            )
        async with runtime(engine) as rt:
            await rt.fleet.wait_link(2, timeout_s=15)
            await _until(lambda: 2 in rt.hub.latest(), 10, "the second vehicle's telemetry")
            assert rt.hub.latest()[2].vehicle_id == 2
            assert 3 not in rt.hub.latest()
            assert rt.fleet.latest(2).vehicle_id == 2


async def test_a_vehicle_task_survives_an_unexpected_error(world):
    engine, _vehicle, _ = world
    from mission.fleet.manager import FleetManager
    from mission.telemetry.hub import TelemetryHub

    class FlakyHub(TelemetryHub):
        """A hub whose first update raises: a bug somewhere above the fleet."""

        failures = 0

        def update(self, snapshot):
            if self.failures == 0:
                self.failures += 1
                raise RuntimeError("hub bug")
            super().update(snapshot)

    hub = FlakyHub()
    async with (
        LinkManager(telemetry_hz=10.0) as links,
        FleetManager(
            engine=engine, links=links, hub=hub, registry_poll_s=0.3, reconnect_backoff_s=(0.2, 1.0)
        ) as fleet,
    ):
        await _until(lambda: hub.failures == 1, 15, "the hub error")
        await _until(lambda: 1 in hub.latest(), 15, "telemetry after the error")
        # a vehicle task that ends anyway (here: cancelled from outside) is started again
        fleet._conns[1].task.cancel()
        await asyncio.sleep(0.1)
        ended_at = time.time()
        await _until(
            lambda: hub.latest()[1].received_at > ended_at + 0.5, 15, "telemetry from a restarted task"
        )
    hub.close()


async def test_a_pack_that_sags_during_the_launch_is_never_armed(world, monkeypatch):
    """The launch is judged when asked; the charge is looked at again right before arming."""
    engine, vehicle, _ = world
    async with runtime(engine) as rt:
        link = rt.fleet.link(1)
        real_upload = link.upload_mission

        async def upload_while_the_pack_sags(items):
            vehicle.battery_sag(vehicle.state.battery_pct - 10.0)  # down to 10 %, under the 20 % reserve
            await _until(
                lambda: (rt.fleet.latest(1).battery_pct or 100.0) < 15.0, 10, "the sag in the telemetry"
            )
            await real_upload(items)

        monkeypatch.setattr(link, "upload_mission", upload_while_the_pack_sags)
        data = MissionCreate.model_validate(
            {
                "name": "line",
                "vehicle_id": 1,
                "plan": {"kind": "custom", "geometry": LINE, "params": {"alt_m": 30}},
            }
        )
        mid = rt.missions.create(data=data, asker=ALICE).id
        rt.missions.validate(mission_id=mid, asker=ALICE)
        with pytest.raises(Exception, match="reserve"):
            await rt.missions.launch(mission_id=mid, asker=ALICE)
        assert not vehicle.state.armed and vehicle.state.alt_rel_m < 1
        assert _mission(engine, mid).state == "validated"  # a failed start: launch again when charged
