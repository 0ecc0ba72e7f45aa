"""Zones stored and exchanged: a polygon (GeoJSON lon/lat) or a circle, an altitude band, a time window."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField
from shapely.geometry import Polygon
from shapely.validation import explain_validity
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, as_utc, utcnow
from mission.audit.fields import PrintableStr

Longitude = Annotated[float, PydField(ge=-180, le=180)]
Latitude = Annotated[float, PydField(ge=-90, le=90)]


class ZoneKind(StrEnum):
    patrol = "patrol"
    no_fly = "no_fly"
    event = "event"


class PolygonShape(BaseModel):
    """A GeoJSON Polygon: rings of [lon, lat]; the first ring is the outline, the rest are holes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["Polygon"]
    coordinates: list[list[tuple[Longitude, Latitude]]] = PydField(min_length=1)

    @field_validator("coordinates")
    @classmethod
    def _valid_rings(cls, rings: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        closed = []
        for i, ring in enumerate(rings):
            pts = list(ring)
            if pts and pts[0] != pts[-1]:
                pts.append(pts[0])
            if len(set(pts)) < 3:
                raise ValueError(f"ring {i} needs at least 3 distinct [lon, lat] points")
            closed.append(pts)
        poly = Polygon(closed[0], closed[1:])
        if not poly.is_valid:
            raise ValueError(f"invalid polygon: {explain_validity(poly)}")
        return closed


class CircleShape(BaseModel):
    """A circle: ``center`` as [lon, lat] and a radius in metres."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["Circle"]
    center: tuple[Longitude, Latitude]
    radius_m: float = PydField(gt=0, le=100_000)


Shape = Annotated[PolygonShape | CircleShape, PydField(discriminator="type")]


class Zone(SQLModel, table=True):
    __tablename__ = "zones"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    kind: str = Field(max_length=16, index=True)
    shape: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    floor_m: float = Field(default=0.0)
    ceiling_m: float = Field(default=500.0)
    active_from: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    active_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    description: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ZoneCreate(BaseModel):
    """A zone as the API takes it; altitudes are metres above ground, the window is [from, until) in UTC."""

    model_config = ConfigDict(extra="forbid")

    name: PrintableStr = PydField(min_length=1, max_length=100)
    kind: ZoneKind
    shape: Shape
    floor_m: float = PydField(default=0.0, ge=-100, le=10_000)
    ceiling_m: float = PydField(default=500.0, gt=-100, le=20_000)
    active_from: datetime | None = None
    active_until: datetime | None = None
    description: PrintableStr = PydField(default="", max_length=500)

    @field_validator("active_from", "active_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    @model_validator(mode="after")
    def _bands(self) -> ZoneCreate:
        if self.ceiling_m <= self.floor_m:
            raise ValueError(f"ceiling_m ({self.ceiling_m}) must be above floor_m ({self.floor_m})")
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValueError("active_until must be after active_from")
        return self


class ZoneRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: ZoneKind
    shape: Shape
    floor_m: float
    ceiling_m: float
    active_from: UtcDatetime | None
    active_until: UtcDatetime | None
    description: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
