"""The MQTT bridge against a real Mosquitto (a private one per test, so it can be restarted freely); the
incident intake against one that enforces the shipped production password file and ACL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from api import migrations
from api.mqtt_bridge import MqttBridge, MqttBridgeConfig
from mission.audit.models import AuditEntry
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import make_engine, session_scope
from mission.errors import Conflict, VehicleUnavailable
from mission.telemetry.events import Event
from mission.telemetry.hub import TelemetryHub
from mission.telemetry.intake import IncidentIn, IncidentSenders
from tests.telemetry.factories import snapshot
from tests.telemetry.secure_broker import SecuredMosquitto, secured_mosquitto
from tests.telemetry.servers import PrivateMosquitto, private_mosquitto

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(30)]


class RecordingIncidents:
    """An IncidentSink that keeps what it is given; kind "closed-area" is refused like the domain would."""

    def __init__(self) -> None:
        self.incidents: list[IncidentIn] = []
        self.actors: list[str] = []

    async def submit(self, incident: IncidentIn, *, actor: str) -> int:
        if incident.kind == "closed-area":
            raise Conflict("incidents in a closed area are handled by the ground team")
        self.incidents.append(incident)
        self.actors.append(actor)
        return 100 + len(self.incidents)


class RecordingCommands:
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    async def submit_command(
        self, *, vehicle_id: int, command: str, params: Mapping[str, Any], actor: str
    ) -> None:
        if vehicle_id == 99:
            raise VehicleUnavailable("vehicle 99 is not connected")
        self.commands.append(
            {"vehicle_id": vehicle_id, "command": command, "params": dict(params), "actor": actor}
        )


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    with private_mosquitto() as b:
        yield b


@contextlib.asynccontextmanager
async def mqtt_client(
    broker: PrivateMosquitto, client_id: str, **kwargs: Any
) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=client_id, **kwargs) as client:
        yield client
    for _ in range(3):  # paho's housekeeping task is cancelled from a callback
        await asyncio.sleep(0)


async def next_json(client: aiomqtt.Client, timeout_s: float = 3.0) -> tuple[str, Any, bool]:
    async with asyncio.timeout(timeout_s):
        message = await anext(aiter(client.messages))
    return message.topic.value, json.loads(message.payload), message.retain  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``predicate`` (bridge counters have no event to wait on) until it holds or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def config(broker: PrivateMosquitto, **kwargs: Any) -> MqttBridgeConfig:
    return MqttBridgeConfig(url=broker.url, client_id="skywarden-test", reconnect_max_s=0.5, **kwargs)


async def test_state_is_retained_for_late_subscribers(broker: PrivateMosquitto) -> None:
    hub = TelemetryHub()
    hub.update(snapshot(1))
    hub.update(snapshot(2, armed=True))
    async with MqttBridge(config(broker), hub, RecordingIncidents()) as bridge:
        await bridge.wait_connected()
        await asyncio.sleep(0.3)
        async with mqtt_client(broker, "late") as sub:
            await sub.subscribe("skywarden/vehicles/+/state")
            got = {}
            for _ in range(2):
                topic, body, retained = await next_json(sub)
                got[topic] = (body, retained)
    assert set(got) == {"skywarden/vehicles/1/state", "skywarden/vehicles/2/state"}
    body, retained = got["skywarden/vehicles/2/state"]
    assert retained is True
    assert body["type"] == "snapshot" and body["vehicle_id"] == 2 and body["armed"] is True


async def test_events_arrive_in_order_and_missions_keep_their_latest(broker: PrivateMosquitto) -> None:
    hub = TelemetryHub()
    async with (
        mqtt_client(broker, "watcher") as sub,
        MqttBridge(config(broker), hub, RecordingIncidents()) as bridge,
    ):
        await sub.subscribe("skywarden/events/#", qos=1)
        await bridge.wait_connected()
        kinds = ["mission.transition", "vehicle.failsafe", "payload.used", "incident.created"]
        for i in range(200):
            hub.emit(
                Event(kind=kinds[i % 4], data={"i": i}, vehicle_id=1, mission_id=7 if i % 4 == 0 else None)
            )
        seen = []
        while len(seen) < 200:
            topic, body, _ = await next_json(sub)
            assert topic == f"skywarden/events/{body['kind']}"
            seen.append(body["data"]["i"])
        assert seen == list(range(200))
        async with mqtt_client(broker, "mission-watcher") as late:
            await late.subscribe("skywarden/missions/7")
            topic, body, retained = await next_json(late)
        assert retained and body["data"]["i"] == 196 and body["mission_id"] == 7
        assert bridge.stats.events_published == 200 and bridge.stats.events_dropped == 0


async def test_broker_restart_mid_flight_loses_no_event(broker: PrivateMosquitto) -> None:
    hub = TelemetryHub()
    total = 150
    received: list[int] = []

    async def watch() -> None:
        # A persistent QoS 1 session: the broker keeps what arrives for it while it reconnects.
        while len(set(received)) < total:
            try:
                async with mqtt_client(broker, "durable-watcher", clean_session=False) as sub:
                    await sub.subscribe("skywarden/events/#", qos=1)
                    async for message in sub.messages:
                        received.append(json.loads(message.payload)["data"]["i"])  # type: ignore[arg-type]
                        if len(set(received)) >= total:
                            return
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    async with MqttBridge(config(broker), hub, RecordingIncidents()) as bridge:
        await bridge.wait_connected()
        watcher = asyncio.create_task(watch(), name="watcher")
        await asyncio.sleep(0.3)
        for i in range(total):
            hub.emit(Event(kind="mission.transition", data={"i": i}, vehicle_id=i % 3 + 1))
            hub.update(snapshot(i % 3 + 1, seq=i))
            if i == 50:
                await asyncio.to_thread(broker.stop)
            if i == 100:
                await asyncio.sleep(0.5)  # the bridge retries against a dead broker meanwhile
                await asyncio.to_thread(broker.start)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(watcher, 20)
        assert bridge.stats.connects >= 2
        assert bridge.stats.events_dropped == 0
    first_seen = list(dict.fromkeys(received))  # at-least-once: a duplicate after the restart is allowed
    assert first_seen == list(range(total))


async def test_overflow_while_broker_is_away_is_counted(broker: PrivateMosquitto) -> None:
    hub = TelemetryHub()
    async with MqttBridge(config(broker, event_queue_max=5), hub, RecordingIncidents()) as bridge:
        await bridge.wait_connected()
        await asyncio.to_thread(broker.stop)
        await until(lambda: not bridge.stats.connected, timeout_s=20)  # the keepalive notices, under load too
        for i in range(20):
            hub.emit(Event(kind="vehicle.failsafe", data={"i": i}))
        await asyncio.to_thread(broker.start)
        await until(lambda: bridge.stats.events_published >= 5, timeout_s=10)
    assert bridge.stats.events_dropped == 15
    assert bridge.stats.events_published == 5


BAD_INCIDENTS = [
    (b"{not json", "invalid_json", None),
    (
        b'{"location": {"lat": 39.8, "lon": 109.9}, "priority": 2, "kind": "fire"}',
        "invalid_incident",
        "source",
    ),
    (
        b'{"location": {"lat": 139.8, "lon": 109.9}, "priority": 2, "kind": "fire", "source": "cad"}',
        "invalid_incident",
        "location.lat",
    ),
    (
        b'{"location": {"lat": 39.8, "lon": 109.9}, "priority": 9, "kind": "fire", "source": "cad", '
        b'"ref": "A-1"}',
        "invalid_incident",
        "priority",
    ),
    (b"[1, 2]", "invalid_incident", None),
]
GOOD_INCIDENT = {
    "location": {"lat": 39.83, "lon": 109.97},
    "priority": 1,
    "kind": "burglary",
    "notes": "alarm at the warehouse",
    "source": "cad",
    "ref": "CAD-77",
}
BROKER_USERS = {
    "skywarden": "bridge-pw",
    "cad": "cad-pw",
    "mallory": "mallory-pw",
    "watcher": "watcher-pw",
    "ghost": "ghost-pw",
    "retired": "retired-pw",
    "fleet-viewer": "viewer-pw",
}
# MQTT user -> skywarden user: cad reports as a dispatcher; the others are mapped to users who may not.
INCIDENT_USERS = {"cad": "cad-dispatch", "watcher": "olga", "ghost": "nobody", "retired": "old-dispatch"}


@pytest.fixture
def secured() -> Iterator[SecuredMosquitto]:
    with secured_mosquitto(BROKER_USERS) as b:
        yield b


@pytest.fixture
def users_db(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    migrations.upgrade(engine)
    with session_scope(engine) as session:
        auth.create_user(
            session=session, username="cad-dispatch", password="dispatch-pw", role=Role.dispatcher
        )
        auth.create_user(session=session, username="olga", password="observer-pw", role=Role.observer)
        old = auth.create_user(
            session=session, username="old-dispatch", password="dispatch-pw", role=Role.dispatcher
        )
        assert old.id is not None
        auth.update_user(session=session, user_id=old.id, disabled=True)
    yield engine
    engine.dispose()


def refusals(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == "mqtt.incident_refused")))


def secured_bridge(
    broker: SecuredMosquitto, engine: Engine, sink: RecordingIncidents, users: dict[str, str] | None = None
) -> MqttBridge:
    cfg = MqttBridgeConfig(url=broker.url_for("skywarden"), client_id="skywarden-test", reconnect_max_s=0.5)
    senders = IncidentSenders(engine=engine, users=INCIDENT_USERS if users is None else users)
    return MqttBridge(cfg, TelemetryHub(), sink, incident_senders=senders)


def as_user(broker: SecuredMosquitto, user: str) -> contextlib.AbstractAsyncContextManager[aiomqtt.Client]:
    return mqtt_client(broker, f"{user}-client", username=user, password=broker.users[user])


async def test_mapped_dispatcher_reports_incidents_bad_ones_get_a_reason(
    secured: SecuredMosquitto, users_db: Engine
) -> None:
    sink = RecordingIncidents()
    async with secured_bridge(secured, users_db, sink) as bridge, as_user(secured, "cad") as cad:
        await bridge.wait_connected()
        await cad.subscribe("skywarden/errors", qos=1)
        await cad.subscribe("skywarden/incidents/accepted", qos=1)
        await asyncio.sleep(0.2)
        for payload, code, where in BAD_INCIDENTS:
            await cad.publish("skywarden/incidents/new/cad", payload, qos=1)
            topic, body, _ = await next_json(cad)
            assert topic == "skywarden/errors", payload
            assert body["topic"] == "skywarden/incidents/new/cad"
            assert body["error"]["code"] == code, body
            assert body["error"]["where"] == where, body
            assert body["error"]["message"], body
        await cad.publish("skywarden/incidents/new/cad", json.dumps(GOOD_INCIDENT), qos=1)
        topic, body, _ = await next_json(cad)
        assert (topic, body) == (
            "skywarden/incidents/accepted",
            {"incident_id": 101, "ref": "CAD-77", "source": "cad"},
        )
        await cad.publish(
            "skywarden/incidents/new/cad", json.dumps(GOOD_INCIDENT | {"kind": "closed-area"}), qos=1
        )
        topic, body, _ = await next_json(cad)
        assert topic == "skywarden/errors" and body["error"]["code"] == "conflict" and body["ref"] == "CAD-77"
        assert bridge.stats.connects == 1  # nothing above crashed or reconnected the bridge
    assert [(i.kind, i.priority, i.location.lat) for i in sink.incidents] == [("burglary", 1, 39.83)]
    assert sink.actors == ["cad-dispatch"]  # reported as the mapped skywarden user
    assert bridge.stats.incidents_rejected == len(BAD_INCIDENTS) + 1
    assert refusals(users_db) == []


async def test_an_unmapped_sender_is_refused_audited_once_and_never_reaches_the_sink(
    secured: SecuredMosquitto, users_db: Engine
) -> None:
    sink = RecordingIncidents()
    async with secured_bridge(secured, users_db, sink) as bridge, as_user(secured, "mallory") as mallory:
        await bridge.wait_connected()
        await mallory.subscribe("skywarden/errors", qos=1)
        await asyncio.sleep(0.2)
        await mallory.publish("skywarden/incidents/new/mallory", json.dumps(GOOD_INCIDENT), qos=1)
        topic, body, _ = await next_json(mallory)
        assert topic == "skywarden/errors" and body["topic"] == "skywarden/incidents/new/mallory"
        assert body["error"]["code"] == "forbidden"
        assert (
            body["error"]["message"] == "MQTT user 'mallory' may not report incidents (not mapped to a user)"
        )
        # A flood gets a bounded number of answers and audit entries, and never an incident.
        for _ in range(200):
            await mallory.publish("skywarden/incidents/new/mallory", json.dumps(GOOD_INCIDENT), qos=0)
        await until(lambda: bridge.stats.incidents_refused == 201, timeout_s=15)
    assert sink.incidents == []
    entries = refusals(users_db)
    assert len(entries) == 1
    assert entries[0].actor == "mqtt:mallory" and "not mapped" in entries[0].details["reason"]
    assert bridge.stats.answers_suppressed >= 150


async def test_the_broker_acl_stops_a_sender_posing_as_another_and_anonymous_or_wrong_passwords(
    secured: SecuredMosquitto, users_db: Engine
) -> None:
    sink = RecordingIncidents()
    async with secured_bridge(secured, users_db, sink) as bridge, as_user(secured, "mallory") as mallory:
        await bridge.wait_connected()
        await asyncio.sleep(0.2)
        # mallory writes into cad's topic: the broker drops it (the ACL only lets mallory write as mallory).
        await mallory.publish("skywarden/incidents/new/cad", json.dumps(GOOD_INCIDENT), qos=1)
        await mallory.publish("skywarden/incidents/new", json.dumps(GOOD_INCIDENT), qos=1)
        async with as_user(secured, "cad") as cad:  # the pipe works: cad's own report arrives after them
            await cad.publish(
                "skywarden/incidents/new/cad", json.dumps(GOOD_INCIDENT | {"ref": "real"}), qos=1
            )
            await until(lambda: bool(sink.incidents))
    assert [i.ref for i in sink.incidents] == ["real"]
    assert bridge.stats.incidents_refused == 0  # nothing of mallory's even reached the bridge
    for kwargs in ({}, {"username": "cad", "password": "wrong"}, {"username": "nobody", "password": "x"}):
        with pytest.raises(aiomqtt.MqttError):
            async with mqtt_client(secured, "intruder", **kwargs):
                pass


@pytest.mark.parametrize(
    ("mqtt_user", "reason"),
    [
        ("watcher", "'olga', whose role observer may not report incidents"),
        ("ghost", "'nobody', who does not exist"),
        ("retired", "'old-dispatch', who is disabled"),
    ],
)
async def test_a_sender_mapped_to_a_user_without_the_right_is_refused(
    secured: SecuredMosquitto, users_db: Engine, mqtt_user: str, reason: str
) -> None:
    sink = RecordingIncidents()
    async with secured_bridge(secured, users_db, sink) as bridge, as_user(secured, mqtt_user) as sender:
        await bridge.wait_connected()
        await sender.subscribe("skywarden/errors", qos=1)
        await asyncio.sleep(0.2)
        await sender.publish(f"skywarden/incidents/new/{mqtt_user}", json.dumps(GOOD_INCIDENT), qos=1)
        _, body, _ = await next_json(sender)
    assert body["error"]["code"] == "forbidden" and reason in body["error"]["message"], body
    assert sink.incidents == []
    assert [e.actor for e in refusals(users_db)] == [f"mqtt:{mqtt_user}"]


async def test_without_a_mapping_intake_is_off_says_so_once_and_refuses(
    secured: SecuredMosquitto, users_db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingIncidents()
    with caplog.at_level(logging.INFO, logger="api.mqtt_bridge"):
        async with (
            secured_bridge(secured, users_db, sink, users={}) as bridge,
            as_user(secured, "cad") as cad,
        ):
            await bridge.wait_connected()
            assert not bridge.intake_enabled
            await cad.subscribe("skywarden/errors", qos=1)
            await asyncio.sleep(0.2)
            await cad.publish("skywarden/incidents/new/cad", json.dumps(GOOD_INCIDENT), qos=1)
            _, body, _ = await next_json(cad)
    assert body["error"]["message"] == "MQTT incident intake is off on this service"
    assert sink.incidents == []
    off = [r.getMessage() for r in caplog.records if "intake off" in r.getMessage()]
    assert off == [
        "MQTT incident intake off: no MQTT user is mapped to a skywarden user (mqtt_incident_users)"
    ]


async def test_only_named_viewers_read_the_fleet(secured: SecuredMosquitto, users_db: Engine) -> None:
    hub = TelemetryHub()
    hub.update(snapshot(1))
    cfg = MqttBridgeConfig(url=secured.url_for("skywarden"), client_id="skywarden-test")
    async with (
        as_user(secured, "mallory") as mallory,
        as_user(secured, "fleet-viewer") as viewer,
        MqttBridge(cfg, hub, RecordingIncidents()) as bridge,
    ):
        for client in (mallory, viewer):
            with contextlib.suppress(aiomqtt.MqttError):  # mosquitto may refuse the subscription outright
                await client.subscribe("skywarden/vehicles/#")
        await bridge.wait_connected()
        topic, body, _ = await next_json(viewer)
        assert topic == "skywarden/vehicles/1/state" and body["vehicle_id"] == 1
        with pytest.raises(TimeoutError):
            await next_json(mallory, timeout_s=1.0)


async def test_the_old_topic_is_refused_naming_the_new_one(broker: PrivateMosquitto, tmp_path: Path) -> None:
    """On a broker without the ACL (a test or legacy set-up) an old-style report still gets a clear answer."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrations.upgrade(engine)
    sink = RecordingIncidents()
    senders = IncidentSenders(engine=engine, users={"cad": "cad-dispatch"})
    try:
        async with (
            MqttBridge(config(broker), TelemetryHub(), sink, incident_senders=senders) as bridge,
            mqtt_client(broker, "cad-system") as cad,
        ):
            await bridge.wait_connected()
            await cad.subscribe("skywarden/errors", qos=1)
            await asyncio.sleep(0.2)
            await cad.publish("skywarden/incidents/new", json.dumps(GOOD_INCIDENT), qos=1)
            _, body, _ = await next_json(cad)
        assert body["error"]["code"] == "unauthorized"
        assert "skywarden/incidents/new/{your MQTT username}" in body["error"]["message"]
        assert sink.incidents == []
        assert [e.actor for e in refusals(engine)] == ["mqtt:?"]
    finally:
        engine.dispose()


