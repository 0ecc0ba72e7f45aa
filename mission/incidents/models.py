"""Incidents as stored and exchanged: where, how urgent, what, and every lifecycle timestamp."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow


class IncidentState(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


S = IncidentState

# to-state -> states it may be entered from. Unassigning (back to new) happens when a launch fails.
ALLOWED_FROM: dict[IncidentState, frozenset[IncidentState]] = {
    S.NEW: frozenset({S.ASSIGNED, S.EN_ROUTE, S.ON_SCENE}),  # on scene: left for its reserve, no relief
    S.ASSIGNED: frozenset({S.NEW}),
    S.EN_ROUTE: frozenset({S.ASSIGNED}),
    S.ON_SCENE: frozenset({S.EN_ROUTE}),
    S.CLOSED: frozenset({S.NEW, S.ASSIGNED, S.EN_ROUTE, S.ON_SCENE}),
}

# The column each state's first entry is stamped in.
STAMP_COLUMN: dict[IncidentState, str] = {
    S.ASSIGNED: "assigned_at",
    S.EN_ROUTE: "en_route_at",
    S.ON_SCENE: "on_scene_at",
    S.CLOSED: "closed_at",
}


class IncidentSource(StrEnum):
    API = "api"
    PANEL = "panel"
    MQTT = "mqtt"


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    priority: int = Field(default=3, index=True)
    lat: float
    lon: float
    notes: str = Field(default="", max_length=2000)
    source: str = Field(default="api", max_length=128)
    channel: str = Field(default="api", max_length=16)
    ref: str | None = Field(default=None, max_length=128)
    state: str = Field(default=IncidentState.NEW.value, max_length=16, index=True)
    overhead_s: float = Field(default=300.0)
    alt_m: float = Field(default=60.0)
    required_capabilities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    vehicle_id: int | None = Field(default=None, foreign_key="vehicles.id", index=True)
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    close_reason: str = Field(default="", max_length=500)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    assigned_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    airborne_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    en_route_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    on_scene_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class IncidentEvent(SQLModel, table=True):
    """Every change of an incident, with who made it and when; never updated."""

    __tablename__ = "incident_events"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    kind: str = Field(
        max_length=32
    )  # created, assigned, airborne, en_route, on_scene, closed, unassigned, ...
    actor: str = Field(default="", max_length=64)
    vehicle_id: int | None = Field(default=None)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


Kind = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_.\-]+$")]


class IncidentCreate(BaseModel):
    """An incident as the API and the panel take it (1 = most urgent, 5 = least)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lat: float = PydField(ge=-90, le=90, allow_inf_nan=False)
    lon: float = PydField(ge=-180, le=180, allow_inf_nan=False)
    priority: int = PydField(default=3, ge=1, le=5)
    kind: Kind
    notes: str = PydField(default="", max_length=2000)
    overhead_s: float = PydField(default=300.0, ge=0, le=6 * 3600, description="time to stay overhead")
    alt_m: float = PydField(
        default=60.0, gt=0, le=500, description="orbit altitude above home (the gate's band applies)"
    )
    required_capabilities: list[str] = PydField(default_factory=list, max_length=8)
    source: str = PydField(default="api", min_length=1, max_length=128)
    ref: str | None = PydField(default=None, max_length=128)
    auto_dispatch: bool = PydField(default=True, description="choose and launch a vehicle right away")


class IncidentClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = PydField(default="resolved", max_length=500)


class IncidentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    at: UtcDatetime
    kind: str
    actor: str
    vehicle_id: int | None
    details: dict[str, Any]


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    priority: int
    lat: float
    lon: float
    notes: str
    source: str
    channel: str
    ref: str | None
    state: IncidentState
    overhead_s: float
    alt_m: float
    required_capabilities: list[str]
    vehicle_id: int | None
    decision: dict[str, Any] | None
    close_reason: str
    created_by: str
    created_at: UtcDatetime
    assigned_at: UtcDatetime | None
    airborne_at: UtcDatetime | None
    en_route_at: UtcDatetime | None
    on_scene_at: UtcDatetime | None
    closed_at: UtcDatetime | None
