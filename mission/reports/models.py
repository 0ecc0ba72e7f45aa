"""Sorties: each take-off to landing of a vehicle with its charge at both ends, as the vehicle reported it.

Whatever flew the vehicle (a flight, an uploaded mission, a pilot, PX4's own return), a sortie is cut from
the telemetry's ``in_air`` edge, so the battery report counts charge really consumed, not sorties.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


class Sortie(SQLModel, table=True):
    """One take-off to landing; ``landed_at`` is None while the vehicle is still in the air."""

    __tablename__ = "sorties"

    id: int | None = Field(default=None, primary_key=True)
    vehicle_id: int = Field(foreign_key="vehicles.id", index=True)
    took_off_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    start_pct: float | None = None  # the charge on the ground just before take-off (or the first reading)
    landed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    end_pct: float | None = None  # the charge when it was seen landed

    @property
    def used_pct(self) -> float | None:
        """Charge consumed, in points of 100 %; None while in the air or when a reading is missing."""
        if self.start_pct is None or self.end_pct is None:
            return None
        return max(0.0, self.start_pct - self.end_pct)