async def test_commands_are_off_by_default(broker: PrivateMosquitto) -> None:
    commands = RecordingCommands()
    hub = TelemetryHub()
    async with (
        MqttBridge(config(broker), hub, RecordingIncidents(), command_sink=commands) as bridge,
        mqtt_client(broker, "op") as op,
    ):
        await bridge.wait_connected()
        await op.subscribe("skywarden/errors")
        await op.publish("skywarden/commands/1/alice", json.dumps({"command": "return"}), qos=1)
        with pytest.raises(TimeoutError):
            await next_json(op, timeout_s=0.5)
    assert commands.commands == []


async def test_commands_when_enabled_run_as_the_mapped_user_only(broker: PrivateMosquitto) -> None:
    commands = RecordingCommands()
    hub = TelemetryHub()
    cfg = config(broker, commands_enabled=True, command_users={"alice": "pilot-alice"})
    async with (
        MqttBridge(cfg, hub, RecordingIncidents(), command_sink=commands) as bridge,
        mqtt_client(broker, "op") as op,
    ):
        await bridge.wait_connected()
        await op.subscribe("skywarden/errors", qos=1)
        await asyncio.sleep(0.2)
        await op.publish("skywarden/commands/1/mallory", json.dumps({"command": "land"}), qos=1)
        _, body, _ = await next_json(op)
        assert body["error"]["code"] == "forbidden" and "mallory" in body["error"]["message"]
        await op.publish("skywarden/commands/1", json.dumps({"command": "land"}), qos=1)
        _, body, _ = await next_json(op)
        assert body["error"]["code"] == "unauthorized"
        await op.publish("skywarden/commands/99/alice", json.dumps({"command": "land"}), qos=1)
        _, body, _ = await next_json(op)
        assert body["error"]["code"] == "vehicle_unavailable"
        await op.publish("skywarden/commands/2/alice", json.dumps({"command": "return", "params": {}}), qos=1)
        await until(lambda: bool(commands.commands))
    assert commands.commands == [{"vehicle_id": 2, "command": "return", "params": {}, "actor": "pilot-alice"}]


