"""FleetManager: connects every registered vehicle through the LinkManager and forwards its snapshots.

It follows the vehicle registry (polling it, so vehicles added over the API connect without a restart),
keeps one named task per vehicle (``vehicle:{id}``), feeds the telemetry hub, and calls listeners (the
mission supervisor) with each snapshot keyed by the registry id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mission.errors import Conflict, LinkError, NotFound, VehicleUnavailable
from mission.fleet.models import Vehicle
from mission.link.types import TelemetrySnapshot, VehicleLink
from mission.telemetry.events import Event

log = logging.getLogger(__name__)

SnapshotListener = Callable[[int, TelemetrySnapshot], None]


class Links(Protocol):
    """What the fleet needs of the LinkManager."""

    async def add_vehicle(self, *, sysid: int, url: str) -> VehicleLink: ...
    async def remove_vehicle(self, sysid: int, *, url: str | None = None) -> None: ...


class Hub(Protocol):
    """What the fleet needs of the telemetry hub."""

    def update(self, snapshot: TelemetrySnapshot) -> None: ...
    def emit(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class VehicleProfile:
    """What the service needs to know of a registered vehicle to fly it safely."""

    id: int
    name: str
    sysid: int
    url: str
    home_lat: float
    home_lon: float
    home_alt_m: float
    cruise_speed_m_s: float
    endurance_s: float
    battery_wh: float
    actuators: dict[str, int] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()


_UDPIN = re.compile(r"^(udpin://[^:/]*):(\d+)$")


def listen_url(url: str, port_offset: int) -> str:
    """``url`` with its udpin port moved by ``port_offset`` (other URLs as they are)."""
    match = _UDPIN.match(url)
    if not port_offset or match is None:
        return url
    return f"{match.group(1)}:{int(match.group(2)) + port_offset}"


def profile_from_row(row: Vehicle) -> VehicleProfile:
    """The profile of one registry row."""
    assert row.id is not None
    return VehicleProfile(
        id=row.id,
        name=row.name,
        sysid=row.sysid,
        url=row.connection_url,
        home_lat=row.home_lat,
        home_lon=row.home_lon,
        home_alt_m=row.home_alt_m,
        cruise_speed_m_s=row.cruise_speed_m_s,
        endurance_s=row.endurance_s,
        battery_wh=row.battery_wh,
        actuators={str(k): int(v) for k, v in dict(row.payload_actuators or {}).items()},
        capabilities=tuple(str(c) for c in row.capabilities or ()),
    )


@dataclass
class _Connection:
    profile: VehicleProfile
    task: asyncio.Task[None]
    link: VehicleLink | None = None
    latest: TelemetrySnapshot | None = None


class FleetManager:
    """Owns the per-vehicle connection tasks; ``link(id)`` gives a connected vehicle's link."""

    def __init__(
        self,
        *,
        engine: Engine,
        links: Links,
        hub: Hub,
        registry_poll_s: float = 2.0,
        reconnect_backoff_s: tuple[float, float] = (0.5, 10.0),
        listen_port_offset: int = 0,
    ) -> None:
        # Several instances on one host cannot listen on one UDP port: instance k listens on the registered
        # udpin port + its offset (the vehicles stream to each; in the field each instance has its host).
        self._port_offset = listen_port_offset
        self._engine = engine
        self._links = links
        self._hub = hub
        self._registry_poll_s = registry_poll_s
        self._backoff_s = reconnect_backoff_s
        self._conns: dict[int, _Connection] = {}
        self._listeners: list[SnapshotListener] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> FleetManager:
        await self.sync()
        self._sync_task = asyncio.create_task(self._sync_loop(), name="fleet:registry")
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [t for t in [self._sync_task] if t is not None] + [c.task for c in self._conns.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self._conns.values()):
            with contextlib.suppress(Exception):
                await self._links.remove_vehicle(conn.profile.sysid, url=self._url(conn.profile))
        self._conns.clear()

    def _url(self, profile: VehicleProfile) -> str:
        return listen_url(profile.url, self._port_offset)

    def add_listener(self, listener: SnapshotListener) -> None:
        """Call ``listener(vehicle_id, snapshot)`` for every snapshot of every vehicle."""
        self._listeners.append(listener)

    def profiles(self) -> list[VehicleProfile]:
        """Every vehicle the fleet is connecting or connected to."""
        return [c.profile for c in self._conns.values()]

    def profile(self, vehicle_id: int) -> VehicleProfile:
        """The registered vehicle's profile, read from the registry if the fleet has not picked it up yet."""
        conn = self._conns.get(vehicle_id)
        if conn is not None:
            return conn.profile
        with Session(self._engine) as session:
            row = session.get(Vehicle, vehicle_id)
            if row is None:
                raise NotFound(
                    f"vehicle {vehicle_id} does not exist",
                    code="fleet.vehicle_does_exist",
                    params={"vehicle_id": vehicle_id},
                )
            return profile_from_row(row)

    def latest(self, vehicle_id: int) -> TelemetrySnapshot | None:
        """The vehicle's last snapshot, if any."""
        conn = self._conns.get(vehicle_id)
        return None if conn is None else conn.latest

    def link(self, vehicle_id: int) -> VehicleLink:
        """The connected vehicle's link; VehicleUnavailable when it is not connected."""
        conn = self._conns.get(vehicle_id)
        if conn is None:
            self.profile(vehicle_id)  # NotFound for an unknown id
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} is not connected yet",
                code="fleet.vehicle_connected_yet",
                params={"vehicle_id": vehicle_id},
            )
        if conn.link is None or not conn.link.connected:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} ({conn.profile.name}) is not connected",
                code="fleet.vehicle_connected",
                params={"vehicle_id": vehicle_id, "name": conn.profile.name},
            )
        return conn.link

    def require_grounded(self, vehicle_id: int, *, change: str) -> None:
        """Conflict when the vehicle is armed or in the air: its link must not be cut or moved under it."""
        snap = self.latest(vehicle_id)
        if snap is not None and snap.link_up and (snap.armed or snap.in_air):
            state = "in the air" if snap.in_air else "armed"
            raise Conflict(
                f"vehicle {vehicle_id} is {state}; {change} is refused until it has landed and disarmed",
                code="fleet.vehicle_refused_until_has",
                params={"vehicle_id": vehicle_id, "state": state, "change": change},
            )

    async def wait_link(self, vehicle_id: int, *, timeout_s: float) -> VehicleLink:
        """Until the vehicle is connected (VehicleUnavailable after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.link(vehicle_id)
            except VehicleUnavailable:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.2)

    async def sync(self) -> None:
        """Connect new registry vehicles, drop removed ones, reconnect those whose URL or sysid changed."""
        with Session(self._engine) as session:
            rows = session.exec(select(Vehicle).where(Vehicle.enabled == True)).all()  # noqa: E712
            wanted = {p.id: p for p in (profile_from_row(r) for r in rows)}
        for vid, conn in list(self._conns.items()):
            new = wanted.get(vid)
            if new is None or (new.url, new.sysid) != (conn.profile.url, conn.profile.sysid):
                await self._disconnect(vid)
            elif new != conn.profile:
                conn.profile = new
        for vid, profile in wanted.items():
            current = self._conns.get(vid)
            if current is None:
                task = asyncio.create_task(self._run_vehicle(vid), name=f"fleet:vehicle:{vid}")
                self._conns[vid] = _Connection(profile=profile, task=task)
            elif current.task.done():
                # A vehicle task must never end on its own; if one did, say why and start it again.
                err = None if current.task.cancelled() else current.task.exception()
                log.error("vehicle %s: connection task ended (%r); restarting it", vid, err)
                current.link = None
                current.task = asyncio.create_task(self._run_vehicle(vid), name=f"fleet:vehicle:{vid}")

    async def _disconnect(self, vehicle_id: int) -> None:
        conn = self._conns.pop(vehicle_id)
        conn.task.cancel()
        await asyncio.gather(conn.task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._links.remove_vehicle(conn.profile.sysid, url=self._url(conn.profile))

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._registry_poll_s)
            try:
                await self.sync()
            except Exception:  # a registry read failing must not stop the fleet
                log.exception("fleet registry sync failed")

    async def _run_vehicle(self, vehicle_id: int) -> None:
        delay_s, max_delay_s = self._backoff_s
        while True:
            conn = self._conns[vehicle_id]
            try:
                link = await self._links.add_vehicle(sysid=conn.profile.sysid, url=self._url(conn.profile))
                conn.link = link
                self._hub.emit(
                    Event(kind="link.added", vehicle_id=vehicle_id, data={"sysid": conn.profile.sysid})
                )
                async for link_snapshot in link.snapshots():
                    # The link speaks sysids; everything above the fleet (hub, websocket, MQTT, missions)
                    # speaks registry ids, so the snapshot is re-keyed once here.
                    snapshot = (
                        link_snapshot
                        if link_snapshot.vehicle_id == vehicle_id
                        else dataclasses.replace(link_snapshot, vehicle_id=vehicle_id)
                    )
                    was_up = conn.latest is not None and conn.latest.link_up
                    if snapshot.link_up != was_up:
                        kind = "link.up" if snapshot.link_up else "link.down"
                        self._hub.emit(
                            Event(kind=kind, vehicle_id=vehicle_id, data={"sysid": conn.profile.sysid})
                        )
                    conn.latest = snapshot
                    self._hub.update(snapshot)
                    for listener in self._listeners:
                        try:
                            listener(vehicle_id, snapshot)
                        except Exception:  # one listener's bug must not stop telemetry
                            log.exception("snapshot listener failed for vehicle %s", vehicle_id)
                delay_s = self._backoff_s[0]
            except (LinkError, OSError, ValueError) as err:
                log.warning("vehicle %s: connect failed: %s; retrying in %.1f s", vehicle_id, err, delay_s)
            except Exception:  # a bug in the link or a hub must not end this vehicle's connection for good
                log.exception("vehicle %s: link task failed; reconnecting in %.1f s", vehicle_id, delay_s)
            conn.link = None
            with contextlib.suppress(Exception):
                await self._links.remove_vehicle(conn.profile.sysid, url=self._url(conn.profile))
            await asyncio.sleep(delay_s)
            delay_s = min(max_delay_s, delay_s * 2)
