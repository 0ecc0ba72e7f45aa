"""Command requests and their typed parameters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CommandName = Literal["arm", "takeoff", "hold", "goto", "orbit", "return", "land", "payload"]


class CommandRequest(BaseModel):
    """Body of POST /vehicles/{id}/commands."""

    model_config = ConfigDict(extra="forbid")

    command: CommandName
    params: dict[str, Any] = Field(default_factory=dict)


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TakeoffParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alt_m: float | None = Field(default=None, gt=1, le=120, description="climb to this height above home")


class GotoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = Field(gt=1, le=500, description="height above home")


class OrbitParams(GotoParams):
    radius_m: float = Field(default=50.0, gt=1, le=2000)
    speed_m_s: float = Field(default=5.0, gt=0, le=30)
    clockwise: bool = True


class LandParams(BaseModel):
    """Land where it is, or (with ``lat``/``lon``) fly there at ``alt_m`` first and land there."""

    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    alt_m: float = Field(default=30.0, gt=1, le=500, description="height above home on the way there")

    @model_validator(mode="after")
    def _both(self) -> LandParams:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("land here needs both lat and lon (or neither, to land where it is)")
        return self


class PayloadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, description="a payload mapped to an actuator on this vehicle (speaker, spotlight)"
    )
    on: bool = True


PARAMS: dict[str, type[BaseModel]] = {
    "arm": _NoParams,
    "takeoff": TakeoffParams,
    "hold": _NoParams,
    "goto": GotoParams,
    "orbit": OrbitParams,
    "return": _NoParams,
    "land": LandParams,
    "payload": PayloadParams,
}

# Commands that make a vehicle go somewhere or spend energy; return, land and hold are always allowed.
MOVING = frozenset({"arm", "takeoff", "goto", "orbit"})


class CommandResult(BaseModel):
    """What the vehicle was told."""

    vehicle_id: int
    command: CommandName
    params: dict[str, Any]
    status: Literal["done"] = "done"
    message: str
