"""The safety gate: the one function that decides whether a vehicle may fly a given path over a time span.

Every path that moves a vehicle asks ``judge`` before anything is sent: mission validation and launch,
patrol launches and backfill, a pilot's commands (HTTP and MQTT), dispatch and relief flights, routed
returns and restart recovery. It applies, in one place:

- airspace: every no-fly and active event zone during the whole flight (from now to its expected end plus
  a margin), in its floor..ceiling band, kept at ``clearance_m`` (the service's floor; a plan may ask for
  more, never less);
- altitude: the ceiling ``max_alt_m`` above home (and the return altitude PX4's RTL climbs to);
- battery: the charge must be known, above the reserve, and enough for the flight and the way home;
- who is asking: the role, and control authority (a pilot holding a vehicle is never overridden);
- the vehicle: connected, on the ground for a launch, not held by an incident or another mission.

Arming a vehicle that holds a stored mission in MISSION mode would start that mission on PX4; MAVSDK's arm
switches such a vehicle to hold first (tests/integration keep that true), so an arm never flies unjudged.

A refusal names the rule and the place (zone, point, altitude, energy figures) and has a stable code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from flightplans.energy import RoutePoint
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from mission.airspace.service import Restriction, restrictions_during
from mission.audit.clock import utcnow
from mission.auth.roles import Role
from mission.control import service as control
from mission.errors import AirspaceViolation, PermissionDenied, VehicleUnavailable
from mission.fleet.manager import VehicleProfile
from mission.incidents.models import Incident, IncidentState
from mission.link.types import TelemetrySnapshot
from mission.missions.models import Mission
from mission.missions.states import IN_FLIGHT
from mission.planning import CompiledPlan, PlanContext, PlanRequest, compile_plan, judge_compiled
from mission.safety import exemptions
from mission.safety.routing import airspace_at
from mission.safety.rules import Battery, NoFly, PathLimits, Refusal, Rule, path_refusals

# Incidents in these states hold their vehicle: no mission may be launched on it.
INCIDENT_HOLDS = (IncidentState.ASSIGNED, IncidentState.EN_ROUTE, IncidentState.ON_SCENE)
PILOT_ROLES = frozenset({Role.pilot.value, Role.admin.value})
DISPATCH_ROLES = frozenset({Role.dispatcher.value, Role.admin.value})
FLYING_ROLES = frozenset({Role.pilot.value, Role.dispatcher.value, Role.admin.value})


@dataclass(frozen=True, slots=True)
class GateConfig:
    """The service's safety margins, from ``Settings`` (``from_settings``) and nowhere else."""

    battery_reserve_pct: float = 20.0
    clearance_m: float = 20.0  # the floor for everyone
    max_alt_m: float = 120.0  # ceiling above home (AGL)
    min_alt_m: float = 10.0  # lowest transit altitude the service plans for its own flights
    return_alt_m: float = 60.0  # RTL return altitude for a vehicle whose own RTL_RETURN_ALT was not read
    time_margin_s: float = 600.0  # restrictions starting this long after the planned end count too
    fence_margin_m: float = 150.0
    speed_factor: float = 1.0  # simulated seconds per wall second (zone times are wall times)
    wind_speed_m_s: float = 0.0
    wind_from_deg: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> GateConfig:
        """The gate of the service's ``Settings``."""
        return cls(
            battery_reserve_pct=settings.battery_reserve_pct,
            clearance_m=settings.clearance_m,
            max_alt_m=settings.max_alt_m,
            return_alt_m=settings.return_alt_m,
            time_margin_s=settings.airspace_time_margin_s,
            fence_margin_m=settings.fence_margin_m,
            speed_factor=settings.sim_speed,
            wind_speed_m_s=settings.wind_speed_m_s,
            wind_from_deg=settings.wind_from_deg,
        )

    def for_vehicle(self, vehicle: VehicleView) -> GateConfig:
        """This config with the vehicle's own RTL return altitude when its link read it (PX4 climbs to its
        RTL_RETURN_ALT, 30 m by default, not to the service's setting); the setting otherwise."""
        alt = vehicle.return_alt_m
        if alt is None or alt == self.return_alt_m:
            return self
        return replace(self, return_alt_m=alt)

    def return_alt(self, current_alt_m: float) -> float:
        """A return's altitude: the RTL altitude, higher if already higher, never above the ceiling."""
        return min(self.max_alt_m, max(current_alt_m, self.return_alt_m, self.min_alt_m))

    def clearance(self, requested_m: float | None = None) -> float:
        """The clearance a flight keeps: what it asks for, never less than the floor."""
        return max(self.clearance_m, requested_m or 0.0)

    @property
    def wind_to_m_s(self) -> tuple[float, float]:
        """(east, north) of where the air moves to."""
        to = math.radians(self.wind_from_deg + 180.0)
        return self.wind_speed_m_s * math.sin(to), self.wind_speed_m_s * math.cos(to)

    def limits(self, *, clearance_m: float) -> PathLimits:
        east, north = self.wind_to_m_s
        return PathLimits(
            clearance_m=clearance_m,
            max_alt_m=self.max_alt_m,
            return_alt_m=self.return_alt_m,
            reserve_pct=self.battery_reserve_pct,
            wind_east_m_s=east,
            wind_north_m_s=north,
        )


