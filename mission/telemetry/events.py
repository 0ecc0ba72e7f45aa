"""Live events that the service publishes to operators (websocket, MQTT) as they happen.

Mission transitions, failsafes, incidents, payload use and link changes are all ``Event``s. The durable
record of each lives in its own table (mission events, audit log); this is the transport form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "mission.transition", "vehicle.failsafe", "incident.created", "payload.used", "link.down"
    data: dict[str, Any] = field(default_factory=dict)
    vehicle_id: int | None = None
    mission_id: int | None = None
    time: float = field(default_factory=time.time)


class EventSink(Protocol):
    """Anything that takes live events (the telemetry hub)."""

    def emit(self, event: Event) -> None: ...
