"""Events everywhere: each instance's events reach every other instance's hub over PostgreSQL NOTIFY.

Telemetry needs no relay: every instance links every vehicle (the vehicles stream to all of them, a standby
listens but never commands). Events are made where the work happens (the owner's executor, the leader's
overwatch), so ``EventRelay`` sends each local event on one connection (NOTIFY keeps one session's order)
and emits the other instances' events into the local hub, marked ``data["via"] = instance``. Link events
(``link.*``) are every instance's own observation and are not relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from mission.telemetry.events import Event
from mission.telemetry.hub import TelemetryHub

log = logging.getLogger(__name__)

_MAX_PAYLOAD = 7900  # NOTIFY's limit is 8000 bytes
_LOCAL_ONLY = ("link.",)


def channel_for(engine: Engine) -> str:
    """One channel per database and schema (the URL without its password), so clusters do not mix."""
    url = engine.url.render_as_string(hide_password=True)
    return "skywarden_events_" + hashlib.sha256(url.encode()).hexdigest()[:16]


def _dsn(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class EventRelay:
    """``async with EventRelay(engine=..., hub=..., instance_id=...)``: relays events both ways."""

    def __init__(self, *, engine: Engine, hub: TelemetryHub, instance_id: str) -> None:
        self._dsn = _dsn(engine)
        self.channel = channel_for(engine)
        self._hub = hub
        self._me = instance_id
        self._tasks: list[asyncio.Task[None]] = []
        self.sent = 0
        self.received = 0
        self.too_large = 0
        self.listening = asyncio.Event()

    async def __aenter__(self) -> EventRelay:
        sub = self._hub.subscribe(rate_hz=0.1, max_events=100_000, name="cluster:relay")
        self._tasks = [
            asyncio.create_task(self._send(sub), name="cluster:events:send"),
            asyncio.create_task(self._listen(), name="cluster:events:listen"),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, sub: Any) -> None:
        try:
            while True:
                try:
                    async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                        while True:
                            delivery = await sub.next()
                            for record in delivery.events:
                                await self._notify(conn, record.event)
                except (psycopg.Error, OSError) as err:
                    log.warning("event relay: sending failed (%s); reconnecting", err)
                    await asyncio.sleep(1.0)
        finally:
            sub.close()

    async def _notify(self, conn: Any, event: Event) -> None:
        if "via" in event.data or event.kind.startswith(_LOCAL_ONLY):
            return  # another instance's event, or this instance's own view of a link
        payload = json.dumps(
            {
                "origin": self._me,
                "kind": event.kind,
                "data": event.data,
                "vehicle_id": event.vehicle_id,
                "mission_id": event.mission_id,
                "time": event.time,
            },
            default=str,
        )
        if len(payload.encode()) > _MAX_PAYLOAD:
            self.too_large += 1
            log.warning("event relay: %s too large to relay (%d bytes)", event.kind, len(payload))
            return
        await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        self.sent += 1

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self.listening.set()
                    async for note in conn.notifies():
                        self._receive(note.payload)
            except (psycopg.Error, OSError) as err:
                self.listening.clear()
                log.warning("event relay: listening failed (%s); reconnecting", err)
                await asyncio.sleep(1.0)

    def _receive(self, payload: str) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            body = json.loads(payload)
            if body["origin"] == self._me:
                return
            self.received += 1
            self._hub.emit(
                Event(
                    kind=body["kind"],
                    data={**body["data"], "via": body["origin"]},
                    vehicle_id=body["vehicle_id"],
                    mission_id=body["mission_id"],
                    time=body["time"],
                )
            )
