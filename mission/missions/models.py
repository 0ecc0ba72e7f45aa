"""Mission and MissionEvent tables, and their API shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from mission.missions.states import MissionState


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(UTC)


class Mission(SQLModel, table=True):
    """A plan assigned to one vehicle and its place in the lifecycle."""

    __tablename__ = "missions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    vehicle_id: int = Field(foreign_key="vehicles.id", index=True)
    state: str = Field(default=MissionState.DRAFT.value, index=True, max_length=20)
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Filled by validation: what will be uploaded and what the gate found.
    items: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    geofence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    path: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    metrics: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    violations: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    progress_current: int = 0
    progress_total: int = 0
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str | None = Field(default=None, max_length=500)


class MissionEvent(SQLModel, table=True):
    """One state transition of a mission: who moved it, why, and when."""

    __tablename__ = "mission_events"

    id: int | None = Field(default=None, primary_key=True)
    mission_id: int = Field(foreign_key="missions.id", index=True)
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    actor: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)
    at: datetime = Field(default_factory=utcnow)


class PlanSpec(BaseModel):
    """What to fly: a pattern kind over a WGS84 GeoJSON geometry, with its tuning parameters."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sweep", "perimeter", "corridor", "orbit", "rings", "route", "custom"]
    geometry: dict[str, Any] = PydField(description="GeoJSON geometry in WGS84 (lon, lat)")
    params: dict[str, Any] = PydField(default_factory=dict)


class MissionCreate(BaseModel):
    """Body of POST /missions."""

    model_config = ConfigDict(extra="forbid")

    name: str = PydField(min_length=1, max_length=200)
    vehicle_id: int = PydField(ge=1)
    plan: PlanSpec


class MissionRead(BaseModel):
    """A mission as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    vehicle_id: int
    state: str
    plan: dict[str, Any]
    items: list[dict[str, Any]] | None
    geofence: dict[str, Any] | None
    path: dict[str, Any] | None
    metrics: dict[str, Any] | None
    violations: list[dict[str, Any]] | None
    progress_current: int
    progress_total: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    reason: str | None


class MissionEventRead(BaseModel):
    """A transition as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    mission_id: int
    from_state: str
    to_state: str
    actor: str
    reason: str
    at: datetime
