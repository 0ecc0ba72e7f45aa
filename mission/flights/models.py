"""Flights: every vehicle movement that is not an uploaded mission, as a persisted record with its legs.

A dispatch to a scene, a relief, a routed return home and a pilot's direct command are each a ``Flight``:
written (and audited) before the vehicle is commanded, flown leg by leg by the one executor, and picked up
again after a restart. A vehicle has at most one open (pending or active) flight; a new one supersedes it
in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime, Index, text
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow


class FlightPurpose(StrEnum):
    DISPATCH = "dispatch"  # to an incident, then overwatch
    RELIEF = "relief"  # to take over an incident's overwatch
    RETURN = "return"  # home along a routed path, then land
    MANUAL = "manual"  # a pilot's direct command
    EVENT = "event"  # a large event's sweep, ring lap, overwatch post or relief
    CORDON = "cordon"  # a cordon station: fly there and hold, looking at the road


class FlightState(StrEnum):
    PENDING = "pending"  # recorded; nothing sent yet
    ACTIVE = "active"  # the executor is flying it
    COMPLETED = "completed"  # every leg done (a return: landed)
    SUPERSEDED = "superseded"  # another flight took the vehicle (closing, relief, a pilot's command)
    HANDED_OVER = "handed_over"  # a pilot took control
    FAILED = "failed"  # could not be flown (refused, link lost, vehicle did not take off)
    ABORTED = "aborted"  # stopped by an operator


OPEN_STATES = (FlightState.PENDING, FlightState.ACTIVE)
ENDED_STATES = frozenset(set(FlightState) - set(OPEN_STATES))


class LegKind(StrEnum):
    TAKEOFF = "takeoff"  # arm and climb to alt_m (done at climb_fraction of it)
    GOTO = "goto"  # fly to a point (done within arrive_within_m)
    ORBIT = "orbit"  # circle a point: until the flight ends, or for dwell_s
    HOLD = "hold"  # hover where it is: until the flight ends, or for dwell_s
    RTL = "rtl"  # PX4 return-to-launch (done when landed and disarmed)
    LAND = "land"  # land where it is (done when landed)


class Leg(BaseModel):
    """One step of a flight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LegKind
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    radius_m: float | None = None
    speed_m_s: float | None = None
    clockwise: bool = True
    dwell_s: float | None = None  # orbit/hold: None = until the flight ends
    yaw_deg: float | None = None  # goto: the heading to hold once there (a cordon station faces its road)
    tag: Literal["scene", "route", "home", "station", ""] = ""  # what reaching it means to the requester

    @property
    def open_ended(self) -> bool:
        return self.kind in (LegKind.ORBIT, LegKind.HOLD) and self.dwell_s is None


class Flight(SQLModel, table=True):
    """One flight of one vehicle, its legs and how far it got."""

    __tablename__ = "flights"
    __table_args__ = (
        # At most one open flight per vehicle: two instances or two requests cannot both fly it.
        Index(
            "ux_flights_open_vehicle",
            "vehicle_id",
            unique=True,
            sqlite_where=text("state IN ('pending', 'active')"),
            postgresql_where=text("state IN ('pending', 'active')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    vehicle_id: int = Field(foreign_key="vehicles.id", index=True)
    purpose: str = Field(max_length=16)
    state: str = Field(default=FlightState.PENDING.value, max_length=16, index=True)
    legs: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    leg_index: int = 0
    airborne: bool = False  # the vehicle has been seen in the air on this flight
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    mission_id: int | None = Field(default=None, foreign_key="missions.id")
    relieves_vehicle_id: int | None = Field(default=None, foreign_key="vehicles.id")
    requested_by: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)
    outcome: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))

    def typed_legs(self) -> list[Leg]:
        return [Leg.model_validate(leg) for leg in self.legs]


class FlightRead(BaseModel):
    """A flight as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    vehicle_id: int
    purpose: str
    state: str
    legs: list[dict[str, Any]]
    leg_index: int
    airborne: bool
    incident_id: int | None
    mission_id: int | None
    relieves_vehicle_id: int | None
    requested_by: str
    reason: str
    outcome: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    ended_at: UtcDatetime | None = PydField(default=None)