class Action(StrEnum):
    """What is asked of the vehicle."""

    LAUNCH = "launch"  # a mission or patrol, flown from the ground at home
    RESUME = "resume"  # the rest of a mission, from where the vehicle is
    ARM = "arm"
    TAKEOFF = "takeoff"
    GOTO = "goto"
    ORBIT = "orbit"
    HOLD = "hold"
    LAND = "land"
    RETURN = "return"
    PAYLOAD = "payload"
    DISPATCH = "dispatch"  # a flight to an incident and overwatch there
    RELIEF = "relief"  # a flight to take over an overwatch
    HOME = "home"  # the service bringing a vehicle home along a routed path


PILOT_COMMANDS = frozenset(
    {Action.ARM, Action.TAKEOFF, Action.GOTO, Action.ORBIT, Action.HOLD, Action.LAND, Action.RETURN}
)
# Asked to make a vehicle go somewhere or spend energy; hold, land and the way home are always allowed.
MOVING = frozenset(
    {
        Action.LAUNCH,
        Action.RESUME,
        Action.ARM,
        Action.TAKEOFF,
        Action.GOTO,
        Action.ORBIT,
        Action.DISPATCH,
        Action.RELIEF,
    }
)
SERVICE_FLIGHTS = frozenset({Action.DISPATCH, Action.RELIEF, Action.HOME})


@dataclass(frozen=True, slots=True)
class Asker:
    """Who is asking: a user with a role, or the service itself (``role`` None)."""

    name: str
    role: str | None = None

    @property
    def is_service(self) -> bool:
        return self.role is None


@dataclass(frozen=True, slots=True)
class PathPoint:
    """A point to fly to at ``alt_m`` above home, optionally circled or held there."""

    lat: float
    lon: float
    alt_m: float
    loiter_s: float = 0.0
    loiter_radius_m: float = 0.0


@dataclass(frozen=True, slots=True)
class FlightPath:
    """A flight from where the vehicle is: its points, and whether the way home is part of it."""

    points: tuple[PathPoint, ...]
    returns_home: bool = True
    clearance_m: float | None = None  # asks for more than the floor
    speed_m_s: float | None = None
    start: PathPoint | None = None  # judged from here instead of the vehicle's position (a planned corner)


@dataclass(frozen=True, slots=True)
class VehicleView:
    """What the gate knows of a vehicle: its registry profile and latest telemetry."""

    profile: VehicleProfile
    snapshot: TelemetrySnapshot | None

    @property
    def vehicle_id(self) -> int:
        return self.profile.id

    @property
    def link_up(self) -> bool:
        return self.snapshot is not None and self.snapshot.link_up

    @property
    def home(self) -> tuple[float, float]:
        """Where it returns to: the home it reports, else its registered dock."""
        s = self.snapshot
        if s is not None and s.home_ok and s.home_lat is not None and s.home_lon is not None:
            return (s.home_lat, s.home_lon)
        return (self.profile.home_lat, self.profile.home_lon)

    @property
    def position(self) -> tuple[float, float, float] | None:
        """(lat, lon, height above home) when the vehicle reports it."""
        s = self.snapshot
        if s is None or not s.link_up or s.lat is None or s.lon is None:
            return None
        return (s.lat, s.lon, max(0.0, s.alt_rel_m or 0.0))

    @property
    def in_air(self) -> bool:
        return self.snapshot is not None and self.snapshot.link_up and self.snapshot.in_air

    @property
    def return_alt_m(self) -> float | None:
        """The altitude its own RTL climbs to, as its link read it (RTL_RETURN_ALT); None when unknown."""
        return self.snapshot.return_alt_m if self.snapshot is not None else None

    def battery(self) -> Battery:
        charge = None
        if self.snapshot is not None and self.snapshot.link_up:
            charge = self.snapshot.battery_pct
        return Battery(
            battery_wh=self.profile.battery_wh,
            endurance_s=self.profile.endurance_s,
            charge_pct=charge,
            cruise_speed_m_s=self.profile.cruise_speed_m_s,
        )