async def test_no_broker_configured_runs_without_bridge_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NoMqtt:
        mqtt_url = None

    hub = TelemetryHub()
    with caplog.at_level(logging.INFO, logger="api.mqtt_bridge"):
        async with MqttBridge(NoMqtt(), hub, RecordingIncidents()) as bridge:
            hub.emit(Event(kind="mission.transition"))
            assert not bridge.enabled
    assert [r.getMessage() for r in caplog.records] == ["MQTT bridge off: no mqtt_url configured"]
    assert hub.stats.subscribers == 0


def test_bad_broker_url_is_named() -> None:
    with pytest.raises(ValueError, match="mqtt_url must look like mqtt://host:1883, got 'http://x'"):
        MqttBridgeConfig(url="http://x")


async def test_telemetry_is_rate_limited_per_vehicle(broker: PrivateMosquitto) -> None:
    hub = TelemetryHub(max_rate_hz=20)
    async with (
        mqtt_client(broker, "tele") as sub,
        MqttBridge(config(broker, telemetry_hz=2.0), hub, RecordingIncidents()) as bridge,
    ):
        await sub.subscribe("skywarden/vehicles/+/telemetry")
        await bridge.wait_connected()
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 2.0:  # 20 Hz for 2 s
            i += 1
            hub.update(snapshot(1, seq=i))
            await asyncio.sleep(0.05)
        count = 0
        with contextlib.suppress(TimeoutError):
            while True:
                await next_json(sub, timeout_s=0.3)
                count += 1
    assert 3 <= count <= 6, count


