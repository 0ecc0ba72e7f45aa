"""Which vehicles could serve a point, and how fast: the fleet as candidates, ranked in the gate's airspace.

The airspace dispatch ranks in is the gate's: every restriction active during the whole flight, in its
floor..ceiling band at the flight's altitude, kept at the service's clearance. So the vehicle dispatch
chooses is one the gate lets fly (the gate still judges the chosen flight before anything is sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.errors import PlanningError
from mission.airspace.service import Restriction
from mission.audit.clock import utcnow
from mission.dispatch.config import DispatchConfig
from mission.dispatch.energy import CALM, Wind
from mission.dispatch.fleet_view import DockLedger, FleetReader, vehicle_states
from mission.dispatch.ranking import (
    Activity,
    DispatchDecision,
    DispatchRequest,
    VehicleState,
    nearest_docked,
    rank,
)
from mission.flights.models import OPEN_STATES, Flight, FlightPurpose
from mission.incidents import service as incidents
from mission.incidents.models import Incident
from mission.safety import exemptions
from mission.safety.gate import GateConfig, restrictions_for_span
from mission.safety.routing import Airspace, airspace_at

SERVING = (FlightPurpose.DISPATCH.value, FlightPurpose.RELIEF.value)


class Candidates:
    """The fleet as dispatch candidates and their ranking for a request."""

    def __init__(
        self,
        *,
        engine: Engine,
        fleet: FleetReader,
        gate: GateConfig,
        config: DispatchConfig,
        wind: Wind = CALM,
    ) -> None:
        self._engine = engine
        self._fleet = fleet
        self.gate = gate
        self.config = config
        self.wind = wind
        self.ledger = DockLedger()

    def restrictions(self, *, span_s: float = 0.0, vehicle_id: int = 0) -> list[Restriction]:
        """Zones binding ``vehicle_id`` (0: every vehicle) at any time of a ``span_s`` (simulated s) flight
        from now, plus the margin."""
        with Session(self._engine) as session:
            return restrictions_for_span(
                session=session, vehicle_id=vehicle_id, flight_s=span_s, config=self.gate
            )

    def airspace(
        self, *, around: tuple[float, float], alt_m: float, span_s: float = 0.0, vehicle_id: int = 0
    ) -> Airspace:
        """The zones in force at ``alt_m`` during a ``span_s`` flight, in a frame centred near ``around``."""
        return airspace_at(
            self.restrictions(span_s=span_s, vehicle_id=vehicle_id),
            alt_m=alt_m,
            around=around,
            clearance_m=self.gate.clearance_m,
        )

    def _exempt_groups(self, pool: Sequence[VehicleState], span_s: float) -> dict[frozenset[int], list[int]]:
        """Vehicles grouped by the event zones they are exempt from (most: none)."""
        groups: dict[frozenset[int], list[int]] = {}
        with Session(self._engine) as session:
            every = restrictions_for_span(session=session, vehicle_id=0, flight_s=span_s, config=self.gate)
            now = utcnow()
            end = now + timedelta(
                seconds=(span_s + self.gate.time_margin_s) / max(self.gate.speed_factor, 1e-9)
            )
            for s in pool:
                lifted = exemptions.exempt_zone_ids(
                    session=session, vehicle_id=s.vehicle_id, start=now, end=end, restrictions=every
                )
                groups.setdefault(lifted, []).append(s.vehicle_id)
        return groups

    def request_for(self, incident: Incident) -> DispatchRequest:
        return DispatchRequest(
            lat=incident.lat,
            lon=incident.lon,
            overhead_s=incident.overhead_s,
            alt_m=incident.alt_m,
            required_capabilities=frozenset(incident.required_capabilities),
            min_overhead_s=self.config.min_overwatch_s,
            allow_preempt=incident.priority <= self.config.preempt_max_priority,
        )

    def check_altitude(self, request: DispatchRequest) -> None:
        """PlanningError when the request's altitude is outside the gate's band."""
        if not self.gate.min_alt_m <= request.alt_m <= self.gate.max_alt_m:
            raise PlanningError(
                f"alt_m {request.alt_m:g} is outside {self.gate.min_alt_m:g}..{self.gate.max_alt_m:g} m"
                " (the service's transit floor and altitude ceiling)",
                where="alt_m",
                code="dispatch.alt_m_outside_m",
                params={
                    "alt_m": f"{request.alt_m:g}",
                    "min_alt_m": f"{self.gate.min_alt_m:g}",
                    "max_alt_m": f"{self.gate.max_alt_m:g}",
                },
            )

    def states(self) -> list[VehicleState]:
        """Every vehicle as a candidate; vehicles flying for an incident (or a relief) count as busy."""
        out = vehicle_states(
            engine=self._engine, fleet=self._fleet, defaults=self.config.performance, ledger=self.ledger
        )
        with Session(self._engine) as session:
            engaged = set(
                session.exec(
                    select(Flight.vehicle_id).where(
                        col(Flight.state).in_([s.value for s in OPEN_STATES]),
                        col(Flight.purpose).in_(SERVING),
                    )
                ).all()
            )
        return [replace(s, activity=Activity.INCIDENT) if s.vehicle_id in engaged else s for s in out]

    def decide(
        self, request: DispatchRequest, *, states: Sequence[VehicleState] | None = None
    ) -> DispatchDecision:
        """Rank ``states`` (default: the fleet) for ``request`` against the airspace of the whole flight.

        The flight's length is not known before ranking: rank over the overwatch time, then again over
        out + overwatch + back of the chosen vehicle until that span no longer grows.
        """
        self.check_altitude(request)
        pool = list(states) if states is not None else self.states()
        span_s = request.overhead_s
        decision = DispatchDecision(chosen=None, candidates=(), explanation="no ranking")
        for _ in range(3):
            decision = self._rank_per_vehicle(pool, request, span_s)
            if decision.chosen is None:
                return decision
            need_s = request.overhead_s + 2.0 * decision.chosen.eta_s
            if need_s <= span_s:
                return decision
            span_s = need_s
        return decision

    def _rank_per_vehicle(
        self, pool: list[VehicleState], request: DispatchRequest, span_s: float
    ) -> DispatchDecision:
        """Rank each group of vehicles in its own airspace (exempt vehicles fly event zones), then merge."""
        groups = self._exempt_groups(pool, span_s)
        if len(groups) <= 1:
            lifted = next(iter(groups), frozenset())
            vid = groups[lifted][0] if lifted else 0
            space = self.airspace(
                around=(request.lat, request.lon), alt_m=request.alt_m, span_s=span_s, vehicle_id=vid
            )
            return self._rank(pool, request, space)
        decisions = []
        for lifted, ids in groups.items():
            members = [s for s in pool if s.vehicle_id in ids]
            space = self.airspace(
                around=(request.lat, request.lon),
                alt_m=request.alt_m,
                span_s=span_s,
                vehicle_id=ids[0] if lifted else 0,
            )
            decisions.append(self._rank(members, request, space))
        ranked = sorted(
            (c for d in decisions for c in d.candidates),
            key=lambda e: (not e.feasible, e.eta_s, -e.margin_wh if e.feasible else 0.0, e.vehicle_id),
        )
        chosen = ranked[0] if ranked and ranked[0].feasible else None
        best = next((d for d in decisions if chosen is not None and d.chosen == chosen), decisions[0])
        return DispatchDecision(chosen=chosen, candidates=tuple(ranked), explanation=best.explanation)

    def _rank(
        self, states: list[VehicleState], request: DispatchRequest, space: Airspace
    ) -> DispatchDecision:
        if self.config.policy != "nearest_dock":
            return rank(states, request, airspace=space, wind=self.wind)
        base = nearest_docked(states, request, airspace=space, wind=self.wind)
        return DispatchDecision(
            chosen=base,
            candidates=(base,) if base else (),
            explanation=f"baseline policy: nearest docked vehicle {base.name}"
            if base
            else "baseline: none fit",
        )

    def preview(self, incident_id: int) -> DispatchDecision:
        """The ranked candidates for an incident now, changing nothing."""
        with Session(self._engine) as session:
            incident = incidents.get(session=session, incident_id=incident_id)
        return self.decide(self.request_for(incident))
