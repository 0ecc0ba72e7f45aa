"""Who holds each vehicle."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from mission.missions.models import utcnow


class VehicleControl(SQLModel, table=True):
    """The pilot currently holding a vehicle (one row per held vehicle)."""

    __tablename__ = "vehicle_control"

    vehicle_id: int = Field(primary_key=True, foreign_key="vehicles.id", ondelete="CASCADE")
    holder: str = Field(max_length=100)
    since: datetime = Field(default_factory=utcnow)


class ControlRead(BaseModel):
    """Control of a vehicle as the API shows it; ``holder`` is None when nobody holds it."""

    model_config = ConfigDict(from_attributes=True)

    vehicle_id: int
    holder: str | None
    since: datetime | None


class HandoffRequest(BaseModel):
    """Body of POST vehicles/{id}/control/handoff."""

    model_config = ConfigDict(extra="forbid")

    to_username: str = PydField(min_length=1, max_length=100)
