"""TelemetryHub: latest state, event order, per-subscriber rate limits, coalescing and resync."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest

from mission.link.types import FlightMode
from mission.telemetry.events import Event
from mission.telemetry.hub import SubscriptionClosed, TelemetryHub, kind_matches
from mission.telemetry.serialize import snapshot_to_json
from tests.telemetry.factories import snapshot


async def test_latest_keeps_last_snapshot_per_vehicle() -> None:
    hub = TelemetryHub()
    hub.update(snapshot(1, seq=1))
    hub.update(snapshot(2, seq=1))
    hub.update(snapshot(1, seq=2, armed=True))
    latest = hub.latest()
    assert sorted(latest) == [1, 2]
    assert latest[1].armed is True
    assert latest[1].lat == pytest.approx(39.82 + 2e-5)


async def test_snapshot_json_has_every_operator_field() -> None:
    snap = snapshot(7, armed=True, mode=FlightMode.MISSION)
    body = json.loads(snapshot_to_json(snap))
    assert body["type"] == "snapshot"
    assert body["vehicle_id"] == 7
    assert body["mode"] == "mission"
    assert body["armed"] is True and body["in_air"] is True
    assert body["mission"] == {"current": 1, "total": 5, "finished": False}
    for key in ("lat", "lon", "alt_rel_m", "heading_deg", "ground_speed_m_s", "battery_pct", "link_up"):
        assert body[key] is not None, key


async def test_nan_sensor_values_serialize_as_null() -> None:
    import dataclasses

    snap = dataclasses.replace(snapshot(1), battery_pct=math.nan, heading_deg=math.inf)
    body = json.loads(snapshot_to_json(snap))
    assert body["battery_pct"] is None and body["heading_deg"] is None


async def test_events_arrive_in_emit_order_with_increasing_seq() -> None:
    hub = TelemetryHub()
    with hub.subscribe(name="t") as sub:
        for i in range(20):
            hub.emit(Event(kind="mission.transition", data={"i": i}, vehicle_id=1, mission_id=3))
        delivery = await asyncio.wait_for(sub.next(), 1)
    assert [rec.event.data["i"] for rec in delivery.events] == list(range(20))
    assert [rec.seq for rec in delivery.events] == list(range(1, 21))
    assert json.loads(delivery.events[0].json)["kind"] == "mission.transition"


async def test_kind_and_vehicle_filters() -> None:
    assert kind_matches("mission.transition", frozenset({"mission"}))
    assert not kind_matches("missionx", frozenset({"mission"}))
    hub = TelemetryHub()
    with hub.subscribe(vehicles=[2], kinds=["vehicle"], name="t") as sub:
        hub.emit(Event(kind="vehicle.failsafe", vehicle_id=1))  # other vehicle
        hub.emit(Event(kind="mission.transition", vehicle_id=2))  # other kind
        hub.emit(Event(kind="vehicle.failsafe", vehicle_id=2, data={"reason": "battery"}))
        hub.emit(Event(kind="vehicle.link_down"))  # fleet-wide event of a wanted kind
        hub.update(snapshot(1))
        hub.update(snapshot(2))
        delivery = await asyncio.wait_for(sub.next(), 1)
    assert [(r.event.kind, r.event.vehicle_id) for r in delivery.events] == [
        ("vehicle.failsafe", 2),
        ("vehicle.link_down", None),
    ]
    assert [u.vehicle_id for u in delivery.snapshots] == [2]


async def test_slow_subscriber_gets_only_the_latest_snapshot() -> None:
    hub = TelemetryHub(max_rate_hz=1000)
    with hub.subscribe(rate_hz=1000, name="slow") as sub:
        for i in range(50):
            hub.update(snapshot(1, seq=i))
            hub.update(snapshot(2, seq=i))
            await asyncio.sleep(0.002)
        delivery = sub.take()
    by_vehicle = {u.vehicle_id: u.snapshot for u in delivery.snapshots}
    assert sorted(by_vehicle) == [1, 2]
    assert by_vehicle[1].lat == pytest.approx(39.82 + 49e-5)


async def test_rate_limit_per_vehicle_and_held_value_is_flushed() -> None:
    hub = TelemetryHub(max_rate_hz=100)
    received: list[float] = []
    with hub.subscribe(vehicles=[1], rate_hz=5, name="t") as sub:

        async def consume() -> None:
            while True:
                d = await sub.next()
                received.extend(u.snapshot.lat for u in d.snapshots)

        task = asyncio.create_task(consume(), name="consume")
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 1.0:  # 50 Hz source for 1 s
            i += 1
            hub.update(snapshot(1, seq=i))
            await asyncio.sleep(0.02)
        last_lat = hub.latest()[1].lat
        await asyncio.sleep(0.45)  # the source went quiet: its last value must still arrive
        sub.close()
        with pytest.raises(SubscriptionClosed):
            await task
    assert 5 <= len(received) <= 8, received
    assert received[-1] == last_lat


async def test_overflowing_subscriber_is_told_and_resynced() -> None:
    hub = TelemetryHub()
    hub.update(snapshot(1))
    hub.update(snapshot(2))
    with hub.subscribe(max_events=10, name="behind") as sub, hub.subscribe(max_events=100, name="ok") as ok:
        for i in range(25):
            hub.emit(Event(kind="payload.used", data={"i": i}, vehicle_id=1))
        delivery = sub.take()
        fine = ok.take()
    assert delivery.resync_dropped == 15
    assert sub.dropped_total == 15
    assert [r.event.data["i"] for r in delivery.events] == list(range(15, 25))
    assert sorted(u.vehicle_id for u in delivery.snapshots) == [1, 2]
    assert fine.resync_dropped == 0 and len(fine.events) == 25


async def test_configure_replaces_filters_and_sends_current_state() -> None:
    hub = TelemetryHub()
    hub.update(snapshot(1))
    hub.update(snapshot(2))
    hub.update(snapshot(3))
    with hub.subscribe(vehicles=[], name="t") as sub:
        assert not sub.pending()
        sub.configure(vehicles=[2, 3], kinds=None, rate_hz=50)
        delivery = sub.take()
        assert sub.rate_hz == hub.max_rate_hz  # capped at the vehicles' rate
    assert sorted(u.vehicle_id for u in delivery.snapshots) == [2, 3]


async def test_bad_rate_is_rejected_with_reason() -> None:
    hub = TelemetryHub()
    with pytest.raises(ValueError, match="rate_hz must be > 0"):
        hub.subscribe(rate_hz=0)
    with pytest.raises(ValueError, match="rate_hz must be > 0"):
        hub.subscribe(rate_hz=math.nan)
