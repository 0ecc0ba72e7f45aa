"""The service's own lifespan runs the MQTT bridge against the real Mosquitto: retained state under registry
ids, and MQTT commands that pass through exactly the checks (control, audit) of the REST command path."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import aiomqtt
import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.settings import Settings
from mission.audit.models import AuditEntry
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import make_engine, session_scope
from mission.fleet.models import Vehicle
from sim import SimFleet
from tests.api.test_missions_support import HOME, free_udp_ports, make_schema
from tests.telemetry.secure_broker import SecuredMosquitto, secured_mosquitto

pytestmark = [pytest.mark.timeout(60), pytest.mark.mqtt]


@asynccontextmanager
async def service_with_bridge(tmp_path, prefix: str):
    url = f"sqlite:///{tmp_path / 'mqtt.db'}"
    engine = make_engine(url)
    make_schema(engine)
    port = free_udp_ports(2)
    with session_scope(engine) as session:
        user = auth.create_user(session=session, username="alice", password="secret-pw", role=Role.pilot)
        token = auth.issue_token(session=session, name="alice", role=Role.pilot, user_id=user.id).token
        # Registry id 1 flies the sim's second vehicle (sysid 2): ids above the link are registry ids.
        session.add(
            Vehicle(name="drone-a", connection_url=f"udpin://0.0.0.0:{port + 1}", sysid=2,
                    home_lat=HOME[0], home_lon=HOME[1], home_alt_m=1100.0)
        )  # fmt: skip
    engine.dispose()
    settings = Settings(
        database_url=url,
        mqtt_url="mqtt://127.0.0.1:1883",
        mqtt_topic_prefix=prefix,
        mqtt_client_id=f"sw-{prefix}",
        mqtt_commands_enabled=True,
        mqtt_command_users={"op-1": "alice"},
        registry_poll_s=0.5,
    )
    app = create_app(settings)
    async with (
        SimFleet(count=2, base_port=port, speed=10.0, home=(HOME[0], HOME[1], 1100.0)) as fleet,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sw.test") as client,
    ):
        client.headers["Authorization"] = f"Bearer {token}"
        link = await app.state.runtime.fleet.wait_link(1, timeout_s=15)
        await link.wait_ready(timeout_s=15)
        await app.state.mqtt_bridge.wait_connected(10)
        yield app, client, fleet.vehicles[1]


async def _next_json(messages, topic_suffix: str, timeout_s: float = 10.0) -> dict:
    async def first() -> dict:
        async for message in messages:
            if str(message.topic).endswith(topic_suffix):
                return json.loads(message.payload)
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(first(), timeout_s)


async def test_lifespan_bridge_publishes_retained_state_under_the_registry_id(tmp_path):
    prefix = f"sw-test-{uuid.uuid4().hex[:8]}"
    async with (
        service_with_bridge(tmp_path, prefix),
        aiomqtt.Client("127.0.0.1", 1883, identifier=f"probe-{prefix}") as probe,
    ):
        await probe.subscribe(f"{prefix}/vehicles/+/state")
        state = await _next_json(probe.messages, "/state")
        while state["lat"] is None:  # the first state can precede the first position fix
            state = await _next_json(probe.messages, "/state")
        topics = set()
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"late-{prefix}") as late:
            await late.subscribe(f"{prefix}/vehicles/+/state")  # retained: a late subscriber gets it at once
            retained = await _next_json(late.messages, "/state", timeout_s=2)
            topics.add(retained["vehicle_id"])
    assert state["vehicle_id"] == 1 and topics == {1}
    assert state["lat"] == pytest.approx(HOME[0], abs=0.001)


async def test_mqtt_command_needs_control_then_flies_and_is_audited_as_the_mapped_user(tmp_path):
    prefix = f"sw-test-{uuid.uuid4().hex[:8]}"
    async with (
        service_with_bridge(tmp_path, prefix) as (_app, client, vehicle),
        aiomqtt.Client("127.0.0.1", 1883, identifier=f"op-{prefix}") as operator,
    ):
        await operator.subscribe(f"{prefix}/errors", qos=1)
        topic = f"{prefix}/commands/1/op-1"

        await operator.publish(topic, json.dumps({"command": "arm"}), qos=1)
        refused = await _next_json(operator.messages, "/errors")
        assert refused["error"]["code"] == "permission_denied"
        assert "control" in refused["error"]["message"]
        assert not vehicle.state.armed

        await operator.publish(topic, json.dumps({"command": "goto", "params": {"lat": 95}}), qos=1)
        bad = await _next_json(operator.messages, "/errors")
        assert bad["error"]["code"] == "bad_request" and "lat" in bad["error"]["message"]

        assert (await client.post("/api/v1/vehicles/1/control")).status_code == 200
        await operator.publish(topic, json.dumps({"command": "arm"}), qos=1)
        for _ in range(100):
            if vehicle.state.armed:
                break
            await asyncio.sleep(0.1)
        assert vehicle.state.armed
    engine = make_engine(f"sqlite:///{tmp_path / 'mqtt.db'}")
    with session_scope(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry).where(AuditEntry.actor == "alice"))]
    engine.dispose()
    assert "command.arm" in actions or any(a.endswith("arm") for a in actions), actions


BROKER_USERS = {"skywarden": "bridge-pw", "cad": "cad-pw", "mallory": "mallory-pw", "watcher": "watcher-pw"}


@asynccontextmanager
async def service_with_secured_intake(tmp_path, broker: SecuredMosquitto, **overrides: object):
    """The service's lifespan with its bridge signed in to a broker running the production ACL."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    engine = make_engine(url)
    make_schema(engine)
    with session_scope(engine) as session:
        auth.create_user(
            session=session, username="cad-dispatch", password="dispatch-pw", role=Role.dispatcher
        )
        auth.create_user(session=session, username="olga", password="observer-pw", role=Role.observer)
        token = auth.issue_token(session=session, name="admin", role=Role.admin).token
    engine.dispose()
    options: dict[str, object] = {
        "database_url": url,
        "mqtt_url": broker.url_for("skywarden"),
        "mqtt_client_id": "sw-intake",
        "mqtt_incident_users": {"cad": "cad-dispatch", "watcher": "olga"},
        "mqtt_incident_auto_dispatch": False,
    }
    settings = Settings(_env_file=None, **(options | overrides))  # type: ignore[call-arg, arg-type]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sw.test") as client,
    ):
        client.headers["Authorization"] = f"Bearer {token}"
        await app.state.mqtt_bridge.wait_connected(10)
        yield app, client