@dataclass(frozen=True, slots=True)
class GateRequest:
    """One question to the gate."""

    vehicle_id: int
    action: Action
    asker: Asker
    path: FlightPath | None = None
    plan: PlanRequest | None = None  # launch: the plan, compiled and flown from home
    mission_id: int | None = None  # the mission this is part of (not "busy" with itself)
    flight_id: int | None = None  # the flight this is part of
    incident_id: int | None = None  # the incident this serves
    dwell_s: float = 0.0  # time spent at the last point (orbit, overwatch)
    # A plan judged ahead of its flight (mission create/validate, the editor's preview): airspace,
    # altitude and energy (from a full battery when the charge is unknown) only; who flies it, the link
    # and the charge are judged again at launch.
    planning: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer: every refusal (empty: may fly), the flight time judged and the zones seen."""

    request: GateRequest
    refusals: tuple[Refusal, ...]
    flight_s: float = 0.0
    zones: tuple[str, ...] = ()
    compiled: CompiledPlan | None = None
    nofly: tuple[NoFly, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.refusals

    def message(self) -> str:
        what = f"{self.request.action.value} of vehicle {self.request.vehicle_id}"
        return f"{what} refused: " + "; ".join(r.message for r in self.refusals)

    def details(self) -> dict[str, Any]:
        """For the audit log."""
        return {
            "action": self.request.action.value,
            "asker": self.request.asker.name,
            "flight_s": round(self.flight_s, 1),
            "zones": list(self.zones),
            "refusals": [r.as_json() for r in self.refusals],
        }

    def raise_if_refused(self) -> None:
        """The domain error for the first kind of refusal: authority 403, vehicle 409, the rest 422."""
        if self.ok:
            return
        body = [r.as_json() for r in self.refusals]
        rules = {r.rule for r in self.refusals}
        # The first refusal's stable code names the message; every refusal (with its code) is in details.
        code = f"gate.{self.refusals[0].code}"
        if Rule.AUTHORITY in rules:
            raise PermissionDenied(self.message(), code=code, details=body)
        if Rule.VEHICLE in rules:
            raise VehicleUnavailable(self.message(), code=code, details=body)
        raise AirspaceViolation(self.message(), violations=body, code=code)


def restrictions_for_span(
    *, session: Session, vehicle_id: int, flight_s: float, config: GateConfig
) -> list[Restriction]:
    """Restrictions binding ``vehicle_id`` at any time from now to the end of a ``flight_s`` flight plus the
    margin (its exempt event zones left out; vehicle 0: the restrictions that bind every vehicle)."""
    now = utcnow()
    wall_s = (max(0.0, flight_s) + config.time_margin_s) / max(config.speed_factor, 1e-9)
    end = now + timedelta(seconds=wall_s)
    found = restrictions_during(session=session, start=now, end=end)
    return exemptions.for_vehicle(found, session=session, vehicle_id=vehicle_id, start=now, end=end)


def nofly_from(restrictions: Sequence[Restriction]) -> tuple[NoFly, ...]:
    """Airspace restrictions as planning sees them."""
    return tuple(
        NoFly(
            name=r.name, geometry=r.geometry, floor_m=r.floor_m, ceiling_m=r.ceiling_m, fence=r.fence_shape()
        )
        for r in restrictions
    )


def plan_context(vehicle: VehicleView, *, nofly: tuple[NoFly, ...], config: GateConfig) -> PlanContext:
    """The planning context of a vehicle: its home, performance, charge and the service's limits."""
    east, north = config.wind_to_m_s
    return PlanContext(
        nofly=nofly,
        home=vehicle.home,
        cruise_speed_m_s=vehicle.profile.cruise_speed_m_s,
        battery_wh=vehicle.profile.battery_wh,
        battery_pct=vehicle.battery().charge_pct,
        endurance_s=vehicle.profile.endurance_s,
        reserve_pct=config.battery_reserve_pct,
        actuators=dict(vehicle.profile.actuators),
        fence_margin_m=config.fence_margin_m,
        max_alt_m=config.max_alt_m,
        return_alt_m=config.return_alt_m,
        clearance_floor_m=config.clearance_m,
        wind_east_m_s=east,
        wind_north_m_s=north,
    )


