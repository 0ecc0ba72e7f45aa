"""The MQTT bridge: telemetry and events out to a broker, incident reports (and optionally commands) in.

Published (``{p}`` = topic prefix, default ``skywarden``):
  ``{p}/vehicles/{id}/state``      retained, the snapshot JSON; on a state change (mode, armed, in
                                   air, link, mission progress), every ``state_interval_s``, on connect
  ``{p}/vehicles/{id}/telemetry``  the snapshot JSON at most ``telemetry_hz`` per vehicle, QoS 0
  ``{p}/events/{kind}``            every live event, QoS 1, in hub order (``seq``); at-least-once
  ``{p}/missions/{id}``            retained, the latest event of that mission, QoS 1
  ``{p}/incidents/accepted``       ``{"incident_id":..,"ref":..,"source":..}`` for each accepted report
  ``{p}/errors``                   ``{"topic":..,"error":{"code":..,"message":..,"where":..},"ref":..}``
Subscribed:
  ``{p}/incidents/new/{user}``     an ``IncidentIn`` JSON from MQTT user ``{user}`` (the broker's ACL
                                   ``pattern write {p}/incidents/new/%u`` proves the sender). The sender must
                                   be mapped (``mqtt_incident_users``) to an enabled skywarden dispatcher or
                                   admin, checked before the payload is read; then it is validated and handed
                                   to the ``IncidentSink`` as that user. Anything else is refused on
                                   ``{p}/errors`` and audited (rate-limited). No mapping = intake off.
  ``{p}/incidents/new``            the old topic: refused, naming the new one
  ``{p}/commands/{vehicle}/{user}`` only with ``commands_enabled``; see ``CommandSink``

While the broker is away the bridge reconnects with exponential backoff; events keep queueing in its hub
subscription (bounded by ``event_queue_max``; overflow is counted in ``stats.events_dropped``) and go out
in order after the reconnect. Snapshots are latest-value: nothing old is replayed, state is refreshed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import aiomqtt
from pydantic import ValidationError

from mission.errors import SkywardenError
from mission.link.types import TelemetrySnapshot
from mission.telemetry.hub import EventRecord, SnapshotUpdate, Subscription, SubscriptionClosed, TelemetryHub
from mission.telemetry.intake import IncidentIn, IncidentSink, SenderCheck
from mission.telemetry.serialize import to_json

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_ERROR_PAYLOAD_ECHO = 200
_REFUSAL_BURST = 10  # error answers to one refused sender, then ...
_REFUSAL_RATE_HZ = 2.0  # ... this many per second (a flood gets no flood of answers)


class CommandSink(Protocol):
    """Runs a vehicle command on behalf of a skywarden user (the commands service implements this)."""

    async def submit_command(
        self, *, vehicle_id: int, command: str, params: Mapping[str, Any], actor: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class MqttBridgeConfig:
    """Where the broker is and how the bridge behaves; ``from_settings`` reads the service settings."""

    url: str  # mqtt://[user[:password]@]host[:port] or mqtts://...
    client_id: str = "skywarden"
    topic_prefix: str = "skywarden"
    telemetry_hz: float = 1.0
    state_interval_s: float = 5.0
    event_queue_max: int = 10_000
    keepalive_s: int = 10
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 30.0
    commands_enabled: bool = False
    # MQTT username -> the skywarden username that commands from it are run (and audited) as.
    command_users: Mapping[str, str] = field(default_factory=dict)
    # Several instances: incidents and commands come over a shared subscription ($share/{group}/...), so
    # the broker gives each message to one instance of the group.
    shared_group: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in {"mqtt", "mqtts", "tcp"} or not parts.hostname:
            raise ValueError(f"mqtt_url must look like mqtt://host:1883, got {self.url!r}")
        if self.telemetry_hz <= 0:
            raise ValueError(f"telemetry_hz must be > 0, got {self.telemetry_hz}")
        if self.event_queue_max < 1:
            raise ValueError(f"event_queue_max must be >= 1, got {self.event_queue_max}")

    @classmethod
    def from_settings(cls, settings: Any) -> MqttBridgeConfig | None:
        """The config from ``settings.mqtt_url`` and optional ``mqtt_*`` settings; None when no URL is set."""
        url = getattr(settings, "mqtt_url", None)
        if not url:
            return None
        optional = {
            "client_id": "mqtt_client_id",
            "topic_prefix": "mqtt_topic_prefix",
            "telemetry_hz": "mqtt_telemetry_hz",
            "state_interval_s": "mqtt_state_interval_s",
            "event_queue_max": "mqtt_event_queue_max",
            "commands_enabled": "mqtt_commands_enabled",
            "command_users": "mqtt_command_users",
        }
        kwargs = {
            key: getattr(settings, name) for key, name in optional.items() if getattr(settings, name, None)
        }
        instance_id = getattr(settings, "instance_id", None)
        clustered = bool(getattr(settings, "cluster", False))
        if clustered and not instance_id:
            from mission.cluster import default_instance_id

            instance_id = default_instance_id()
        if instance_id:  # one client id per instance: two with the same id kick each other off the broker
            kwargs["client_id"] = f"{kwargs.get('client_id', 'skywarden')}-{instance_id}"
        if clustered:
            kwargs["shared_group"] = getattr(settings, "mqtt_shared_group", "skywarden")
        return cls(url=url, **kwargs)

    def subscription(self, topic: str) -> str:
        """The filter to subscribe ``topic`` with: shared by the group's instances when clustered."""
        return f"$share/{self.shared_group}/{topic}" if self.shared_group else topic

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiomqtt.Client``."""
        parts = urlsplit(self.url)
        tls = parts.scheme == "mqtts"
        return {
            "hostname": parts.hostname,
            "port": parts.port or (8883 if tls else 1883),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "identifier": self.client_id,
            "clean_session": False,  # the broker keeps our incident subscription while we reconnect
            "keepalive": self.keepalive_s,
            "timeout": 10,
            "tls_context": ssl.create_default_context() if tls else None,
        }


@dataclass(slots=True)
class BridgeStats:
    connected: bool = False
    connects: int = 0
    published: int = 0
    events_published: int = 0
    events_dropped: int = 0
    incidents_accepted: int = 0
    incidents_rejected: int = 0
    commands_accepted: int = 0
    commands_rejected: int = 0
    incidents_refused: int = 0  # sender not allowed (a subset of incidents_rejected)
    answers_suppressed: int = 0


class _AnswerBudget:
    """A token bucket per refused sender for error answers."""

    def __init__(self, *, burst: float, rate_hz: float) -> None:
        self.burst, self.rate_hz = burst, rate_hz
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> bool:
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_hz)
        if len(self._buckets) > 10_000:
            self._buckets.clear()
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True


def _state_key(s: TelemetrySnapshot) -> tuple[object, ...]:
    m = s.mission
    return (s.link_up, s.mode, s.armed, s.in_air, s.gps_ok, s.home_ok, m.current, m.total, m.finished)


class _Rejected(Exception):
    def __init__(self, code: str, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.where = where


class MqttBridge:
    """``async with MqttBridge(settings_or_config, hub, incident_sink) as bridge:`` runs it until exit.

    With no broker configured (``settings.mqtt_url`` is None) it logs that once and does nothing; without
    ``incident_senders`` (or with no MQTT user mapped) incident intake is off, also said once.
    """

    def __init__(
        self,
        config: MqttBridgeConfig | Any | None,
        hub: TelemetryHub,
        incident_sink: IncidentSink,
        *,
        command_sink: CommandSink | None = None,
        incident_senders: SenderCheck | None = None,
    ) -> None:
        if config is not None and not isinstance(config, MqttBridgeConfig):
            config = MqttBridgeConfig.from_settings(config)
        self.config: MqttBridgeConfig | None = config
        self.hub = hub
        self.incident_sink = incident_sink
        self.command_sink = command_sink
        self.incident_senders = incident_senders
        self._answers = _AnswerBudget(burst=_REFUSAL_BURST, rate_hz=_REFUSAL_RATE_HZ)
        self.stats = BridgeStats()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsent: deque[EventRecord] = deque()  # taken from the hub, not yet acknowledged by the broker
        self._last_state: dict[int, tuple[tuple[object, ...], float]] = {}
        self._last_telemetry: dict[int, float] = {}
        self._connected_event = asyncio.Event()
        p = config.topic_prefix if config is not None else "skywarden"
        self._t_incidents_old = f"{p}/incidents/new"
        self._t_incidents_new = f"{p}/incidents/new/+"
        self._t_commands = f"{p}/commands/#"

    @property
    def enabled(self) -> bool:
        return self.config is not None

    @property
    def intake_enabled(self) -> bool:
        return self.incident_senders is not None and self.incident_senders.enabled

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Until the bridge is connected to the broker."""
        async with asyncio.timeout(timeout_s):
            await self._connected_event.wait()

    async def __aenter__(self) -> MqttBridge:
        if self.config is None:
            log.info("MQTT bridge off: no mqtt_url configured")
            return self
        cfg = self.config
        if not self.intake_enabled:
            log.info(
                "MQTT incident intake off: no MQTT user is mapped to a skywarden user (mqtt_incident_users)"
            )
        self._sub = self.hub.subscribe(
            rate_hz=self.hub.max_rate_hz, max_events=cfg.event_queue_max, linger_s=0.02, name="mqtt"
        )
        self._task = asyncio.create_task(self._run(), name="mqtt-bridge")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        # paho's socket housekeeping task is cancelled from a callback; let it finish before we return.
        for _ in range(3):
            await asyncio.sleep(0)

    # -- connection loop ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self.config is not None
        cfg = self.config
        delay_s = cfg.reconnect_min_s
        where = f"{cfg.client_kwargs()['hostname']}:{cfg.client_kwargs()['port']}"
        was_up = False
        while True:
            try:
                async with aiomqtt.Client(**cfg.client_kwargs()) as client:
                    self.stats.connects += 1
                    self.stats.connected = True
                    self._connected_event.set()
                    delay_s = cfg.reconnect_min_s
                    log.info("MQTT bridge connected to %s", where)
                    was_up = True
                    await self._session(client)
            except aiomqtt.MqttError as err:
                if was_up:
                    log.warning("MQTT bridge lost %s (%s); reconnecting", where, err)
                    was_up = False
                else:
                    log.debug("MQTT bridge cannot reach %s (%s); retry in %.1f s", where, err, delay_s)
            except SubscriptionClosed:
                return
            finally:
                self.stats.connected = False
                self._connected_event.clear()
            await asyncio.sleep(delay_s)
            delay_s = min(cfg.reconnect_max_s, delay_s * 2)

    async def _session(self, client: aiomqtt.Client) -> None:
        assert self.config is not None
        cfg = self.config
        await client.subscribe(cfg.subscription(self._t_incidents_new), qos=1)
        await client.subscribe(cfg.subscription(self._t_incidents_old), qos=1)
        if cfg.commands_enabled:
            await client.subscribe(cfg.subscription(self._t_commands), qos=1)
        # Retained state may be stale after an outage: publish every vehicle's state afresh.
        self._last_state.clear()
        receiver = asyncio.create_task(self._receive(client), name="mqtt-bridge-receive")
        try:
            await self._pump(client, receiver)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await receiver

    # -- outbound -------------------------------------------------------------------------------------------
    async def _pump(self, client: aiomqtt.Client, receiver: asyncio.Task[None]) -> None:
        assert self._sub is not None
        sub = self._sub
        now = time.monotonic()
        for upd in self.hub.latest_updates().values():
            await self._publish_snapshot(client, upd, now)
        while True:
            await self._flush_events(client, receiver)
            delivery = await _unless_disconnected(sub.next(), receiver)
            if delivery.resync_dropped:
                self.stats.events_dropped += delivery.resync_dropped
                log.warning(
                    "MQTT bridge dropped %d events (queue of %d full while the broker was away)",
                    delivery.resync_dropped,
                    self.config.event_queue_max if self.config else 0,
                )
            self._unsent.extend(delivery.events)
            await self._flush_events(client, receiver)
            now = time.monotonic()
            for upd in delivery.snapshots:
                await self._publish_snapshot(client, upd, now)

    async def _flush_events(self, client: aiomqtt.Client, receiver: asyncio.Task[None]) -> None:
        assert self.config is not None
        p = self.config.topic_prefix
        while self._unsent:
            record = self._unsent[0]
            event = record.event
            # Wait for the broker's PUBACK, but give up at once if the connection drops meanwhile:
            # the event stays at the head of the queue and goes out first after the reconnect.
            await self._publish_confirmed(
                client, receiver, f"{p}/events/{_topic_level(event.kind)}", record.json, retain=False
            )
            if event.mission_id is not None:
                await self._publish_confirmed(
                    client, receiver, f"{p}/missions/{event.mission_id}", record.json, retain=True
                )
            self._unsent.popleft()
            self.stats.events_published += 1

    async def _publish_confirmed(
        self, client: aiomqtt.Client, receiver: asyncio.Task[None], topic: str, payload: str, *, retain: bool
    ) -> None:
        await _unless_disconnected(client.publish(topic, payload, qos=1, retain=retain), receiver)
        self.stats.published += 1

    async def _publish_snapshot(self, client: aiomqtt.Client, upd: SnapshotUpdate, now: float) -> None:
        assert self.config is not None
        cfg = self.config
        snap = upd.snapshot
        vid = snap.vehicle_id
        key = _state_key(snap)
        last = self._last_state.get(vid)
        if last is None or last[0] != key or now - last[1] >= cfg.state_interval_s:
            await client.publish(f"{cfg.topic_prefix}/vehicles/{vid}/state", upd.json, qos=0, retain=True)
            self._last_state[vid] = (key, now)
            self.stats.published += 1
        last_t = self._last_telemetry.get(vid)
        # 0.9: a vehicle streaming exactly at telemetry_hz must not lose every other sample to jitter.
        if last_t is None or now - last_t >= 0.9 / cfg.telemetry_hz:
            await client.publish(f"{cfg.topic_prefix}/vehicles/{vid}/telemetry", upd.json, qos=0)
            self._last_telemetry[vid] = now
            self.stats.published += 1

    # -- inbound --------------------------------------------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            try:
                if message.topic.matches(self._t_incidents_new) or message.topic.matches(
                    self._t_incidents_old
                ):
                    await self._take_incident(client, topic, message.payload)
                elif message.topic.matches(self._t_commands):
                    await self._take_command(client, topic, message.payload)
            except aiomqtt.MqttError:
                raise
            except Exception:  # one bad message must never stop the bridge
                log.exception("MQTT bridge: handling a message on %s failed", topic)
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._answer_error(client, topic, "internal", "the service could not handle this")

    async def _answer_error(
        self,
        client: aiomqtt.Client,
        topic: str,
        code: str,
        message: str,
        where: str | None = None,
        **extra: Any,
    ) -> None:
        assert self.config is not None
        body = {"topic": topic, "error": {"code": code, "message": message, "where": where}, **extra}
        await client.publish(f"{self.config.topic_prefix}/errors", to_json(body), qos=1)
        self.stats.published += 1

    async def _refuse_sender(
        self, client: aiomqtt.Client, topic: str, mqtt_user: str | None, code: str, reason: str
    ) -> None:
        self.stats.incidents_rejected += 1
        self.stats.incidents_refused += 1
        if self.incident_senders is not None:
            await self.incident_senders.refused(mqtt_user=mqtt_user, topic=topic, reason=reason)
        if self._answers.take(mqtt_user or "", time.monotonic()):
            await self._answer_error(client, topic, code, reason, "topic")
        else:
            self.stats.answers_suppressed += 1

    async def _take_incident(self, client: aiomqtt.Client, topic: str, payload: Any) -> None:
        assert self.config is not None
        p = self.config.topic_prefix
        mqtt_user = topic[len(self._t_incidents_old) + 1 :] if topic != self._t_incidents_old else None
        if not mqtt_user:
            await self._refuse_sender(
                client,
                topic,
                None,
                "unauthorized",
                f"incidents go to {p}/incidents/new/{{your MQTT username}}; the broker's ACL "
                f"(pattern write {p}/incidents/new/%u) proves who sent them",
            )
            return
        senders = self.incident_senders
        if senders is None or not senders.enabled:
            await self._refuse_sender(
                client, topic, mqtt_user, "forbidden", "MQTT incident intake is off on this service"
            )
            return
        try:
            actor = await senders.actor_for(mqtt_user)
        except SkywardenError as err:
            await self._refuse_sender(client, topic, mqtt_user, "forbidden", str(err))
            return
        raw = _payload_text(payload)
        ref = _peek_ref(raw)
        try:
            incident = IncidentIn.model_validate_json(raw)
        except ValidationError as err:
            self.stats.incidents_rejected += 1
            code, message, where = _validation_reason(err)
            await self._answer_error(
                client, topic, code, message, where, ref=ref, payload=raw[:_MAX_ERROR_PAYLOAD_ECHO]
            )
            return
        try:
            incident_id = await self.incident_sink.submit(incident, actor=actor)
        except SkywardenError as err:
            self.stats.incidents_rejected += 1
            await self._answer_error(client, topic, _error_code(err), str(err), None, ref=incident.ref)
            return
        self.stats.incidents_accepted += 1
        accepted = {"incident_id": incident_id, "ref": incident.ref, "source": incident.source}
        await client.publish(f"{p}/incidents/accepted", to_json(accepted), qos=1)
        self.stats.published += 1

    async def _take_command(self, client: aiomqtt.Client, topic: str, payload: Any) -> None:
        assert self.config is not None
        cfg = self.config
        parts = topic.split("/")[len(cfg.topic_prefix.split("/")) + 1 :]  # after "{p}/commands/"
        raw = _payload_text(payload)
        try:
            if len(parts) != 2 or not parts[0].isdigit():
                raise _Rejected(
                    "unauthorized",
                    "commands go to {p}/commands/{vehicle_id}/{your MQTT username}; the broker's ACL "
                    "(pattern write {p}/commands/+/%u) proves who sent them",
                    "topic",
                )
            vehicle_id, mqtt_user = int(parts[0]), parts[1]
            actor = cfg.command_users.get(mqtt_user)
            if actor is None:
                raise _Rejected("forbidden", f"MQTT user {mqtt_user!r} may not command vehicles", "topic")
            if self.command_sink is None:
                raise _Rejected("unavailable", "this service takes no commands over MQTT")
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as err:
                raise _Rejected("invalid_command", f"payload is not JSON: {err.msg}", "payload") from None
            if not isinstance(body, dict) or not isinstance(body.get("command"), str):
                raise _Rejected(
                    "invalid_command", 'payload must be {"command": "...", "params": {...}}', "command"
                )
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise _Rejected("invalid_command", "params must be an object", "params")
            try:
                await self.command_sink.submit_command(
                    vehicle_id=vehicle_id, command=body["command"], params=params, actor=actor
                )
            except SkywardenError as err:
                raise _Rejected(_error_code(err), str(err)) from None
        except _Rejected as rej:
            self.stats.commands_rejected += 1
            await self._answer_error(client, topic, rej.code, str(rej), rej.where)
            return
        self.stats.commands_accepted += 1


