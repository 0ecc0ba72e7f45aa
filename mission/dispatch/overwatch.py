"""Overwatch: close incidents whose time is up, relieve the vehicle on scene before its battery must leave.

One loop (``dispatch:overwatch``) reads everything it needs from the database (incidents on scene, their
open flights), so it holds no state a restart could lose. A vehicle whose leave time has come goes home
even when no relief can take over (the incident is then unassigned again, with a note); an incident whose
vehicle a pilot holds is left to the pilot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.errors import PlanningError
from mission.audit import service as audit
from mission.audit.clock import as_utc, utcnow
from mission.control import service as control
from mission.db import session_scope
from mission.dispatch.candidates import Candidates
from mission.dispatch.config import DispatchConfig
from mission.dispatch.orders import ACTOR, SERVICE, FlightOrders
from mission.dispatch.ranking import DispatchRequest, VehicleState
from mission.dispatch.relief import plan_relief, time_until_leave_s
from mission.errors import InvalidTransition, SkywardenError
from mission.flights import service as flights
from mission.flights.models import FlightPurpose
from mission.incidents import service as incidents
from mission.incidents.models import Incident, IncidentState
from mission.telemetry.events import Event, EventSink

log = logging.getLogger(__name__)

RELIEF_RETRY_WALL_S = 5.0  # after a relief could not be launched, the next try waits this long


class Overwatch:
    """The relief and closing loop over every incident on scene."""

    def __init__(
        self,
        *,
        engine: Engine,
        hub: EventSink,
        candidates: Candidates,
        orders: FlightOrders,
        config: DispatchConfig,
        close: Callable[..., Awaitable[object]],
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._candidates = candidates
        self._orders = orders
        self.config = config
        self._close = close
        self._relief_backoff: dict[int, float] = {}  # incident -> no new relief try before (monotonic)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except (SkywardenError, PlanningError) as err:
                log.warning("overwatch tick failed: %s", err)
            except Exception:
                log.exception("overwatch tick failed unexpectedly")
            await asyncio.sleep(self.config.overwatch_period_wall_s)

    def _on_scene(self) -> list[Incident]:
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Incident).where(col(Incident.state) == IncidentState.ON_SCENE.value)
                ).all()
            )

    async def tick(self) -> None:
        """One pass over the incidents on scene."""
        now = utcnow()
        states: list[VehicleState] | None = None
        tick_s = self.config.overwatch_period_wall_s * self.config.speed_factor
        for incident in self._on_scene():
            assert incident.id is not None
            vid = incident.vehicle_id
            with Session(self._engine) as session:
                if vid is not None and control.holder_of(session=session, vehicle_id=vid) is not None:
                    continue
                open_flights = flights.open_for_incident(session=session, incident_id=incident.id)
                leaving = vid is not None and any(
                    f.vehicle_id == vid and f.purpose == FlightPurpose.RETURN.value
                    for f in [flights.open_for_vehicle(session=session, vehicle_id=vid)]
                    if f is not None
                )
            relief_on_way = any(
                f.purpose == FlightPurpose.RELIEF.value and f.vehicle_id != vid for f in open_flights
            )
            on_scene_at = as_utc(incident.on_scene_at) if incident.on_scene_at else now
            elapsed_s = (now - on_scene_at).total_seconds() * self.config.speed_factor
            remaining_s = incident.overhead_s - elapsed_s
            if remaining_s <= 0:
                if self.config.close_after_overhead:
                    with contextlib.suppress(InvalidTransition):
                        await self._close(incident.id, actor=ACTOR, reason="overwatch time complete")
                continue
            if vid is None or leaving:
                continue
            states = states if states is not None else self._candidates.states()
            current = next((s for s in states if s.vehicle_id == vid), None)
            if current is None or not current.link_up:
                continue
            space = self._candidates.airspace(
                around=(incident.lat, incident.lon),
                alt_m=incident.alt_m,
                span_s=remaining_s,
                vehicle_id=vid,
            )
            try:
                if relief_on_way:
                    # A relief is on its way; the vehicle on scene still leaves when its reserve demands it.
                    leave_in_s = time_until_leave_s(
                        current,
                        scene_lat=incident.lat,
                        scene_lon=incident.lon,
                        airspace=space,
                        wind=self._candidates.wind,
                    )
                    if leave_in_s <= 0:
                        await self._leave_for_reserve(
                            incident, leave_in_s, "relief not on scene yet", unassign=False
                        )
                    continue
                plan = plan_relief(
                    current,
                    states,
                    scene_lat=incident.lat,
                    scene_lon=incident.lon,
                    remaining_overhead_s=remaining_s,
                    alt_m=incident.alt_m,
                    airspace=space,
                    wind=self._candidates.wind,
                    margin_s=self.config.relief_margin_s,
                )
            except PlanningError as err:
                log.warning("incident %s: relief planning failed: %s", incident.id, err)
                continue
            if plan.needs_relief and plan.relief is None and plan.leave_in_s <= tick_s:
                await self._leave_for_reserve(incident, plan.leave_in_s, plan.explanation, unassign=True)
                states = None
                with contextlib.suppress(SkywardenError, PlanningError):
                    await self._orders.dispatch(
                        incident.id, actor=ACTOR, exclude=frozenset({current.vehicle_id})
                    )
                continue
            horizon_s = tick_s * 2
            if not plan.needs_relief or plan.relief is None or (plan.launch_in_s or 0.0) > horizon_s:
                continue
            if time.monotonic() < self._relief_backoff.get(incident.id, 0.0):
                continue
            with session_scope(self._engine) as session:
                incidents.note(
                    session=session,
                    incident_id=incident.id,
                    kind="relief_dispatched",
                    actor=ACTOR,
                    details={
                        "vehicle_id": plan.relief.vehicle_id,
                        "explanation": plan.explanation,
                        "leave_in_s": round(plan.leave_in_s, 1),
                    },
                )
                audit.record(
                    session=session,
                    actor=ACTOR,
                    action="dispatch.relief_launch",
                    target=f"vehicle:{plan.relief.vehicle_id}",
                    details={
                        "incident_id": incident.id,
                        "relieves_vehicle_id": current.vehicle_id,
                        "explanation": plan.explanation,
                    },
                )
            self._hub.emit(
                Event(
                    kind="incident.relief",
                    vehicle_id=plan.relief.vehicle_id,
                    data={"incident_id": incident.id, "explanation": plan.explanation},
                )
            )
            states = None
            request = DispatchRequest(
                incident.lat, incident.lon, overhead_s=remaining_s, alt_m=incident.alt_m
            )
            try:
                await self._orders.fly(incident.id, plan.relief, request, asker=SERVICE, relief_for=vid)
            except (SkywardenError, PlanningError) as err:
                log.warning(
                    "incident %s: relief vehicle %s not launched: %s",
                    incident.id,
                    plan.relief.vehicle_id,
                    err,
                )
                with session_scope(self._engine) as session:
                    incidents.note(
                        session=session,
                        incident_id=incident.id,
                        kind="relief_failed",
                        actor=ACTOR,
                        details={"vehicle_id": plan.relief.vehicle_id, "error": str(err)[:300]},
                    )

    async def _leave_for_reserve(
        self, incident: Incident, leave_in_s: float, why: str, *, unassign: bool
    ) -> None:
        """The vehicle on scene must go home now to land with its reserve: note it, announce it, send it."""
        assert incident.id is not None and incident.vehicle_id is not None
        vid = incident.vehicle_id
        details = {"vehicle_id": vid, "leave_in_s": round(leave_in_s, 1), "explanation": why[:300]}
        with session_scope(self._engine) as session:
            incidents.note(
                session=session,
                incident_id=incident.id,
                kind="left_for_reserve",
                actor=ACTOR,
                details=details,
            )
            if unassign:
                incidents.transition(
                    session=session,
                    incident_id=incident.id,
                    to=IncidentState.NEW,
                    actor=ACTOR,
                    details={**details, "error": "vehicle left for its battery reserve; no relief"},
                )
        self._hub.emit(
            Event(kind="incident.uncovered", vehicle_id=vid, data={"incident_id": incident.id, **details})
        )
        log.warning("incident %s: vehicle %s leaves for its reserve: %s", incident.id, vid, why)
        await self._orders.send_home(vid, incident_id=incident.id, reason="battery reserve")