def judge(*, session: Session, request: GateRequest, vehicle: VehicleView, config: GateConfig) -> Verdict:
    """Whether ``vehicle`` may do ``request`` now: every refusal, with the rule and the place.

    The flight's length is not known before it is judged: judge over [now, now + margin], then over the
    flight time found, until the set of zones no longer grows.
    """
    config = config.for_vehicle(vehicle)
    if request.planning:
        refusals: list[Refusal] = []
    else:
        refusals = _authority(session, request, vehicle) + _vehicle_state(session, request, vehicle)
    if request.action in MOVING and vehicle.battery().charge_pct is None and not request.planning:
        refusals.append(
            Refusal(
                Rule.VEHICLE,
                "battery.unknown",
                f"vehicle {vehicle.vehicle_id} reports no battery charge; {request.action.value} refused"
                " until it does",
                kind="energy",
            )
        )
    flight_s: float = 0.0
    zones: tuple[str, ...] = ()
    compiled: CompiledPlan | None = None
    path_found: list[Refusal] = []
    nofly: tuple[NoFly, ...] = ()
    if request.plan is not None or request.path is not None:
        for _ in range(3):
            restrictions = restrictions_for_span(
                session=session, vehicle_id=vehicle.vehicle_id, flight_s=flight_s, config=config
            )
            nofly = nofly_from(restrictions)
            path_found, new_s, compiled = _judge_path(request, vehicle, nofly=nofly, config=config)
            grown = restrictions_for_span(
                session=session, vehicle_id=vehicle.vehicle_id, flight_s=new_s, config=config
            )
            flight_s = new_s
            zones = tuple(r.name for r in restrictions)
            if len(grown) <= len(restrictions):
                break
    # An unknown charge is said once, by the vehicle rule above.
    seen = {r.code for r in refusals}
    refusals += [r for r in path_found if r.code not in seen]
    return Verdict(
        request=request,
        refusals=tuple(refusals),
        flight_s=flight_s,
        zones=zones,
        compiled=compiled,
        nofly=nofly,
    )


def _judge_path(
    request: GateRequest, vehicle: VehicleView, *, nofly: tuple[NoFly, ...], config: GateConfig
) -> tuple[list[Refusal], float, CompiledPlan | None]:
    battery = vehicle.battery()
    if request.planning and battery.charge_pct is None:
        battery = replace(battery, charge_pct=100.0)  # a plan for later: judged from a full battery
    de_escalating = request.action not in MOVING
    if request.plan is not None:
        context = plan_context(vehicle, nofly=nofly, config=config)
        compiled = compile_plan(request.plan, context=context)
        found, time_s = judge_compiled(compiled, context=context, battery=battery)
        return found, time_s, compiled
    assert request.path is not None
    path = request.path
    here = vehicle.position
    if path.start is not None:
        here = (path.start.lat, path.start.lon, path.start.alt_m)
    no_position: list[Refusal] = []
    if here is None:
        no_position.append(
            Refusal(
                Rule.VEHICLE,
                "vehicle.position",
                f"vehicle {vehicle.vehicle_id} reports no position; {request.action.value} refused"
                " until it does",
                kind="vehicle",
            )
        )
        if not path.points:
            return no_position, 0.0, None
        # The legs from where it is cannot be judged; the points themselves still can.
        first = path.points[0]
        here = (first.lat, first.lon, first.alt_m)
    frame = LocalFrame(*vehicle.home)
    points = [
        RoutePoint(
            *frame.point_to_local(p.lat, p.lon),
            p.alt_m,
            loiter_s=p.loiter_s,
            loiter_radius_m=p.loiter_radius_m,
        )
        for p in path.points
    ]
    if points and request.dwell_s > 0:
        last = points[-1]
        points[-1] = RoutePoint(
            last.x,
            last.y,
            last.alt_m,
            loiter_s=last.loiter_s + request.dwell_s,
            loiter_radius_m=last.loiter_radius_m,
        )
    start = RoutePoint(*frame.point_to_local(here[0], here[1]), here[2])
    clearance = config.clearance(path.clearance_m)
    if path.returns_home:
        # The way home is the routed return the executor flies, not PX4's straight RTL.
        end = path.points[-1] if path.points else PathPoint(here[0], here[1], here[2])
        points += _way_home(
            end, home=vehicle.home, nofly=nofly, clearance_m=clearance, config=config, frame=frame
        )
    found, time_s = path_refusals(
        points or [start],
        frame=frame,
        home=(0.0, 0.0),
        zones=nofly,
        limits=config.limits(clearance_m=clearance),
        # The way home is never refused for the battery: it is what the reserve is for.
        battery=None if de_escalating else battery,
        start=start,
        returns_home=path.returns_home,
        speed_m_s=path.speed_m_s,
    )
    return no_position + found, time_s, None


