"""Cordons as stored: the scene, how the rings are sized, the stations and who mans them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow


class Cordon(SQLModel, table=True):
    """A cordon around a scene: its rings' radii, stations (with assignment and manning) and state."""

    __tablename__ = "cordons"

    id: int | None = Field(default=None, primary_key=True)
    lat: float
    lon: float
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    flee_speed_m_s: float
    elapsed_s: float  # since the incident when the cordon was started
    radii_m: list[float] = Field(sa_column=Column(JSON, nullable=False))
    fixed_radii: bool = False
    state: str = Field(default="active", max_length=16)  # active, ended
    stations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CordonCreate(BaseModel):
    """Start a cordon at a scene. Radii default to flee speed x elapsed time (inner), x1.6, x2.5."""

    model_config = ConfigDict(extra="forbid")

    lat: float = PydField(ge=-90, le=90)
    lon: float = PydField(ge=-180, le=180)
    incident_id: int | None = PydField(default=None, ge=1)
    flee_speed_m_s: float = PydField(default=2.5, gt=0, le=40, description="how fast a suspect may move")
    elapsed_s: float = PydField(default=120.0, ge=0, le=7200, description="since the incident")
    radii_m: list[float] | None = PydField(default=None, min_length=1, max_length=3)
    stations_per_ring: list[int] | None = PydField(default=None, min_length=1, max_length=3)
    alt_m: float = PydField(default=40.0, ge=10, le=120)

    @model_validator(mode="after")
    def _radii(self) -> CordonCreate:
        if self.radii_m is not None:
            if any(not 50 <= r <= 5000 for r in self.radii_m):
                raise ValueError("every ring radius must be within 50..5000 m")
            if sorted(self.radii_m) != self.radii_m or len(set(self.radii_m)) != len(self.radii_m):
                raise ValueError("ring radii must increase from the inner ring out")
        if self.stations_per_ring is not None and any(not 1 <= n <= 24 for n in self.stations_per_ring):
            raise ValueError("stations_per_ring: each ring has 1..24 stations")
        return self


class CordonRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lat: float
    lon: float
    incident_id: int | None
    flee_speed_m_s: float
    elapsed_s: float
    radii_m: list[float]
    fixed_radii: bool
    state: str
    stations: list[dict[str, Any]]
    created_by: str
    created_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    report: dict[str, Any] = PydField(default_factory=dict)
