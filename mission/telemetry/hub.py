"""The telemetry hub: latest snapshot per vehicle, live events, and per-subscriber delivery that never blocks.

Producers (the fleet manager, mission and dispatch services) call ``update`` and ``emit``; both are cheap
and never wait on a consumer. Consumers (websocket clients, the MQTT bridge) each hold a ``Subscription``:

- snapshots are coalesced per vehicle (latest value wins) and rate-limited per vehicle with a small token
  bucket, so a slow consumer only ever has one pending snapshot per vehicle;
- events queue in a bounded deque; when a consumer falls more than ``max_events`` behind, the oldest events
  are dropped, counted, and its next delivery is a resync: the number dropped plus the current state of
  every vehicle.

Everything here runs on the event loop thread; call ``update``/``emit`` from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from mission.link.types import TelemetrySnapshot
from mission.telemetry.events import Event
from mission.telemetry.serialize import event_to_json, snapshot_to_json

DEFAULT_RATE_HZ = 5.0
DEFAULT_MAX_RATE_HZ = 10.0
DEFAULT_MAX_EVENTS = 1000

# Token bucket per (subscriber, vehicle): a snapshot goes out at once when at least _SEND_AT tokens are left
# (tolerates arrival jitter of a source that streams exactly at the subscriber's rate); one held back is
# flushed when the bucket would be full again, i.e. only when the source went quiet.
_BUCKET_CAP = 1.5
_SEND_AT = 0.75


class SubscriptionClosed(Exception):
    """The subscription was closed (by its owner or because the hub shut down)."""


@dataclass(slots=True, eq=False)
class SnapshotUpdate:
    """One snapshot as delivered, serialized at most once however many subscribers send it."""

    snapshot: TelemetrySnapshot
    _json: str | None = field(default=None, repr=False)

    @property
    def vehicle_id(self) -> int:
        return self.snapshot.vehicle_id

    @property
    def json(self) -> str:
        """The snapshot's JSON (``snapshot_to_json``), computed once."""
        if self._json is None:
            self._json = snapshot_to_json(self.snapshot)
        return self._json


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An emitted event with its hub sequence number (strictly increasing, 1-based) and its JSON."""

    seq: int
    event: Event
    json: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a subscriber gets in one go: events in emit order, then the latest snapshots.

    ``resync_dropped`` > 0 means that many events were dropped because the subscriber fell behind;
    ``snapshots`` then holds the current state of every subscribed vehicle.
    """

    events: list[EventRecord]
    snapshots: list[SnapshotUpdate]
    resync_dropped: int = 0


def kind_matches(kind: str, patterns: frozenset[str] | None) -> bool:
    """``None`` matches all; ``"mission"`` matches ``"mission"`` and ``"mission.transition"``."""
    if patterns is None or kind in patterns:
        return True
    head = kind
    while "." in head:
        head = head.rsplit(".", 1)[0]
        if head in patterns:
            return True
    return False


