"""A registered vehicle: how to reach it, where it lives, what it carries and how far it flies."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow
from mission.audit.fields import PrintableStr

# MAVSDK connection URLs (udpin://host:port, udpout://, tcpout://, serial://dev:baud), legacy udp://.
_URL_RE = re.compile(r"^(udpin|udpout|udp|tcpin|tcpout|tcp|serial)://[^\s]+$")


class Capability(StrEnum):
    camera = "camera"
    speaker = "speaker"
    spotlight = "spotlight"


GCS_SYSID = 245  # MAVSDK's own system id as a ground station; a vehicle must not use it


def _check_sysid(sysid: int) -> int:
    if sysid == GCS_SYSID:
        raise ValueError(f"sysid {GCS_SYSID} is the ground station's own (MAVSDK); pick another")
    return sysid


# Payloads driven through an actuator output (DO_SET_ACTUATOR index 1..6); the camera has its own protocol.
ACTUATED = frozenset({Capability.speaker, Capability.spotlight})


class Vehicle(SQLModel, table=True):
    __tablename__ = "vehicles"
    # A sysid is unique per connection, not per fleet: MAVLink has 253 vehicle sysids, and a fleet larger than
    # that repeats them on other links (another radio, router port or simulator port), which the link layer
    # reaches through another MAVSDK instance.
    __table_args__ = (Index("uq_vehicles_url_sysid", "connection_url", "sysid", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    connection_url: str = Field(max_length=200)
    sysid: int = Field(index=True)
    home_lat: float
    home_lon: float
    home_alt_m: float = Field(default=0.0)
    dock: str | None = Field(default=None, max_length=100)
    capabilities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cruise_speed_m_s: float = Field(default=10.0)
    endurance_s: float = Field(default=1800.0)
    battery_wh: float = Field(default=100.0)
    payload_actuators: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


def _check_url(url: str) -> str:
    if not _URL_RE.match(url):
        raise ValueError(
            f"connection_url {url!r} is not a MAVSDK URL like udpin://0.0.0.0:14540 or tcpout://host:5760"
        )
    return url


def _check_actuators(capabilities: list[Capability], actuators: dict[Capability, int]) -> None:
    for payload in actuators:
        if payload not in ACTUATED:
            raise ValueError(f"payload_actuators: {payload.value!r} is not driven by an actuator output")
        if payload not in capabilities:
            raise ValueError(f"payload_actuators maps {payload.value!r} but capabilities do not include it")
    indexes = list(actuators.values())
    if len(set(indexes)) != len(indexes):
        raise ValueError("payload_actuators: two payloads share one actuator index")


class VehicleCreate(BaseModel):
    """A vehicle as the API or a fleet file declares it."""

    model_config = ConfigDict(extra="forbid")

    name: PrintableStr = PydField(min_length=1, max_length=64)
    connection_url: PrintableStr = PydField(max_length=200)
    sysid: int = PydField(ge=1, le=254, description="MAVLink system id, unique on its connection_url")
    home_lat: float = PydField(ge=-90, le=90)
    home_lon: float = PydField(ge=-180, le=180)
    home_alt_m: float = PydField(default=0.0, ge=-500, le=9000, description="home altitude AMSL")
    dock: PrintableStr | None = PydField(default=None, max_length=100)
    capabilities: list[Capability] = PydField(default_factory=list)
    cruise_speed_m_s: float = PydField(default=10.0, gt=0, le=60)
    endurance_s: float = PydField(default=1800.0, gt=0, le=86_400)
    battery_wh: float = PydField(default=100.0, gt=0, le=100_000)
    payload_actuators: dict[Capability, int] = PydField(
        default_factory=dict, description="payload -> DO_SET_ACTUATOR index (1..6)"
    )
    enabled: bool = True

    @field_validator("connection_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("sysid")
    @classmethod
    def _sysid(cls, value: int) -> int:
        return _check_sysid(value)

    @field_validator("capabilities")
    @classmethod
    def _unique_caps(cls, caps: list[Capability]) -> list[Capability]:
        return list(dict.fromkeys(caps))

    @field_validator("payload_actuators")
    @classmethod
    def _index_range(cls, actuators: dict[Capability, int]) -> dict[Capability, int]:
        for payload, index in actuators.items():
            if not 1 <= index <= 6:
                raise ValueError(f"actuator index for {payload.value!r} must be 1..6, got {index}")
        return actuators

    @model_validator(mode="after")
    def _actuators_match(self) -> VehicleCreate:
        _check_actuators(self.capabilities, self.payload_actuators)
        return self


class VehicleUpdate(BaseModel):
    """A partial change (PATCH): only the fields given are changed."""

    model_config = ConfigDict(extra="forbid")

    name: PrintableStr | None = PydField(default=None, min_length=1, max_length=64)
    connection_url: PrintableStr | None = PydField(default=None, max_length=200)
    sysid: int | None = PydField(default=None, ge=1, le=254)
    home_lat: float | None = PydField(default=None, ge=-90, le=90)
    home_lon: float | None = PydField(default=None, ge=-180, le=180)
    home_alt_m: float | None = PydField(default=None, ge=-500, le=9000)
    dock: PrintableStr | None = PydField(default=None, max_length=100)
    capabilities: list[Capability] | None = None
    cruise_speed_m_s: float | None = PydField(default=None, gt=0, le=60)
    endurance_s: float | None = PydField(default=None, gt=0, le=86_400)
    battery_wh: float | None = PydField(default=None, gt=0, le=100_000)
    payload_actuators: dict[Capability, int] | None = None
    enabled: bool | None = None

    @field_validator("connection_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value) if value is not None else None

    @field_validator("sysid")
    @classmethod
    def _sysid(cls, value: int | None) -> int | None:
        return _check_sysid(value) if value is not None else None

    @model_validator(mode="after")
    def _no_nulls(self) -> VehicleUpdate:
        for key in self.model_fields_set:
            if getattr(self, key) is None and key != "dock":
                raise ValueError(f"{key} cannot be null")
        return self


class VehicleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    connection_url: str
    sysid: int
    home_lat: float
    home_lon: float
    home_alt_m: float
    dock: str | None
    capabilities: list[Capability]
    cruise_speed_m_s: float
    endurance_s: float
    battery_wh: float
    payload_actuators: dict[Capability, int]
    enabled: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime

    def actuator_for(self, payload: Capability | str) -> int | None:
        """The actuator index driving ``payload`` on this vehicle, if it has one."""
        return self.payload_actuators.get(Capability(payload))