def _way_home(
    last: PathPoint,
    *,
    home: tuple[float, float],
    nofly: Sequence[NoFly],
    clearance_m: float,
    config: GateConfig,
    frame: LocalFrame,
) -> list[RoutePoint]:
    """The corners of the routed return from ``last`` (none when straight home is clear or no way exists:
    then the straight return is what gets judged, and refused with the zone it crosses)."""
    alt = config.return_alt(last.alt_m)
    space = airspace_at(nofly, alt_m=alt, around=home, clearance_m=clearance_m)
    try:
        corners = space.to_latlon(space.route((last.lat, last.lon), home))[1:-1]
    except PlanningError:
        return []
    return [RoutePoint(*frame.point_to_local(lat, lon), alt) for lat, lon in corners]


def _authority(session: Session, request: GateRequest, vehicle: VehicleView) -> list[Refusal]:
    """Who may ask for this: the role, and who holds control of the vehicle."""
    asker, action = request.asker, request.action
    vid = vehicle.vehicle_id
    holder = control.holder_of(session=session, vehicle_id=vid)

    def refuse(code: str, message: str) -> list[Refusal]:
        return [Refusal(Rule.AUTHORITY, code, message, kind="authority")]

    if action in PILOT_COMMANDS:
        if asker.is_service:
            return (
                []
                if holder is None
                else refuse(
                    "authority.pilot",
                    f"vehicle {vid} is controlled by {holder}; the service leaves it to them",
                )
            )
        if asker.role not in PILOT_ROLES:
            return refuse("authority.role", f"role {asker.role} cannot command vehicles (pilot or admin)")
        if holder is not None and holder != asker.name:
            return refuse(
                "authority.control", f"vehicle {vid} is controlled by {holder}; ask them for a handoff"
            )
        if holder is None:
            return refuse(
                "authority.control",
                f"take control of vehicle {vid} first (POST /api/v1/vehicles/{vid}/control)",
            )
        return []
    if action is Action.PAYLOAD:
        return [
            Refusal(Rule.AUTHORITY, "authority.payload", why, kind="authority")
            for why in [payload_authority_problem(session=session, request=request, holder=holder)]
            if why
        ]
    if holder is not None and holder != asker.name:
        return refuse(
            "authority.pilot",
            f"vehicle {vid} is controlled by {holder}; a pilot's vehicle is never taken over"
            " (ask them to release it)",
        )
    if asker.is_service:
        return []
    allowed = DISPATCH_ROLES if action in (Action.DISPATCH, Action.RELIEF) else FLYING_ROLES
    if asker.role not in allowed:
        return refuse("authority.role", f"role {asker.role} cannot {action.value} vehicles")
    return []