class Subscription:
    """One consumer's view of the hub. Create with ``TelemetryHub.subscribe``; read with ``await next()``."""

    def __init__(
        self,
        hub: TelemetryHub,
        *,
        vehicles: frozenset[int] | None,
        kinds: frozenset[str] | None,
        rate_hz: float,
        max_events: int,
        linger_s: float,
        name: str,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        if linger_s < 0:
            raise ValueError(f"linger_s must be >= 0, got {linger_s}")
        self.name = name
        self._hub = hub
        self._vehicles = vehicles
        self._kinds = kinds
        self._rate_hz = hub.clamp_rate(rate_hz)
        self._max_events = max_events
        self._linger_s = linger_s
        self._ready: dict[int, SnapshotUpdate] = {}
        self._held: dict[int, tuple[SnapshotUpdate, float]] = {}  # vehicle -> (update, flush at monotonic)
        self._buckets: dict[int, tuple[float, float]] = {}  # vehicle -> (tokens, at monotonic)
        self._events: deque[EventRecord] = deque()
        self._dropped = 0
        self._dropped_total = 0
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._closed = False

    # -- configuration --------------------------------------------------------------------------------------
    @property
    def vehicles(self) -> frozenset[int] | None:
        return self._vehicles

    @property
    def kinds(self) -> frozenset[str] | None:
        return self._kinds

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @property
    def dropped_total(self) -> int:
        """Events dropped for this subscriber since it was created."""
        return self._dropped_total

    @property
    def closed(self) -> bool:
        return self._closed

    def configure(
        self, *, vehicles: Iterable[int] | None, kinds: Iterable[str] | None, rate_hz: float | None = None
    ) -> None:
        """Replace the filters (``None`` = all) and rate; queue the state of the subscribed vehicles."""
        self._vehicles = None if vehicles is None else frozenset(vehicles)
        self._kinds = None if kinds is None else frozenset(kinds)
        if rate_hz is not None:
            self._rate_hz = self._hub.clamp_rate(rate_hz)
        self._held.clear()
        self._buckets.clear()
        self._ready = {
            vid: upd for vid, upd in self._hub.latest_updates().items() if self._wants_vehicle(vid)
        }
        self._events = deque(rec for rec in self._events if self._wants_event(rec.event))
        self._wake.set()

    def prime(self) -> None:
        """Queue the current state of every subscribed vehicle (e.g. right after connecting)."""
        for vid, upd in self._hub.latest_updates().items():
            if self._wants_vehicle(vid):
                self._ready[vid] = upd
                self._held.pop(vid, None)
        if self._ready:
            self._wake.set()

    def _wants_vehicle(self, vehicle_id: int) -> bool:
        return self._vehicles is None or vehicle_id in self._vehicles

    def _wants_event(self, event: Event) -> bool:
        if not kind_matches(event.kind, self._kinds):
            return False
        # Fleet-wide events (no vehicle) go to every subscriber of their kind.
        return event.vehicle_id is None or self._vehicles is None or event.vehicle_id in self._vehicles

    # -- producer side (called by the hub) ------------------------------------------------------------------
    def _offer_snapshot(self, vid: int, update: SnapshotUpdate, now: float) -> None:
        # Hot path: called for every (update, subscriber) pair, ~10k times a second for a large fleet.
        vehicles = self._vehicles
        if vehicles is not None and vid not in vehicles:
            return
        bucket = self._buckets.get(vid)
        if bucket is None:
            tokens = _BUCKET_CAP
        else:
            tokens = bucket[0] + (now - bucket[1]) * self._rate_hz
            if tokens > _BUCKET_CAP:
                tokens = _BUCKET_CAP
        if tokens >= _SEND_AT:
            self._buckets[vid] = (tokens - 1.0, now)
            self._ready[vid] = update
            if self._held:
                self._held.pop(vid, None)
            self._wake.set()
        else:
            self._buckets[vid] = (tokens, now)
            flush_at = now + (_BUCKET_CAP - tokens) / self._rate_hz
            self._held[vid] = (update, flush_at)
            self._arm_timer(flush_at)

    def _offer_event(self, record: EventRecord) -> None:
        if not self._wants_event(record.event):
            return
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self._dropped += 1
            self._dropped_total += 1
        self._events.append(record)
        self._wake.set()

    def _arm_timer(self, at: float) -> None:
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        # call_later, not call_at: the loop's clock (uvloop's) need not be time.monotonic().
        delay_s = max(0.0, at - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._flush_held)

    def _flush_held(self) -> None:
        self._timer = None
        now = time.monotonic()
        later = None
        for vid, (upd, flush_at) in list(self._held.items()):
            if flush_at <= now + 0.001:
                del self._held[vid]
                self._ready[vid] = upd
                self._buckets[vid] = (_BUCKET_CAP - 1.0, now)
                self._wake.set()
            elif later is None or flush_at < later:
                later = flush_at
        if later is not None:
            self._arm_timer(later)

    # -- consumer side --------------------------------------------------------------------------------------
    def pending(self) -> bool:
        """Whether a delivery is ready without waiting."""
        return bool(self._ready or self._events or self._dropped)

    async def next(self) -> Delivery:
        """Wait for and take the next delivery. Raises ``SubscriptionClosed`` once closed."""
        while not self.pending():
            if self._closed:
                raise SubscriptionClosed(self.name)
            self._wake.clear()
            await self._wake.wait()
        if self._closed:
            raise SubscriptionClosed(self.name)
        if self._linger_s:
            # Let a few more updates coalesce into this delivery instead of waking once per update.
            await asyncio.sleep(self._linger_s)
        return self.take()

    def take(self) -> Delivery:
        """Take whatever is ready now (possibly nothing)."""
        dropped, self._dropped = self._dropped, 0
        if dropped:
            self._held.clear()
            snapshots = [upd for vid, upd in self._hub.latest_updates().items() if self._wants_vehicle(vid)]
        else:
            snapshots = list(self._ready.values())
        self._ready = {}
        events = list(self._events)
        self._events.clear()
        return Delivery(events=events, snapshots=snapshots, resync_dropped=dropped)

    def close(self) -> None:
        """Stop receiving; a pending ``next()`` raises ``SubscriptionClosed``."""
        if self._closed:
            return
        self._closed = True
        self._hub._remove(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._ready.clear()
        self._held.clear()
        self._events.clear()
        self._dropped = 0
        self._wake.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class HubStats:
    updates: int
    events: int
    subscribers: int
    vehicles: int


class TelemetryHub:
    """Latest typed snapshot per vehicle plus a stream of live events, fanned out to subscriptions."""

    def __init__(
        self, *, max_rate_hz: float = DEFAULT_MAX_RATE_HZ, default_rate_hz: float = DEFAULT_RATE_HZ
    ) -> None:
        if max_rate_hz <= 0:
            raise ValueError(f"max_rate_hz must be > 0, got {max_rate_hz}")
        self.max_rate_hz = max_rate_hz
        self.default_rate_hz = min(default_rate_hz, max_rate_hz)
        self._latest: dict[int, SnapshotUpdate] = {}
        self._subscriptions: list[Subscription] = []
        self._seq = 0
        self._updates = 0

    def clamp_rate(self, rate_hz: float) -> float:
        """A subscriber's rate, capped at the vehicles' rate; must be > 0."""
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        return min(float(rate_hz), self.max_rate_hz)

    def update(self, snapshot: TelemetrySnapshot) -> None:
        """Record the latest snapshot of ``snapshot.vehicle_id`` and offer it to every subscriber."""
        upd = SnapshotUpdate(snapshot)
        self._latest[snapshot.vehicle_id] = upd
        self._updates += 1
        if self._subscriptions:
            now = time.monotonic()
            vid = snapshot.vehicle_id
            for sub in self._subscriptions:
                sub._offer_snapshot(vid, upd, now)

    def emit(self, event: Event) -> None:
        """Publish a live event to every matching subscriber, in order, with the next sequence number."""
        self._seq += 1
        record = EventRecord(seq=self._seq, event=event, json=event_to_json(event, seq=self._seq))
        for sub in self._subscriptions:
            sub._offer_event(record)

    def latest(self) -> dict[int, TelemetrySnapshot]:
        """The latest snapshot of every vehicle seen so far."""
        return {vid: upd.snapshot for vid, upd in self._latest.items()}

    def latest_updates(self) -> dict[int, SnapshotUpdate]:
        """Like ``latest`` with each snapshot's cached JSON."""
        return dict(self._latest)

    def forget(self, vehicle_id: int) -> None:
        """Drop a vehicle's state (it was removed from the registry)."""
        self._latest.pop(vehicle_id, None)

    def subscribe(
        self,
        *,
        vehicles: Iterable[int] | None = None,
        kinds: Iterable[str] | None = None,
        rate_hz: float | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        linger_s: float = 0.0,
        name: str = "subscriber",
    ) -> Subscription:
        """A new subscription (``None`` filters = everything); close it when done."""
        sub = Subscription(
            self,
            vehicles=None if vehicles is None else frozenset(vehicles),
            kinds=None if kinds is None else frozenset(kinds),
            rate_hz=self.default_rate_hz if rate_hz is None else rate_hz,
            max_events=max_events,
            linger_s=linger_s,
            name=name,
        )
        self._subscriptions.append(sub)
        return sub

    def close(self) -> None:
        """Close every subscription (service shutdown)."""
        for sub in list(self._subscriptions):
            sub.close()

    @property
    def stats(self) -> HubStats:
        return HubStats(
            updates=self._updates,
            events=self._seq,
            subscribers=len(self._subscriptions),
            vehicles=len(self._latest),
        )

    def _remove(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)
