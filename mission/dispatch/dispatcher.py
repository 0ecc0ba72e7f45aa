"""The Dispatcher: incident intake and the public face of dispatch, composed of parts a newcomer can find.

- ``candidates``: the fleet as candidates, ranked by true arrival time in the gate's airspace;
- ``orders``: decisions become persisted flights of the FlightExecutor; the incident follows the flight;
- ``overwatch``: closing incidents whose time is up, reliefs before the vehicle on scene must leave;
- ``backfill``: a patrol pulled to an incident leaves a coverage gap, flown by another drone or resumed.

Nothing here flies a vehicle from its own loop: every movement is a flight of the executor, judged by the
gate and recovered after a restart; the Dispatcher holds no state a restart could lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.audit import service as audit
from mission.db import session_scope
from mission.dispatch.backfill import Backfill, MissionControl
from mission.dispatch.candidates import Candidates
from mission.dispatch.config import DispatchConfig
from mission.dispatch.energy import CALM, Wind
from mission.dispatch.fleet_view import DockLedger, FleetReader
from mission.dispatch.orders import ACTOR, FlightOrders, decision_json
from mission.dispatch.overwatch import Overwatch
from mission.dispatch.ranking import DispatchDecision, DispatchRequest, VehicleState
from mission.errors import InvalidTransition, SkywardenError
from mission.flights import service as flights
from mission.flights.executor import FlightExecutor
from mission.flights.models import Flight
from mission.incidents import service as incidents
from mission.incidents.models import Incident, IncidentCreate, IncidentEvent, IncidentSource, IncidentState
from mission.safety.gate import Asker
from mission.telemetry.events import Event, EventSink
from mission.telemetry.intake import IncidentIn

log = logging.getLogger(__name__)

__all__ = ["ACTOR", "DispatchConfig", "Dispatcher", "decision_json"]


class Dispatcher:
    """Incident dispatch for the runtime; also the IncidentSink of the MQTT intake."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: FleetReader,
        hub: EventSink,
        executor: FlightExecutor,
        missions: MissionControl,
        config: DispatchConfig | None = None,
        wind: Wind = CALM,
    ) -> None:
        self._engine = engine
        self._hub = hub
        self.config = config or DispatchConfig()
        self.candidates = Candidates(
            engine=engine, fleet=fleet, gate=executor.gate, config=self.config, wind=wind
        )
        self.backfill = Backfill(
            engine=engine,
            hub=hub,
            commander=executor.commander,
            missions=missions,
            candidates=self.candidates,
        )
        self.orders = FlightOrders(
            engine=engine,
            hub=hub,
            executor=executor,
            candidates=self.candidates,
            backfill=self.backfill,
            config=self.config,
        )
        self.overwatch = Overwatch(
            engine=engine,
            hub=hub,
            candidates=self.candidates,
            orders=self.orders,
            config=self.config,
            close=self.close,
        )
        self._loop_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Dispatcher:
        if self.leads_here:
            await self._lead()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._unlead()
        await self.backfill.aclose()

    # Several instances (mission.cluster) set ``leads_here`` False and run ``leading()`` on the one leader:
    # incident reconciliation and the overwatch/relief loop are singletons.
    leads_here = True

    @contextlib.asynccontextmanager
    async def leading(self) -> AsyncIterator[None]:
        """Reconcile incidents and run the overwatch/relief loop while this instance leads."""
        await self._lead()
        try:
            yield
        finally:
            await self._unlead()

    async def _lead(self) -> None:
        await self.reconcile()
        self._loop_task = asyncio.create_task(self.overwatch.run(), name="dispatch:overwatch")

    async def _unlead(self) -> None:
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- what the API reads ---------------------------------------------------------------------------------

    @property
    def wind(self) -> Wind:
        return self.candidates.wind

    @wind.setter
    def wind(self, value: Wind) -> None:
        self.candidates.wind = value

    @property
    def ledger(self) -> DockLedger:
        return self.candidates.ledger

    @property
    def takeoff_ack_s(self) -> list[float]:
        return self.orders.takeoff_ack_s

    def states(self) -> list[VehicleState]:
        return self.candidates.states()

    def decide(self, request: DispatchRequest) -> DispatchDecision:
        return self.candidates.decide(request)

    def preview(self, incident_id: int) -> DispatchDecision:
        return self.candidates.preview(incident_id)

    async def overwatch_tick(self) -> None:
        await self.overwatch.tick()

    # -- intake ---------------------------------------------------------------------------------------------

    async def submit(self, incident: IncidentIn, *, actor: str) -> int:
        """IncidentSink: an incident from another system (MQTT), run as the mapped skywarden user.

        An incident its source already reported under the same ``ref`` is taken once: a redelivery (QoS 1,
        or a shared subscription handing the message to another instance) answers with the first one's id.
        """
        if incident.ref:
            with Session(self._engine) as session:
                first = session.exec(
                    select(Incident.id).where(
                        col(Incident.channel) == IncidentSource.MQTT.value,
                        col(Incident.source) == incident.source,
                        col(Incident.ref) == incident.ref,
                    )
                ).first()
            if first is not None:
                log.info("incident %s/%s already taken as %s", incident.source, incident.ref, first)
                return int(first)
        data = IncidentCreate(
            lat=incident.location.lat,
            lon=incident.location.lon,
            priority=incident.priority,
            kind=incident.kind,
            notes=incident.notes,
            source=incident.source,
            ref=incident.ref,
            auto_dispatch=self.config.mqtt_auto_dispatch,
        )
        return await self.create(data=data, actor=actor, channel=IncidentSource.MQTT)

    async def create(self, *, data: IncidentCreate, actor: str, channel: IncidentSource) -> int:
        """Store a new incident (audited, announced) and, when asked, dispatch it at once."""
        t0 = time.monotonic()
        self.candidates.check_altitude(
            DispatchRequest(data.lat, data.lon, overhead_s=data.overhead_s, alt_m=data.alt_m)
        )
        with session_scope(self._engine) as session:
            row = incidents.create(session=session, data=data, actor=actor, channel=channel)
            assert row.id is not None
            incident_id = row.id
            audit.record(
                session=session,
                actor=actor,
                action="incident.create",
                target=f"incident:{incident_id}",
                details={
                    "kind": data.kind,
                    "priority": data.priority,
                    "lat": data.lat,
                    "lon": data.lon,
                    "channel": channel.value,
                },
            )
        self._hub.emit(
            Event(
                kind="incident.created",
                data={
                    "incident_id": incident_id,
                    "kind": data.kind,
                    "priority": data.priority,
                    "lat": data.lat,
                    "lon": data.lon,
                },
            )
        )
        if data.auto_dispatch:
            await self.dispatch(incident_id, actor=actor, requested_at=t0)
        return incident_id

    # -- dispatch, launch, close ----------------------------------------------------------------------------

    async def dispatch(
        self,
        incident_id: int,
        *,
        actor: str,
        launch: bool | None = None,
        requested_at: float | None = None,
        exclude: frozenset[int] = frozenset(),
    ) -> DispatchDecision:
        """Choose and assign the first-arriving fit vehicle; launch it per policy (or ``launch``)."""
        return await self.orders.dispatch(
            incident_id, actor=actor, launch=launch, requested_at=requested_at, exclude=exclude
        )

    async def launch(self, incident_id: int, *, asker: Asker) -> Flight:
        """Fly an assigned incident's vehicle now: the operator's launch click."""
        with session_scope(self._engine) as session:
            audit.record(
                session=session,
                actor=asker.name,
                action="incident.launch",
                target=f"incident:{incident_id}",
                details={},
            )
        return await self.orders.launch(incident_id, asker=asker)

    async def close(self, incident_id: int, *, actor: str, reason: str = "resolved") -> Incident:
        """Close an incident; its vehicle (and any relief) flies home."""
        with session_scope(self._engine) as session:
            incident = incidents.transition(
                session=session,
                incident_id=incident_id,
                to=IncidentState.CLOSED,
                actor=actor,
                details={"reason": reason},
            )
            incident.close_reason = reason[:500]
            session.add(incident)
            audit.record(
                session=session,
                actor=actor,
                action="incident.close",
                target=f"incident:{incident_id}",
                details={"reason": reason},
            )
            serving = [
                f.vehicle_id for f in flights.open_for_incident(session=session, incident_id=incident_id)
            ]
            if incident.vehicle_id is not None:
                serving.append(incident.vehicle_id)  # a pilot may have taken it off its flight
        for vid in dict.fromkeys(serving):
            await self.orders.send_home(vid, incident_id=incident_id, reason=f"incident closed: {reason}")
        self._hub.emit(
            Event(
                kind="incident.closed",
                vehicle_id=incident.vehicle_id,
                data={"incident_id": incident_id, "reason": reason},
            )
        )
        return incident

    # -- restart --------------------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """After a (re)start: an open incident whose vehicle flies for it no longer is given out again.

        The executor recovers the flights themselves; what can be left over is an incident assigned to be
        launched (or en route) whose flight never started or ended while nobody listened.
        """
        with Session(self._engine) as session:
            rows = session.exec(
                select(Incident).where(
                    col(Incident.state).in_(
                        [
                            IncidentState.ASSIGNED.value,
                            IncidentState.EN_ROUTE.value,
                            IncidentState.ON_SCENE.value,
                        ]
                    )
                )
            ).all()
            stale: list[tuple[int, int]] = []
            for incident in rows:
                assert incident.id is not None
                if incident.vehicle_id is None:
                    continue
                flying = flights.open_for_vehicle(session=session, vehicle_id=incident.vehicle_id)
                if flying is not None and flying.incident_id == incident.id:
                    continue
                launched = session.exec(
                    select(IncidentEvent).where(
                        col(IncidentEvent.incident_id) == incident.id, col(IncidentEvent.kind) == "launch"
                    )
                ).first()
                if IncidentState(incident.state) is IncidentState.ASSIGNED and launched is None:
                    continue  # waiting for an operator's launch click
                stale.append((incident.id, incident.vehicle_id))
        for incident_id, vid in stale:
            log.warning(
                "incident %s: vehicle %s no longer flies for it after a restart; redispatching",
                incident_id,
                vid,
            )
            with contextlib.suppress(InvalidTransition):
                await self._unassign_stale(incident_id, vid)

    async def _unassign_stale(self, incident_id: int, vid: int) -> None:
        with session_scope(self._engine) as session:
            incidents.transition(
                session=session,
                incident_id=incident_id,
                to=IncidentState.NEW,
                actor="system:recovery",
                details={"vehicle_id": vid, "error": "its flight was not running after a restart"},
            )
        self._hub.emit(Event(kind="incident.unassigned", vehicle_id=vid, data={"incident_id": incident_id}))
        with contextlib.suppress(SkywardenError):
            await self.dispatch(incident_id, actor="system:recovery")
