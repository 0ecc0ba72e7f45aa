"""Incidents reported by other systems (MQTT intake): the validated boundary model and its sink."""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class IncidentLocation(BaseModel):
    """A WGS84 point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)


class IncidentIn(BaseModel):
    """An incident to respond to: where, how urgent (1 most .. 5 least), what, and who reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    location: IncidentLocation
    priority: int = Field(ge=1, le=5, strict=True)
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_.\-]+$")]
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""
    source: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    ref: Annotated[str, StringConstraints(max_length=128)] | None = None  # the reporter's own id, echoed back


class IncidentSink(Protocol):
    """Takes a validated incident into the domain (the dispatch service implements this)."""

    async def submit(self, incident: IncidentIn, *, actor: str) -> int:
        """Create the incident; returns its id. Raises a ``mission.errors`` error when it cannot be taken."""
        ...
