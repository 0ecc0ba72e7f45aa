"""Patrols with cron schedules, their runs (one row per scheduled time, unique) and coverage gaps."""

from __future__ import annotations

import re
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from flightplans.errors import PlanningError
from mission.audit.clock import UtcDatetime, utcnow
from mission.missions.models import PlanSpec
from mission.planning import _parse_geometry, parse_params

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class RunStatus(StrEnum):
    CLAIMED = "claimed"  # the row is committed; the launch is under way
    LAUNCHED = "launched"
    SKIPPED = "skipped"  # no fit vehicle, outside the window, ...: ``reason`` says why
    FAILED = "failed"  # the launch itself failed
    PREEMPTED = "preempted"  # its vehicle was pulled to an incident
    COMPLETED = "completed"


class Patrol(SQLModel, table=True):
    __tablename__ = "patrols"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # {kind, geometry, params}
    cron: str = Field(max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    window_start: str | None = Field(default=None, max_length=5)  # "HH:MM" local time
    window_end: str | None = Field(default=None, max_length=5)
    required_capabilities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    estimated_duration_s: float = Field(default=900.0)
    enabled: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    vehicle_id: int | None = Field(default=None)  # fly only this vehicle; None = any fit vehicle
    dock: str | None = Field(default=None, max_length=64)  # or any fit vehicle at this dock


class PatrolRun(SQLModel, table=True):
    """One scheduled occurrence; the unique (patrol_id, scheduled_for) row is the launch claim."""

    __tablename__ = "patrol_runs"
    __table_args__ = (UniqueConstraint("patrol_id", "scheduled_for", name="uq_patrol_run_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    patrol_id: int = Field(foreign_key="patrols.id", index=True)
    scheduled_for: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    status: str = Field(default=RunStatus.CLAIMED.value, max_length=16, index=True)
    reason: str = Field(default="", max_length=500)
    vehicle_id: int | None = Field(default=None, index=True)
    mission_id: int | None = Field(default=None)
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    launched_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CoverageGap(SQLModel, table=True):
    """A patrol interrupted for an incident: what was left undone and what became of it."""

    __tablename__ = "coverage_gaps"

    id: int | None = Field(default=None, primary_key=True)
    patrol_run_id: int | None = Field(default=None, foreign_key="patrol_runs.id", index=True)
    incident_id: int | None = Field(default=None, index=True)
    vehicle_id: int
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    remaining: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    resolution: str = Field(default="open", max_length=200)  # backfilled by vehicle N / resume later / none


def check_cron(expr: str) -> str:
    """``expr`` if croniter accepts it, else ValueError naming it."""
    if not croniter.is_valid(expr):
        raise ValueError(f"cron {expr!r} is not a valid 5-field cron expression")
    return expr


def check_hhmm(value: str | None) -> str | None:
    if value is not None and not _HHMM.match(value):
        raise ValueError(f"time {value!r} must be HH:MM (24 h)")
    return value


def check_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as missions take it (kind, GeoJSON geometry, typed params); ValueError names what is wrong."""
    try:
        spec = PlanSpec.model_validate(plan)
    except ValidationError as err:
        problems = "; ".join(
            f"plan.{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(problems) from None
    try:
        parse_params(spec.kind, spec.params)
        _parse_geometry(spec.kind, spec.geometry)
    except PlanningError as err:
        raise ValueError(f"plan: {err}") from None
    return spec.model_dump()


def parse_hhmm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


class PatrolCreate(BaseModel):
    """A patrol: a plan of any kind, when it flies (cron, local time window), what it needs."""

    model_config = ConfigDict(extra="forbid")

    name: str = PydField(min_length=1, max_length=100)
    plan: dict[str, Any] = PydField(description="{kind, geometry (GeoJSON), params}, as missions take it")
    cron: str = PydField(examples=["0 */2 * * *"])
    timezone: str = "UTC"
    window_start: str | None = PydField(default=None, examples=["20:00"])
    window_end: str | None = PydField(default=None, examples=["06:00"])
    required_capabilities: list[str] = PydField(default_factory=list, max_length=8)
    estimated_duration_s: float = PydField(default=900.0, gt=0, le=86_400)
    enabled: bool = True
    vehicle_id: int | None = PydField(default=None, ge=1, description="fly only this vehicle")
    dock: str | None = PydField(
        default=None, min_length=1, max_length=64, description="any vehicle at this dock"
    )

    _cron = field_validator("cron")(classmethod(lambda cls, v: check_cron(v)))
    _hhmm = field_validator("window_start", "window_end")(classmethod(lambda cls, v: check_hhmm(v)))

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
            raise ValueError(f"timezone {value[:64]!r} is unknown") from exc
        return value

    @field_validator("plan")
    @classmethod
    def _plan(cls, plan: dict[str, Any]) -> dict[str, Any]:
        return check_plan(plan)

    @model_validator(mode="after")
    def _window(self) -> PatrolCreate:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("window_start and window_end go together")
        if self.vehicle_id is not None and self.dock is not None:
            raise ValueError("give a vehicle_id or a dock, not both")
        return self


class PatrolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    plan: dict[str, Any]
    cron: str
    timezone: str
    window_start: str | None
    window_end: str | None
    required_capabilities: list[str]
    estimated_duration_s: float
    enabled: bool
    created_at: UtcDatetime
    vehicle_id: int | None = None
    dock: str | None = None


class PatrolRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patrol_id: int
    scheduled_for: UtcDatetime
    status: RunStatus
    reason: str
    vehicle_id: int | None
    mission_id: int | None
    claimed_at: UtcDatetime
    launched_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class CoverageGapRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patrol_run_id: int | None
    incident_id: int | None
    vehicle_id: int
    started_at: UtcDatetime
    ended_at: UtcDatetime | None
    remaining: dict[str, Any]
    resolution: str
