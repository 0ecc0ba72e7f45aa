"""Large events as stored: venue, time window, ring radii, the restricted zone created and the plan set."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from mission.airspace.models import PolygonShape
from mission.audit.clock import UtcDatetime, as_utc, utcnow


class SecurityEvent(SQLModel, table=True):
    __tablename__ = "security_events"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    venue: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # GeoJSON Polygon
    doors_open_at: datetime = Field(sa_type=DateTime(timezone=True))
    starts_at: datetime = Field(sa_type=DateTime(timezone=True))
    ends_at: datetime = Field(sa_type=DateTime(timezone=True))
    ring_radii_m: list[float] = Field(sa_column=Column(JSON, nullable=False))
    revisit_s: float
    drones: int
    zone_id: int | None = Field(default=None, foreign_key="zones.id")
    plan: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    # The registry ids flying it (chosen by the planner from availability and energy, editable).
    assigned: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    state: str = Field(default="planned", max_length=16)  # planned, running, standing_down, ended
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ZoneExemption(SQLModel, table=True):
    """Vehicle ``vehicle_id`` may fly inside event zone ``zone_id`` from ``valid_from`` to ``valid_until``.

    Granted with an event's assignment (``event_id``) or by a dispatcher for an incident (``incident_id``);
    revoked by setting ``revoked_at``. Only event zones are ever exempted: no-fly zones inside a venue stay.
    """

    __tablename__ = "zone_exemptions"

    id: int | None = Field(default=None, primary_key=True)
    zone_id: int = Field(foreign_key="zones.id", index=True)
    vehicle_id: int = Field(foreign_key="vehicles.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="security_events.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    valid_from: datetime = Field(sa_type=DateTime(timezone=True))
    valid_until: datetime = Field(sa_type=DateTime(timezone=True))
    granted_by: str = Field(max_length=100)
    reason: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_by: str | None = Field(default=None, max_length=100)


class ZoneExemptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    zone_id: int
    vehicle_id: int
    event_id: int | None
    incident_id: int | None
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    granted_by: str
    reason: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    revoked_by: str | None = None


class ExemptionCreate(BaseModel):
    """A dispatcher's exemption for one vehicle in an event zone (e.g. to serve an incident in the venue)."""

    model_config = ConfigDict(extra="forbid")

    vehicle_id: int = PydField(ge=1)
    incident_id: int | None = PydField(default=None, ge=1)
    reason: str = PydField(min_length=1, max_length=300)
    valid_until: datetime | None = None  # default: the end of the event zone's window

    @field_validator("valid_until")
    @classmethod
    def _utc_until(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None


class AssignmentUpdate(BaseModel):
    """A dispatcher's edit of the assigned vehicles (registry ids)."""

    model_config = ConfigDict(extra="forbid")

    vehicles: list[int] = PydField(min_length=1, max_length=50)

    @field_validator("vehicles")
    @classmethod
    def _unique(cls, ids: list[int]) -> list[int]:
        if len(set(ids)) != len(ids):
            raise ValueError("vehicles must be distinct registry ids")
        if any(i < 1 for i in ids):
            raise ValueError("vehicle ids are positive integers")
        return ids


class SecurityEventCreate(BaseModel):
    """An event: the venue, when doors open, when it runs, and how it is watched."""

    model_config = ConfigDict(extra="forbid")

    name: str = PydField(min_length=1, max_length=100)
    venue: PolygonShape
    doors_open_at: datetime
    starts_at: datetime
    ends_at: datetime
    ring_radii_m: list[float] = PydField(min_length=1, max_length=6, examples=[[300, 600]])
    revisit_s: float = PydField(default=300.0, gt=0, le=7200)
    drones: int = PydField(default=6, ge=1, le=50)
    sweep_drones: int | None = PydField(default=None, ge=1, le=50)
    swath_m: float = PydField(default=40.0, gt=0, le=500)
    overwatch_points: int = PydField(default=4, ge=0, le=16)
    speed_m_s: float = PydField(default=10.0, gt=0, le=30)
    ceiling_m: float = PydField(default=300.0, gt=0, le=2000, description="top of the restricted zone")
    vehicles: list[int] | None = PydField(
        default=None, description="registry ids to assign; default: chosen by availability and energy"
    )

    @field_validator("doors_open_at", "starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("ring_radii_m")
    @classmethod
    def _radii(cls, radii: list[float]) -> list[float]:
        for r in radii:
            if not 20 <= r <= 5000:
                raise ValueError(f"ring radius {r} m must be within 20..5000")
        return radii

    @model_validator(mode="after")
    def _window(self) -> SecurityEventCreate:
        if not self.doors_open_at <= self.starts_at < self.ends_at:
            raise ValueError("times must satisfy doors_open_at <= starts_at < ends_at")
        if self.ends_at - self.doors_open_at > timedelta(days=7):
            raise ValueError("an event may last at most 7 days")
        return self


class SecurityEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    venue: dict[str, Any]
    doors_open_at: UtcDatetime
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    ring_radii_m: list[float]
    revisit_s: float
    drones: int
    zone_id: int | None
    plan: dict[str, Any]
    created_by: str
    created_at: UtcDatetime
    assigned: list[int] = PydField(default_factory=list)
    state: str = "planned"
    started_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    exemptions: list[ZoneExemptionRead] = PydField(default_factory=list)