async def test_against_the_shared_broker_on_1883() -> None:
    """The service's real broker: retained state and ordered events under a test-only topic prefix."""
    prefix = f"skywarden-test-{int(time.time() * 1000)}"
    hub = TelemetryHub()
    hub.update(snapshot(5, armed=True))
    cfg = MqttBridgeConfig(url="mqtt://127.0.0.1:1883", client_id=f"{prefix}-bridge", topic_prefix=prefix)
    async with MqttBridge(cfg, hub, RecordingIncidents()) as bridge:
        await bridge.wait_connected()
        # Subscribe once the state is out, so it comes as the retained copy (not raced live).
        await until(lambda: bridge.stats.published >= 1)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{prefix}-sub") as sub:
            await sub.subscribe(f"{prefix}/vehicles/+/state")
            await sub.subscribe(f"{prefix}/events/#", qos=1)
            topic, body, retained = await next_json(sub)
            assert (topic, retained, body["vehicle_id"]) == (f"{prefix}/vehicles/5/state", True, 5)
            for i in range(20):
                hub.emit(Event(kind="payload.used", data={"i": i}, vehicle_id=5))
            seen = [(await next_json(sub))[1]["data"]["i"] for _ in range(20)]
            assert seen == list(range(20))
            await sub.publish(f"{prefix}/vehicles/5/state", b"", retain=True)  # leave no retained litter
        for _ in range(3):
            await asyncio.sleep(0)
