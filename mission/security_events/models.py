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
