"""Flight orders: a dispatch decision becomes a persisted flight of the executor; the incident follows it.

The order judges the flight with the gate, uploads its fence before anything else (a fence the vehicle
refuses keeps it on the ground), and hands the legs (take-off, the route around the zones, the scene, an
orbit there) to the FlightExecutor. From then on the incident changes with what the flight does: en route
when telemetry shows the vehicle in the air, on scene when it reaches the scene, unassigned (and given to
the next vehicle) when the flight fails before getting there. Every listener method is idempotent: after
a restart the executor repeats what it could not be sure was heard.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict
from typing import Any

from shapely.geometry import LineString, Point
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.items import Geofence
from mission.audit import service as audit
from mission.control import service as control
from mission.db import session_scope
from mission.dispatch.backfill import Backfill
from mission.dispatch.candidates import Candidates
from mission.dispatch.config import DispatchConfig
from mission.dispatch.ranking import Activity, CandidateEstimate, DispatchDecision, DispatchRequest
from mission.errors import InvalidTransition, SkywardenError, VehicleUnavailable
from mission.flights import commander as cmd
from mission.flights import service as flights
from mission.flights.executor import FlightExecutor
from mission.flights.models import Flight, FlightPurpose, FlightState, Leg, LegKind
from mission.incidents import service as incidents
from mission.incidents.models import Incident, IncidentEvent, IncidentState
from mission.planning import build_geofence
from mission.safety.gate import Action, Asker, FlightPath, GateRequest, PathPoint, nofly_from
from mission.telemetry.events import Event, EventSink

log = logging.getLogger(__name__)

ACTOR = "system:dispatch"
SERVICE = Asker(ACTOR)
OPEN_INCIDENT = (IncidentState.ASSIGNED, IncidentState.EN_ROUTE, IncidentState.ON_SCENE)


def decision_json(decision: DispatchDecision) -> dict[str, Any]:
    """The decision as stored on the incident and returned by the API (infinite ETAs as null)."""

    def cand(c: CandidateEstimate) -> dict[str, Any]:
        d = asdict(c)
        d["activity"] = c.activity.value
        d["route_latlon"] = [list(p) for p in c.route_latlon]
        d["required_wh"] = c.required_wh
        d["margin_wh"] = c.margin_wh
        for k, v in list(d.items()):
            if isinstance(v, float):
                d[k] = round(v, 2) if math.isfinite(v) else None
        return d

    return {
        "chosen_vehicle_id": decision.chosen.vehicle_id if decision.chosen else None,
        "explanation": decision.explanation,
        "candidates": [cand(c) for c in decision.candidates],
    }


class FlightOrders:
    """Dispatch and relief flights: ordered through the gate and the executor, heard back as they fly."""

    def __init__(
        self,
        *,
        engine: Engine,
        hub: EventSink,
        executor: FlightExecutor,
        candidates: Candidates,
        backfill: Backfill,
        config: DispatchConfig,
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._executor = executor
        self._candidates = candidates
        self._backfill = backfill
        self.config = config
        self.takeoff_ack_s: list[float] = []  # request -> take-off acknowledged, wall seconds
        self._requested_at: dict[int, float] = {}  # incident -> when it was asked for (monotonic)
        executor.add_listener(self, purposes=(FlightPurpose.DISPATCH, FlightPurpose.RELIEF))
        executor.before_first_leg(self._fence_flight, purposes=(FlightPurpose.DISPATCH, FlightPurpose.RELIEF))

    # -- ordering -------------------------------------------------------------------------------------------

    async def dispatch(
        self,
        incident_id: int,
        *,
        actor: str,
        launch: bool | None = None,
        requested_at: float | None = None,
        exclude: frozenset[int] = frozenset(),
    ) -> DispatchDecision:
        """Choose the first-arriving fit vehicle, assign it (committed), and fly it when it should launch."""
        self._requested_at[incident_id] = requested_at if requested_at is not None else time.monotonic()
        with Session(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if IncidentState(incident.state) is not IncidentState.NEW:
                raise InvalidTransition(
                    f"incident {incident_id} is {incident.state}; only a new incident can be dispatched",
                    code="dispatch.incident_only_new_incident",
                    params={"incident_id": incident_id, "state": incident.state},
                )
            request = self._candidates.request_for(incident)
            priority = incident.priority
            exclude = exclude | self._failed_vehicles(session, incident_id)
        states = [s for s in self._candidates.states() if s.vehicle_id not in exclude]
        decision = self._candidates.decide(request, states=states)
        stored = decision_json(decision)
        chosen = decision.chosen
        if chosen is None:
            with session_scope(self._engine) as session:
                incidents.record_decision(
                    session=session, incident_id=incident_id, decision=stored, actor=actor
                )
            self._hub.emit(
                Event(
                    kind="incident.unserved",
                    data={"incident_id": incident_id, "explanation": decision.explanation},
                )
            )
            return decision
        with session_scope(self._engine) as session:
            incidents.assign(
                session=session,
                incident_id=incident_id,
                vehicle_id=chosen.vehicle_id,
                decision=stored,
                actor=actor,
            )
            audit.record(
                session=session,
                actor=actor,
                action="incident.assign",
                target=f"incident:{incident_id}",
                details={
                    "vehicle_id": chosen.vehicle_id,
                    "eta_s": round(chosen.eta_s, 1),
                    "explanation": decision.explanation,
                },
            )
        self._hub.emit(
            Event(
                kind="incident.assigned",
                vehicle_id=chosen.vehicle_id,
                data={
                    "incident_id": incident_id,
                    "eta_s": round(chosen.eta_s, 1),
                    "explanation": decision.explanation,
                },
            )
        )
        if launch if launch is not None else self.config.launches(priority):
            try:
                await self.fly(incident_id, chosen, request, asker=SERVICE)
            except (SkywardenError, PlanningError) as err:
                log.warning(
                    "incident %s: vehicle %s could not be launched: %s", incident_id, chosen.vehicle_id, err
                )
                await self._unassign(incident_id, chosen.vehicle_id, str(err))
        return decision

    async def launch(self, incident_id: int, *, asker: Asker) -> Flight:
        """Fly an assigned (not yet launched) incident's vehicle now: the operator's launch click."""
        with Session(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if IncidentState(incident.state) is not IncidentState.ASSIGNED or incident.vehicle_id is None:
                raise InvalidTransition(
                    f"incident {incident_id} is {incident.state}; launch needs assigned",
                    code="dispatch.incident_launch_needs_assigned",
                    params={"incident_id": incident_id, "state": incident.state},
                )
            request = self._candidates.request_for(incident)
            vehicle_id = incident.vehicle_id
            running = flights.open_for_vehicle(session=session, vehicle_id=vehicle_id)
        if running is not None and running.incident_id == incident_id:
            return running
        state = next((s for s in self._candidates.states() if s.vehicle_id == vehicle_id), None)
        if state is None:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} is no longer registered",
                code="dispatch.vehicle_longer_registered",
                params={"vehicle_id": vehicle_id},
            )
        est = self._candidates.decide(request, states=[state])
        if est.chosen is None:
            raise VehicleUnavailable(
                f"vehicle {vehicle_id} cannot serve incident {incident_id}: {est.explanation}",
                code="dispatch.vehicle_cannot_serve_incident",
                params={"vehicle_id": vehicle_id, "incident_id": incident_id, "explanation": est.explanation},
            )
        self._requested_at.setdefault(incident_id, time.monotonic())
        return await self.fly(incident_id, est.chosen, request, asker=asker)

    async def fly(
        self,
        incident_id: int,
        chosen: CandidateEstimate,
        request: DispatchRequest,
        *,
        asker: Asker,
        relief_for: int | None = None,
    ) -> Flight:
        """Judge, fence and start the flight of ``chosen`` to the scene (a relief when ``relief_for``)."""
        vid = chosen.vehicle_id
        relief = relief_for is not None
        docked = chosen.activity is Activity.DOCKED
        legs = self._scene_legs(chosen, request, docked=docked)
        stay_s = self._stay_s(request)
        verdict = self._executor.judge(
            GateRequest(
                vehicle_id=vid,
                action=Action.RELIEF if relief else Action.DISPATCH,
                asker=asker,
                path=FlightPath(points=self._path_points(legs, stay_s=stay_s), returns_home=True),
                incident_id=incident_id,
            )
        )
        if not verdict.ok:
            self._executor.refuse(
                verdict, audit_action=f"dispatch.{'relief' if relief else 'flight'}.refused"
            )
        if chosen.preempts_patrol_run is not None or chosen.activity is Activity.PATROL:
            await self._backfill.preempt(vid, incident_id)
        with session_scope(self._engine) as session:
            incidents.note(
                session=session,
                incident_id=incident_id,
                kind="relief_launch" if relief else "launch",
                actor=asker.name,
                details={"vehicle_id": vid, "relieves_vehicle_id": relief_for},
            )
        # The fence of its last mission would stop it short: replace it, and before arming, so that a
        # fence the vehicle refuses keeps it on the ground.
        if self._executor.owns(vid):  # else its owner instance uploads it before flying (_fence_flight)
            fence = self._fence(vid, chosen, request, nofly=verdict.nofly)
            await self._executor.commander.send(
                vid, cmd.UploadGeofence(fence), actor=asker.name, refs=cmd.Refs(incident_id=incident_id)
            )
        flight = await self._executor.start(
            vehicle_id=vid,
            purpose=FlightPurpose.RELIEF if relief else FlightPurpose.DISPATCH,
            legs=legs,
            asker=asker,
            action=Action.RELIEF if relief else Action.DISPATCH,
            reason=f"incident {incident_id}" + (f", relieving vehicle {relief_for}" if relief else ""),
            incident_id=incident_id,
            relieves_vehicle_id=relief_for,
            verdict=verdict,
        )
        if not docked and not relief:
            # Already in the air: en route from now.
            await self.flight_airborne(flight)
        return flight

    def _scene_legs(self, chosen: CandidateEstimate, request: DispatchRequest, *, docked: bool) -> list[Leg]:
        """Take-off (from a dock), the route around the zones, the scene, and an orbit (or a hover) there."""
        alt = request.alt_m
        legs: list[Leg] = [Leg(kind=LegKind.TAKEOFF, alt_m=alt)] if docked else []
        route = list(chosen.route_latlon[1:-1])
        legs += [Leg(kind=LegKind.GOTO, lat=lat, lon=lon, alt_m=alt, tag="route") for lat, lon in route]
        legs.append(Leg(kind=LegKind.GOTO, lat=request.lat, lon=request.lon, alt_m=alt, tag="scene"))
        radius = self.config.orbit_radius_m
        space = self._candidates.airspace(
            around=(request.lat, request.lon),
            alt_m=alt,
            span_s=request.overhead_s,
            vehicle_id=chosen.vehicle_id,
        )
        ring = Point(0.0, 0.0).buffer(radius + space.margin_m)
        if any(ring.intersects(z) for _, z in space.zones_xy):
            legs.append(Leg(kind=LegKind.HOLD, tag="scene"))  # an orbit would touch a zone: hover over it
        else:
            legs.append(
                Leg(
                    kind=LegKind.ORBIT,
                    lat=request.lat,
                    lon=request.lon,
                    alt_m=alt,
                    radius_m=radius,
                    speed_m_s=self.config.orbit_speed_m_s,
                    tag="scene",
                )
            )
        return legs

    @staticmethod
    def _path_points(legs: list[Leg], *, stay_s: float) -> tuple[PathPoint, ...]:
        points = []
        for leg in legs:
            if leg.kind is LegKind.GOTO and leg.lat is not None and leg.lon is not None:
                points.append(PathPoint(leg.lat, leg.lon, leg.alt_m or 0.0))
        last = points[-1]
        orbit = next((leg for leg in legs if leg.kind is LegKind.ORBIT), None)
        points[-1] = PathPoint(
            last.lat,
            last.lon,
            last.alt_m,
            loiter_s=max(stay_s, 1.0),
            loiter_radius_m=orbit.radius_m or 0.0 if orbit is not None else 0.0,
        )
        return tuple(points)

    def _stay_s(self, request: DispatchRequest) -> float:
        """How long the gate judges the vehicle to stay over the scene: the overwatch, at most the shortest
        stay worth starting. Longer overwatches are held by the overwatch loop, which sends a relief and
        brings the vehicle home when its reserve demands (so the reserve is kept live, not planned)."""
        return min(request.overhead_s, self.config.min_overwatch_s)

    def _fence(
        self, vid: int, chosen: CandidateEstimate, request: DispatchRequest, *, nofly: tuple[Any, ...]
    ) -> Geofence:
        """The operating area of this flight (route, scene and home, grown) with the no-fly zones in it."""
        view = self._executor.view(vid)
        points = [(lon, lat) for lat, lon in chosen.route_latlon] or [(request.lon, request.lat)]
        path = LineString(points) if len(points) > 1 else Point(points[0])
        return build_geofence(
            path_wgs=path,
            home=view.home,
            frame=LocalFrame(request.lat, request.lon),
            zones=nofly
            or nofly_from(self._candidates.restrictions(span_s=request.overhead_s, vehicle_id=vid)),
            margin_m=self.config.fence_margin_m,
        )

    async def _fence_flight(self, flight: Flight) -> None:
        """Several instances: the owner uploads the geofence of a dispatch flight recorded elsewhere (its
        route from home over the legs' points to the scene), before arming, as ``fly`` does for its own."""
        legs = flight.typed_legs()
        points = [(leg.lat, leg.lon) for leg in legs if leg.lat is not None and leg.lon is not None]
        if not points:
            return
        view = self._executor.view(flight.vehicle_id)
        route = [view.home, *points]
        overhead_s = 300.0
        if flight.incident_id is not None:
            with Session(self._engine) as session:
                incident = session.get(Incident, flight.incident_id)
                if incident is not None:
                    overhead_s = incident.overhead_s
        scene_lat, scene_lon = points[-1]
        path = LineString([(lon, lat) for lat, lon in route])
        fence = build_geofence(
            path_wgs=path,
            home=view.home,
            frame=LocalFrame(scene_lat, scene_lon),
            zones=nofly_from(self._candidates.restrictions(span_s=overhead_s)),
            margin_m=self.config.fence_margin_m,
        )
        await self._executor.commander.send(
            flight.vehicle_id,
            cmd.UploadGeofence(fence),
            actor=flight.requested_by,
            refs=cmd.Refs(flight.id, incident_id=flight.incident_id),
        )

    # -- going home -----------------------------------------------------------------------------------------

    async def send_home(self, vid: int, *, incident_id: int | None, reason: str) -> None:
        """Bring a vehicle home after its incident (resuming its patrol if it was pulled off one).

        A pilot's vehicle is left to the pilot (noted on the incident).
        """
        with Session(self._engine) as session:
            holder = control.holder_of(session=session, vehicle_id=vid)
        if holder is not None:
            self._note(incident_id, "pilot_holds", {"vehicle_id": vid, "holder": holder, "skipped": reason})
            return
        try:
            if await self._backfill.resume_preempted(vid):
                return  # the resumed mission superseded the incident's flight
            await self._executor.send_home(vid, asker=SERVICE, reason=reason, incident_id=incident_id)
        except SkywardenError as err:
            log.error("vehicle %s: could not be sent home (%s): %s", vid, reason, err)

    # -- what the flights tell ------------------------------------------------------------------------------

    async def flight_airborne(self, flight: Flight) -> None:
        """In the air (telemetry says so): the incident is en route, airborne from now."""
        if flight.purpose != FlightPurpose.DISPATCH.value or flight.incident_id is None:
            return
        with session_scope(self._engine) as session:
            incident = incidents.get(session=session, incident_id=flight.incident_id)
            if (
                IncidentState(incident.state) is not IncidentState.ASSIGNED
                or incident.vehicle_id != flight.vehicle_id
            ):
                return
            incidents.mark_airborne(session=session, incident_id=flight.incident_id, actor=ACTOR)
            incidents.transition(
                session=session,
                incident_id=flight.incident_id,
                to=IncidentState.EN_ROUTE,
                actor=ACTOR,
                details={"vehicle_id": flight.vehicle_id, "flight_id": flight.id},
            )
        self._hub.emit(
            Event(
                kind="incident.en_route",
                vehicle_id=flight.vehicle_id,
                data={"incident_id": flight.incident_id},
            )
        )

    async def flight_takeoff_acked(self, flight: Flight) -> None:
        if flight.incident_id is not None and flight.incident_id in self._requested_at:
            self.takeoff_ack_s.append(time.monotonic() - self._requested_at.pop(flight.incident_id))

    async def flight_leg_done(self, flight: Flight, leg: Leg) -> None:
        if leg.tag != "scene" or leg.kind is not LegKind.GOTO or flight.incident_id is None:
            return
        if flight.purpose == FlightPurpose.RELIEF.value:
            await self._relieved(flight)
            return
        with session_scope(self._engine) as session:
            incident = incidents.get(session=session, incident_id=flight.incident_id)
            if incident.vehicle_id != flight.vehicle_id:
                return
            if IncidentState(incident.state) is IncidentState.ASSIGNED:
                incidents.mark_airborne(session=session, incident_id=flight.incident_id, actor=ACTOR)
                incidents.transition(
                    session=session, incident_id=flight.incident_id, to=IncidentState.EN_ROUTE, actor=ACTOR
                )
            if IncidentState(incident.state) is not IncidentState.EN_ROUTE:
                return
            incidents.transition(
                session=session,
                incident_id=flight.incident_id,
                to=IncidentState.ON_SCENE,
                actor=ACTOR,
                details={"vehicle_id": flight.vehicle_id},
            )
        self._hub.emit(
            Event(
                kind="incident.on_scene",
                vehicle_id=flight.vehicle_id,
                data={"incident_id": flight.incident_id},
            )
        )

    async def flight_ended(self, flight: Flight) -> None:
        if flight.incident_id is None:
            return
        state = FlightState(flight.state)
        if state is FlightState.HANDED_OVER:
            holder = flight.outcome.removeprefix("pilot ").split(" ", 1)[0]
            self._note(flight.incident_id, "pilot_takeover", {"vehicle_id": flight.vehicle_id}, actor=holder)
            return
        if state is not FlightState.FAILED:
            return
        if flight.purpose == FlightPurpose.RELIEF.value:
            self._note(
                flight.incident_id,
                "relief_failed",
                {"vehicle_id": flight.vehicle_id, "error": flight.outcome},
            )
            return
        await self._unassign(flight.incident_id, flight.vehicle_id, flight.outcome)

    async def _unassign(self, incident_id: int, vid: int, error: str) -> None:
        """The incident's vehicle will not get there: back to new, and to the next one if tries are left."""
        with session_scope(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
            if incident.vehicle_id != vid or IncidentState(incident.state) not in (
                IncidentState.ASSIGNED,
                IncidentState.EN_ROUTE,
            ):
                return
            incidents.transition(
                session=session,
                incident_id=incident_id,
                to=IncidentState.NEW,
                actor=ACTOR,
                details={"vehicle_id": vid, "error": error[:300]},
            )
            tried = self._failed_vehicles(session, incident_id) | {vid}
        self._hub.emit(
            Event(
                kind="incident.unassigned", vehicle_id=vid, data={"incident_id": incident_id, "error": error}
            )
        )
        if len(tried) < self.config.max_attempts:
            with contextlib.suppress(SkywardenError, PlanningError):
                await self.dispatch(incident_id, actor=ACTOR, exclude=frozenset(tried))

    def _failed_vehicles(self, session: Session, incident_id: int) -> frozenset[int]:
        """Vehicles whose try at this incident failed (from its timeline: restart-safe)."""
        rows = session.exec(
            select(IncidentEvent).where(
                col(IncidentEvent.incident_id) == incident_id, col(IncidentEvent.kind) == "unassigned"
            )
        ).all()
        return frozenset(int(r.details["vehicle_id"]) for r in rows if (r.details or {}).get("vehicle_id"))

    async def _relieved(self, flight: Flight) -> None:
        """The relief is over the scene: it takes the incident over and the vehicle it relieves goes home."""
        assert flight.incident_id is not None
        old = flight.relieves_vehicle_id
        with session_scope(self._engine) as session:
            incident = incidents.get(session=session, incident_id=flight.incident_id)
            if (
                IncidentState(incident.state) is IncidentState.CLOSED
                or incident.vehicle_id == flight.vehicle_id
            ):
                return
            incident.vehicle_id = flight.vehicle_id
            session.add(incident)
            incidents.note(
                session=session,
                incident_id=flight.incident_id,
                kind="relieved",
                actor=ACTOR,
                details={"from_vehicle_id": old, "to_vehicle_id": flight.vehicle_id},
            )
            # The relief is now the incident's flight.
            row = session.get(Flight, flight.id)
            if row is not None:
                row.purpose = FlightPurpose.DISPATCH.value
                session.add(row)
        self._hub.emit(
            Event(
                kind="incident.relieved",
                vehicle_id=flight.vehicle_id,
                data={"incident_id": flight.incident_id, "from_vehicle_id": old},
            )
        )
        if old is not None:
            await self.send_home(old, incident_id=flight.incident_id, reason="relieved")

    def _note(
        self, incident_id: int | None, kind: str, details: dict[str, Any], *, actor: str = ACTOR
    ) -> None:
        if incident_id is None:
            return
        with session_scope(self._engine) as session:
            incidents.note(session=session, incident_id=incident_id, kind=kind, actor=actor, details=details)