async def _unless_disconnected(work: Coroutine[Any, Any, T], receiver: asyncio.Task[None]) -> T:
    """Await ``work`` unless the connection drops first (the receiver ends): then raise MqttError."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError, SubscriptionClosed):
                await task
    if task in done:
        return task.result()
    receiver.result()  # raises the receiver's MqttError
    raise aiomqtt.MqttError("the connection to the broker ended")


def _topic_level(name: str) -> str:
    # MQTT wildcards and separators cannot appear inside one topic level; a large event's live measures
    # ("security/{id}") are the one kind published on two levels: skywarden/events/security/{id}.
    if name.startswith("security/") and name.count("/") == 1:
        return "security/" + _topic_level(name.split("/", 1)[1])
    return name.replace("/", "_").replace("+", "_").replace("#", "_") or "_"


def _payload_text(payload: Any) -> str:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload).decode("utf-8", "replace")
    return "" if payload is None else str(payload)


def _peek_ref(raw: str) -> str | None:
    # Echo the reporter's ref on errors when the payload is at least a JSON object.
    with contextlib.suppress(ValueError):
        body = json.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("ref"), str):
            return body["ref"][:128]
    return None


def _validation_reason(err: ValidationError) -> tuple[str, str, str | None]:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    message = first["msg"]
    if first["type"] == "json_invalid":
        return "invalid_json", f"payload is not JSON: {first.get('ctx', {}).get('error', message)}", None
    count = err.error_count()
    more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
    return "invalid_incident", f"{where}: {message}{more}" if where else f"{message}{more}", where


def _error_code(err: SkywardenError) -> str:
    name = type(err).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