REPORT = {
    "location": {"lat": HOME[0], "lon": HOME[1]},
    "priority": 1,
    "kind": "alarm",
    "source": "cad",
    "ref": "r-1",
}


async def test_incidents_from_unmapped_or_unqualified_senders_create_nothing_and_are_audited(tmp_path):
    with secured_mosquitto(BROKER_USERS) as broker:
        async with service_with_secured_intake(tmp_path, broker) as (_app, client):
            for user in ("mallory", "watcher"):
                async with aiomqtt.Client(
                    "127.0.0.1",
                    broker.port,
                    identifier=f"{user}-c",
                    username=user,
                    password=BROKER_USERS[user],
                ) as sender:
                    await sender.subscribe("skywarden/errors", qos=1)
                    await sender.publish(f"skywarden/incidents/new/{user}", json.dumps(REPORT), qos=1)
                    refused = await _next_json(sender.messages, "/errors")
                    assert refused["error"]["code"] == "forbidden", refused
                for _ in range(3):
                    await asyncio.sleep(0)
            incidents = (await client.get("/api/v1/incidents")).json()
            audit = (await client.get("/api/v1/audit", params={"action": "mqtt.incident_refused"})).json()
    assert incidents["total"] == 0, "an incident from an unmapped sender must never be stored"
    assert sorted(e["actor"] for e in audit["items"]) == ["mqtt:mallory", "mqtt:watcher"]
    assert "role observer may not report incidents" in json.dumps(audit)


async def test_without_a_mapping_the_service_takes_no_incident_over_mqtt(tmp_path):
    with secured_mosquitto(BROKER_USERS) as broker:
        async with service_with_secured_intake(tmp_path, broker, mqtt_incident_users={}) as (app, client):
            assert not app.state.mqtt_bridge.intake_enabled
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, identifier="cad-c", username="cad", password=BROKER_USERS["cad"]
            ) as cad:
                await cad.subscribe("skywarden/errors", qos=1)
                await cad.publish("skywarden/incidents/new/cad", json.dumps(REPORT), qos=1)
                refused = await _next_json(cad.messages, "/errors")
            for _ in range(3):
                await asyncio.sleep(0)
            incidents = (await client.get("/api/v1/incidents")).json()
    assert refused["error"]["message"] == "MQTT incident intake is off on this service"
    assert incidents["total"] == 0


async def test_a_mapped_dispatchers_incident_is_stored_as_that_user(tmp_path):
    """Needs ``Dispatcher.submit(incident, *, actor)`` (the IncidentSink protocol of issue 11)."""
    with secured_mosquitto(BROKER_USERS) as broker:
        async with service_with_secured_intake(tmp_path, broker) as (_app, client):
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, identifier="cad-c", username="cad", password=BROKER_USERS["cad"]
            ) as cad:
                await cad.subscribe("skywarden/incidents/accepted", qos=1)
                await cad.subscribe("skywarden/errors", qos=1)
                await cad.publish("skywarden/incidents/new/cad", json.dumps(REPORT), qos=1)
                answer = await _next_json(cad.messages, "/accepted")
            for _ in range(3):
                await asyncio.sleep(0)
            incident = (await client.get(f"/api/v1/incidents/{answer['incident_id']}")).json()
    assert incident["created_by"] == "cad-dispatch" and incident["channel"] == "mqtt"