def check_charge_at_arming(*, vehicle_id: int, charge_pct: float | None, config: GateConfig) -> None:
    """The last look before a vehicle is armed: the charge *now* must be known and above the reserve.

    A launch is judged when it is asked for; the upload and the mode switch that follow take seconds, and a
    pack may sag meanwhile. VehicleUnavailable (nothing is armed) when it has.
    """
    if charge_pct is not None and charge_pct > config.battery_reserve_pct:
        return
    now = "unknown" if charge_pct is None else f"{charge_pct:.0f}%"
    refusal = Refusal(
        Rule.BATTERY,
        "battery.reserve_at_arming",
        f"vehicle {vehicle_id} not armed: its charge is {now} now, "
        f"at or below the {config.battery_reserve_pct:.0f}% reserve",
        kind="energy",
        figures={
            "charge_pct": charge_pct if charge_pct is not None else -1.0,
            "reserve_pct": config.battery_reserve_pct,
        },
    )
    raise VehicleUnavailable(refusal.message, code=f"gate.{refusal.code}", details=[refusal.as_json()])


def payload_authority_problem(*, session: Session, request: GateRequest, holder: str | None) -> str | None:
    """Why the asker may not fire a payload live (None: may).

    The rule: whoever holds control of the vehicle; or, when no pilot holds it, a dispatcher (or admin)
    on a vehicle serving an open incident (assigned, en route, on scene); or the service itself for its
    own dispatch flight.
    """
    asker, vid = request.asker, request.vehicle_id
    if holder is not None:
        if holder == asker.name:
            return None
        return f"vehicle {vid} is controlled by {holder}; ask them for a handoff"
    if asker.role in PILOT_ROLES and asker.role != Role.admin.value:
        return f"take control of vehicle {vid} first (POST /api/v1/vehicles/{vid}/control)"
    if asker.is_service or asker.role in DISPATCH_ROLES:
        query = (
            select(Incident)
            .where(col(Incident.vehicle_id) == vid)
            .where(col(Incident.state).in_([s.value for s in INCIDENT_HOLDS]))
        )
        if request.incident_id is not None:
            query = query.where(col(Incident.id) == request.incident_id)
        if session.exec(query).first() is not None:
            return None
        which = f"incident {request.incident_id}" if request.incident_id is not None else "an open incident"
        return (
            f"vehicle {vid} is not assigned to {which}; a dispatcher may use payloads only on a vehicle"
            f" serving an open incident, otherwise a pilot takes control of it first"
        )
    return f"role {asker.role} cannot use payloads"


def _vehicle_state(session: Session, request: GateRequest, vehicle: VehicleView) -> list[Refusal]:
    """Whether the vehicle is in a state to do this at all."""
    vid, action, snap = vehicle.vehicle_id, request.action, vehicle.snapshot

    def refuse(code: str, message: str) -> list[Refusal]:
        return [Refusal(Rule.VEHICLE, code, message, kind="vehicle")]

    if action is Action.LAUNCH and vehicle.in_air:
        assert snap is not None
        return refuse(
            "vehicle.airborne",
            f"vehicle {vid} is airborne ({snap.mode.value}); a mission launches from the ground and is"
            " judged from its home: land it first",
        )
    if action in (Action.LAUNCH, Action.RESUME):
        held = session.exec(
            select(Incident)
            .where(col(Incident.vehicle_id) == vid)
            .where(col(Incident.state).in_([s.value for s in INCIDENT_HOLDS]))
        ).first()
        if held is not None:
            return refuse(
                "vehicle.incident",
                f"vehicle {vid} is held by incident {held.id} ({held.kind}, {held.state});"
                " close or reassign the incident first",
            )
        other = session.exec(
            select(Mission)
            .where(col(Mission.vehicle_id) == vid)
            .where(col(Mission.state).in_([s.value for s in IN_FLIGHT]))
            .where(col(Mission.id) != (request.mission_id or -1))
        ).first()
        if other is not None:
            return refuse("vehicle.busy", f"vehicle {vid} is flying mission {other.id} ({other.state})")
    if action in MOVING and not vehicle.link_up:
        return refuse("vehicle.link", f"vehicle {vid} ({vehicle.profile.name}) is not connected")
    return []


__all__ = [
    "Action",
    "Asker",
    "FlightPath",
    "GateConfig",
    "GateRequest",
    "PathPoint",
    "VehicleView",
    "Verdict",
    "judge",
    "nofly_from",
    "plan_context",
    "restrictions_for_span",
]
