"""Events made on one instance reach every other instance's hub in order (PostgreSQL NOTIFY)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import Engine

from mission.cluster.events import EventRelay
from mission.telemetry.events import Event
from mission.telemetry.hub import TelemetryHub

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


async def test_events_fan_out_in_order_without_echo_or_link_events(pg: Engine) -> None:
    hubs = [TelemetryHub() for _ in range(3)]
    relays = [EventRelay(engine=pg, hub=h, instance_id=f"i{k}") for k, h in enumerate(hubs)]
    subs = [h.subscribe(name="panel", max_events=10_000) for h in hubs]
    async with relays[0], relays[1], relays[2]:
        await asyncio.wait_for(asyncio.gather(*(r.listening.wait() for r in relays)), 10)
        for n in range(300):
            hubs[0].emit(Event(kind="flight.leg", vehicle_id=1 + n % 4, data={"n": n}))
        hubs[0].emit(Event(kind="link.down", vehicle_id=1))  # each instance sees its own links
        hubs[2].emit(Event(kind="incident.created", data={"incident_id": 7}))
        for k in (1, 2):
            got: list[Event] = []
            while len([e for e in got if e.kind == "flight.leg"]) < 300:
                delivery = await asyncio.wait_for(subs[k].next(), 10)
                got += [r.event for r in delivery.events]
            legs = [e for e in got if e.kind == "flight.leg"]
            assert [e.data["n"] for e in legs] == list(range(300))  # all, in order
            assert all(e.data["via"] == "i0" for e in legs)
        await asyncio.sleep(0.5)
        for k in (1, 2):
            rest = [r.event for r in subs[k].take().events] if subs[k].pending() else []
            assert not any(e.kind == "link.down" for e in rest)
        # i0 got i2's incident once, and never its own events back
        seen0: list[Event] = []
        while subs[0].pending():
            seen0 += [r.event for r in subs[0].take().events]
        assert [e.kind for e in seen0 if "via" in e.data] == ["incident.created"]
    assert relays[0].sent == 300 and relays[1].received == 301
