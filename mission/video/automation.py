"""Video that follows dispatch: record from assignment, gimbal on the scene on arrival, stop at close.

Driven only by the telemetry hub's incident events, so dispatch knows nothing of video:
``incident.assigned`` / ``incident.relief`` start an evidence recording of that vehicle for the incident,
``incident.on_scene`` / ``incident.relieved`` point its gimbal at the incident, ``incident.unassigned`` and
``incident.closed`` stop the incident's recordings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mission.errors import SkywardenError
from mission.incidents.models import Incident
from mission.telemetry.events import Event
from mission.telemetry.hub import SubscriptionClosed, TelemetryHub

log = logging.getLogger(__name__)
ACTOR = "system:video"
START = frozenset({"incident.assigned", "incident.relief"})
POINT = frozenset({"incident.on_scene", "incident.relieved"})
STOP = frozenset({"incident.unassigned", "incident.closed"})


class Recorders(Protocol):
    """What the automation needs of the video service."""

    async def start_recording(
        self, vehicle_id: int, *, actor: str, reason: str, incident_id: int | None
    ) -> object: ...
    async def stop_incident_recordings(
        self, incident_id: int, *, actor: str, vehicle_id: int | None = None
    ) -> list[int]: ...
    async def point_at_incident(self, vehicle_id: int, *, incident: Incident, actor: str) -> None: ...


class DispatchVideo:
    """Consumes incident events; ``run`` until cancelled."""

    def __init__(
        self, *, engine: Engine, hub: TelemetryHub, video: Recorders, record: bool, point: bool
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._video = video
        self._record = record
        self._point = point

    async def run(self) -> None:
        with self._hub.subscribe(kinds=["incident"], name="video:dispatch") as sub:
            while True:
                try:
                    delivery = await sub.next()
                except SubscriptionClosed:
                    return
                for record in delivery.events:
                    try:
                        await self.handle(record.event)
                    except SkywardenError as err:  # no video for this vehicle: said in its status
                        log.warning("video for %s: %s", record.event.kind, err)
                    except Exception:
                        log.exception("video automation failed on %s", record.event.kind)

    async def handle(self, event: Event) -> None:
        """React to one incident event."""
        incident_id = event.data.get("incident_id")
        vid = event.vehicle_id
        if not isinstance(incident_id, int):
            return
        if event.kind in START and vid is not None and self._record:
            await self._video.start_recording(vid, actor=ACTOR, reason="dispatch", incident_id=incident_id)
        elif event.kind in POINT and vid is not None and self._point:
            incident = await asyncio.to_thread(self._incident, incident_id)
            if incident is not None:
                await self._video.point_at_incident(vid, incident=incident, actor=ACTOR)
        elif event.kind in STOP:
            only = vid if event.kind == "incident.unassigned" else None
            await self._video.stop_incident_recordings(incident_id, actor=ACTOR, vehicle_id=only)

    def _incident(self, incident_id: int) -> Incident | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(Incident, incident_id)
