"""Several instances on one broker: their own client ids, incidents shared so each is taken once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from api import migrations
from api.mqtt_bridge import MqttBridge, MqttBridgeConfig
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import make_engine, session_scope
from mission.telemetry.hub import TelemetryHub
from mission.telemetry.intake import IncidentIn, IncidentSenders
from tests.support.service import running_service
from tests.telemetry.servers import private_mosquitto
from tests.telemetry.test_mqtt_bridge import GOOD_INCIDENT, RecordingIncidents, mqtt_client

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]


def test_each_instance_has_its_own_client_id_and_shares_intake() -> None:
    pg = "postgresql+psycopg://postgres@127.0.0.1/test"
    a, b = (
        MqttBridgeConfig.from_settings(
            Settings(
                _env_file=None, database_url=pg, mqtt_url="mqtt://127.0.0.1:1883", cluster=True, instance_id=i
            )  # type: ignore[call-arg]
        )
        for i in ("a", "b")
    )
    assert a is not None and b is not None
    assert (a.client_id, b.client_id) == ("skywarden-a", "skywarden-b")
    assert a.subscription("skywarden/incidents/new/+") == "$share/skywarden/skywarden/incidents/new/+"
    alone = MqttBridgeConfig.from_settings(Settings(_env_file=None, mqtt_url="mqtt://127.0.0.1:1883"))  # type: ignore[call-arg]
    assert alone is not None and alone.client_id == "skywarden" and alone.shared_group is None


async def test_a_shared_subscription_gives_each_incident_to_one_instance(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'users.db'}")
    migrations.upgrade(engine)
    sinks = [RecordingIncidents(), RecordingIncidents()]
    senders = IncidentSenders(engine=engine, users={"cad": "cad-dispatch"})
    with session_scope(engine) as session:
        auth.create_user(
            session=session, username="cad-dispatch", password="dispatch-pw", role=Role.dispatcher
        )
    try:
        with private_mosquitto() as broker:
            configs = [
                MqttBridgeConfig(url=broker.url, client_id=f"skywarden-{i}", shared_group="skywarden")
                for i in ("a", "b")
            ]
            async with (
                MqttBridge(configs[0], TelemetryHub(), sinks[0], incident_senders=senders) as one,
                MqttBridge(configs[1], TelemetryHub(), sinks[1], incident_senders=senders) as two,
                mqtt_client(broker, "cad-system") as cad,
            ):
                await one.wait_connected()
                await two.wait_connected()
                await asyncio.sleep(0.3)
                for n in range(20):
                    body = {**GOOD_INCIDENT, "ref": f"CAD-{n}"}
                    await cad.publish("skywarden/incidents/new/cad", json.dumps(body), qos=1)
                for _ in range(100):
                    if sum(len(s.incidents) for s in sinks) >= 20:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # nothing arrives twice
        refs = sorted(i.ref or "" for s in sinks for i in s.incidents)
        assert refs == sorted(f"CAD-{n}" for n in range(20))  # every incident once, by one instance
        assert all(s.incidents for s in sinks)  # the broker spread them over both
    finally:
        engine.dispose()


async def test_an_incident_reported_again_under_its_ref_is_taken_once(tmp_path: Path) -> None:
    """A redelivery (QoS 1, or the shared subscription handing it to another instance) makes no second one."""
    async with running_service(tmp_path) as svc:
        dispatcher = svc.runtime.dispatcher
        report = IncidentIn.model_validate({**GOOD_INCIDENT, "ref": "CAD-900"})
        first = await dispatcher.submit(report, actor="dan")
        again = await dispatcher.submit(report, actor="dan")
        other = await dispatcher.submit(
            IncidentIn.model_validate({**GOOD_INCIDENT, "ref": "CAD-901"}), actor="dan"
        )
        assert again == first and other != first
        r = await svc.get("olga", "/api/v1/incidents")
        assert sorted(i["ref"] for i in r.json()["items"]) == ["CAD-900", "CAD-901"]
