"""The Commander: the only code that sends commands to vehicles.

Each command is a small typed value; ``Commander.send`` resolves the vehicle's link (refusing before
anything is written when it is not connected), writes the hash-chained audit entry and commits it, and
only then sends. A failed send is audited too. Nothing else in the service calls a ``VehicleLink``'s
commands (a test keeps it so), so "audited before the vehicle is commanded" holds by construction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sqlalchemy.engine import Engine

from flightplans.items import Geofence, MissionItem
from mission.audit import service as audit
from mission.db import session_scope
from mission.errors import LinkError
from mission.link.mission_items import RawMissionItem
from mission.link.types import ActuatorResult, VehicleLink

log = logging.getLogger(__name__)


class LinkSource(Protocol):
    def link(self, vehicle_id: int) -> VehicleLink: ...


class Command(Protocol):
    name: ClassVar[str]

    def details(self) -> dict[str, Any]: ...
    async def send(self, link: VehicleLink) -> object: ...


@dataclass(frozen=True, slots=True)
class Arm:
    """Arm; ``keep_mode`` arms a vehicle already in MISSION without leaving it (it takes off at once)."""

    keep_mode: bool = False
    name: ClassVar[str] = "arm"

    def details(self) -> dict[str, Any]:
        return {"keep_mode": True} if self.keep_mode else {}

    async def send(self, link: VehicleLink) -> None:
        if self.keep_mode:
            await link.arm(keep_mode=True)
        else:
            await link.arm()


@dataclass(frozen=True, slots=True)
class Disarm:
    name: ClassVar[str] = "disarm"

    def details(self) -> dict[str, Any]:
        return {}

    async def send(self, link: VehicleLink) -> None:
        await link.disarm()


@dataclass(frozen=True, slots=True)
class Takeoff:
    alt_m: float | None
    name: ClassVar[str] = "takeoff"

    def details(self) -> dict[str, Any]:
        return {"alt_m": self.alt_m}

    async def send(self, link: VehicleLink) -> None:
        await link.takeoff(self.alt_m)


@dataclass(frozen=True, slots=True)
class Goto:
    lat: float
    lon: float
    alt_m: float
    name: ClassVar[str] = "goto"

    def details(self) -> dict[str, Any]:
        return {"lat": round(self.lat, 7), "lon": round(self.lon, 7), "alt_m": self.alt_m}

    async def send(self, link: VehicleLink) -> None:
        await link.goto(self.lat, self.lon, self.alt_m)


@dataclass(frozen=True, slots=True)
class Orbit:
    lat: float
    lon: float
    alt_m: float
    radius_m: float
    speed_m_s: float
    clockwise: bool = True
    name: ClassVar[str] = "orbit"

    def details(self) -> dict[str, Any]:
        return {
            "lat": round(self.lat, 7),
            "lon": round(self.lon, 7),
            "alt_m": self.alt_m,
            "radius_m": self.radius_m,
            "speed_m_s": self.speed_m_s,
            "clockwise": self.clockwise,
        }

    async def send(self, link: VehicleLink) -> None:
        await link.orbit(
            self.lat,
            self.lon,
            self.alt_m,
            radius_m=self.radius_m,
            speed_m_s=self.speed_m_s,
            clockwise=self.clockwise,
        )


@dataclass(frozen=True, slots=True)
class Hold:
    name: ClassVar[str] = "hold"

    def details(self) -> dict[str, Any]:
        return {}

    async def send(self, link: VehicleLink) -> None:
        await link.hold()


@dataclass(frozen=True, slots=True)
class ReturnToLaunch:
    name: ClassVar[str] = "rtl"

    def details(self) -> dict[str, Any]:
        return {}

    async def send(self, link: VehicleLink) -> None:
        await link.return_to_launch()


@dataclass(frozen=True, slots=True)
class Land:
    name: ClassVar[str] = "land"

    def details(self) -> dict[str, Any]:
        return {}

    async def send(self, link: VehicleLink) -> None:
        await link.land()


@dataclass(frozen=True, slots=True)
class SetSpeed:
    speed_m_s: float
    name: ClassVar[str] = "set_speed"

    def details(self) -> dict[str, Any]:
        return {"speed_m_s": self.speed_m_s}

    async def send(self, link: VehicleLink) -> None:
        await link.set_speed(self.speed_m_s)


@dataclass(frozen=True, slots=True)
class SetActuator:
    index: int
    value: float
    name: ClassVar[str] = "set_actuator"

    def details(self) -> dict[str, Any]:
        return {"index": self.index, "value": self.value}

    async def send(self, link: VehicleLink) -> ActuatorResult:
        return await link.set_actuator(self.index, self.value)


@dataclass(frozen=True, slots=True)
class UploadGeofence:
    fence: Geofence
    name: ClassVar[str] = "upload_geofence"

    def details(self) -> dict[str, Any]:
        return {"shapes": len(self.fence.shapes)}

    async def send(self, link: VehicleLink) -> None:
        await link.upload_geofence(self.fence)


@dataclass(frozen=True, slots=True)
class UploadMission:
    items: Sequence[MissionItem | RawMissionItem]
    name: ClassVar[str] = "upload_mission"

    def details(self) -> dict[str, Any]:
        return {"items": len(self.items)}

    async def send(self, link: VehicleLink) -> None:
        await link.upload_mission(self.items)


@dataclass(frozen=True, slots=True)
class StartMission:
    """Switch to MISSION (PX4 refuses for a moment right after an upload; the link retries)."""

    name: ClassVar[str] = "start_mission"

    def details(self) -> dict[str, Any]:
        return {}

    async def send(self, link: VehicleLink) -> None:
        await link.start_mission()


@dataclass(frozen=True, slots=True)
class PauseMission:
    name: ClassVar[str] = "pause_mission"

    def details(self) -> dict[str, Any]:
        return {}

    async def send(self, link: VehicleLink) -> None:
        await link.pause()


@dataclass(frozen=True, slots=True)
class Refs:
    """What a command serves, written with its audit entry."""

    flight_id: int | None = None
    mission_id: int | None = None
    incident_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_details(self) -> dict[str, Any]:
        out = {k: v for k, v in (("flight_id", self.flight_id), ("mission_id", self.mission_id)) if v}
        if self.incident_id:
            out["incident_id"] = self.incident_id
        return {**out, **self.extra}


class Commander:
    """Audits, then sends, every command the service gives a vehicle."""

    def __init__(self, *, engine: Engine, links: LinkSource) -> None:
        self._engine = engine
        self._links = links
        self.sent = 0

    def link_of(self, vehicle_id: int) -> VehicleLink:
        """The vehicle's link; VehicleUnavailable (nothing audited) when it is not connected."""
        return self._links.link(vehicle_id)

    async def send(
        self, vehicle_id: int, command: Command, *, actor: str, refs: Refs | None = None
    ) -> object:
        """Audit ``command`` for ``vehicle_id`` (committed), then send it; LinkError is audited and raised.

        Returns what the link answered (an ``ActuatorResult`` for SetActuator; None for most commands).
        """
        link = self._links.link(vehicle_id)  # VehicleUnavailable before anything is written
        details = {**command.details(), **(refs or Refs()).as_details()}
        await asyncio.to_thread(self._audit, vehicle_id, f"cmd.{command.name}", actor, details)
        try:
            answer = await command.send(link)
        except LinkError as err:
            await asyncio.to_thread(
                self._audit,
                vehicle_id,
                f"cmd.{command.name}.failed",
                actor,
                {**details, "error": str(err)},
            )
            raise
        self.sent += 1
        return answer

    def _audit(self, vehicle_id: int, action: str, actor: str, details: dict[str, Any]) -> None:
        with session_scope(self._engine) as session:
            audit.record(
                session=session, actor=actor, action=action, target=f"vehicle:{vehicle_id}", details=details
            )


__all__ = [
    "Arm",
    "Command",
    "Commander",
    "Disarm",
    "Goto",
    "Hold",
    "Land",
    "Orbit",
    "PauseMission",
    "Refs",
    "ReturnToLaunch",
    "SetActuator",
    "SetSpeed",
    "StartMission",
    "Takeoff",
    "UploadGeofence",
    "UploadMission",
]
