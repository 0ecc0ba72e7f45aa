"""Create a large event: plan it against the airspace of its window, restrict the area, store the plan set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import Polygon, mapping
from sqlmodel import Session, col, func, select

from mission.airspace import service as airspace
from mission.airspace.models import ZoneCreate, ZoneKind
from mission.audit import service as audit
from mission.audit.clock import as_utc, utcnow
from mission.errors import Conflict, InvalidTransition, NotFound
from mission.fleet.models import Vehicle
from mission.safety.routing import NoFlyZone
from mission.security_events.models import (
    ExemptionCreate,
    SecurityEvent,
    SecurityEventCreate,
    SecurityEventRead,
    ZoneExemption,
    ZoneExemptionRead,
)
from mission.security_events.planner import EventPlanSet, plan_event

# The restricted zone goes up this long before doors open, for the sweep.
SWEEP_LEAD = timedelta(minutes=60)


def _plan_json(plan: EventPlanSet) -> dict[str, Any]:
    def latlons(points: tuple[tuple[float, float], ...]) -> list[list[float]]:
        return [[round(lat, 7), round(lon, 7)] for lat, lon in points]

    cov = asdict(plan.coverage)
    cov = {k: (None if isinstance(v, float) and v == float("inf") else v) for k, v in cov.items()}
    cov["ring_gaps_s"] = [None if g == float("inf") else g for g in plan.coverage.ring_gaps_s]
    return {
        "sweep": [
            {
                "drone": t.drone,
                "waypoints": latlons(t.waypoints),
                "length_m": t.length_m,
                "flight_time_s": t.flight_time_s,
            }
            for t in plan.sweep
        ],
        "rings": [
            {
                "drone": t.drone,
                "ring": t.ring,
                "radius_m": t.radius_m,
                "waypoints": latlons(t.waypoints),
                "lap_s": t.lap_s,
            }
            for t in plan.rings
        ],
        "overwatch": [asdict(p) for p in plan.overwatch],
        "coverage": cov,
        "restricted_area": mapping(plan.restricted_lonlat),
    }


def create(*, session: Session, data: SecurityEventCreate, actor: str) -> SecurityEvent:
    """Plan the event around the no-fly zones active in its window, add its restricted zone, store it."""
    if session.exec(select(SecurityEvent).where(col(SecurityEvent.name) == data.name)).first() is not None:
        raise Conflict(
            f"security event {data.name!r} already exists",
            code="security_events.security_event_already_exists",
            params={"name": repr(data.name)},
        )
    venue = Polygon(data.venue.coordinates[0], data.venue.coordinates[1:])
    restrictions = airspace.active_restrictions(session=session, at=data.doors_open_at - SWEEP_LEAD)
    nofly = [
        NoFlyZone(r.name, r.geometry)
        for r in restrictions
        if r.kind is ZoneKind.no_fly and isinstance(r.geometry, Polygon)
    ]
    plan = plan_event(
        venue,
        ring_radii_m=data.ring_radii_m,
        drones=len(data.vehicles) if data.vehicles else data.drones,
        revisit_s=data.revisit_s,
        nofly=nofly,
        sweep_drones=data.sweep_drones,
        swath_m=data.swath_m,
        speed_m_s=data.speed_m_s,
        overwatch_points=data.overwatch_points,
    )
    outline = [list(c) for c in plan.restricted_lonlat.exterior.coords]
    zone = airspace.create_zone(
        session=session,
        data=ZoneCreate(
            name=f"event: {data.name}"[:100],
            kind=ZoneKind.event,
            shape={"type": "Polygon", "coordinates": [outline]},  # type: ignore[arg-type]
            floor_m=0.0,
            ceiling_m=data.ceiling_m,
            active_from=data.doors_open_at - SWEEP_LEAD,
            active_until=data.ends_at,
            description=f"restricted for security event {data.name!r}; only its assigned drones fly here",
        ),
    )
    row = SecurityEvent(
        name=data.name,
        venue=data.venue.model_dump(),
        doors_open_at=data.doors_open_at,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        ring_radii_m=list(data.ring_radii_m),
        revisit_s=data.revisit_s,
        drones=len(data.vehicles) if data.vehicles else data.drones,
        zone_id=zone.id,
        plan={
            **_plan_json(plan),
            "sweep_starts_at": (data.doors_open_at - SWEEP_LEAD).isoformat(),
            "swath_m": data.swath_m,
            "speed_m_s": data.speed_m_s,
        },
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def get(*, session: Session, event_id: int) -> SecurityEvent:
    row = session.get(SecurityEvent, event_id)
    if row is None:
        raise NotFound(
            f"security event {event_id} does not exist",
            code="security_events.security_event_does_exist",
            params={"event_id": event_id},
        )
    return row


def list_events(*, session: Session, limit: int, offset: int) -> tuple[list[SecurityEvent], int]:
    rows = session.exec(
        select(SecurityEvent).order_by(col(SecurityEvent.starts_at).desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), int(session.exec(select(func.count()).select_from(SecurityEvent)).one())


def delete(*, session: Session, event_id: int) -> SecurityEvent:
    """Remove an event, its exemptions and its restricted zone."""
    row = get(session=session, event_id=event_id)
    if row.state in ("running", "standing_down"):
        raise InvalidTransition(
            f"security event {event_id} is {row.state}: stand it down first",
            code="security_events.security_event_stand_down",
            params={"event_id": event_id, "state": row.state},
        )
    for e in exemptions_of(session=session, event_id=event_id):
        session.delete(e)
    session.flush()
    if row.zone_id is not None:
        zone_id, row.zone_id = row.zone_id, None
        session.add(row)
        session.flush()
        airspace.delete_zone(session=session, zone_id=zone_id)
    session.delete(row)
    session.flush()
    return row


# -- assigned vehicles and their exemptions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Availability:
    """What assignment needs to know of a vehicle: whether it can fly now, its charge, how far it is."""

    vehicle_id: int
    name: str
    available: bool
    battery_pct: float
    distance_m: float
    reason: str = ""


def choose_vehicles(fleet: Sequence[Availability], *, count: int) -> tuple[list[int], list[str]]:
    """The ``count`` vehicles to assign: available ones, fullest battery first, then the nearest.

    Returns the chosen registry ids and, for every vehicle left out, why.
    """
    fit = [a for a in fleet if a.available]
    fit.sort(key=lambda a: (-round(a.battery_pct / 5.0), a.distance_m, a.vehicle_id))
    chosen = [a.vehicle_id for a in fit[:count]]
    skipped = [f"{a.name}: {a.reason or 'not needed'}" for a in fleet if a.vehicle_id not in chosen]
    return chosen, skipped


def exemptions_of(*, session: Session, event_id: int, include_revoked: bool = True) -> list[ZoneExemption]:
    query = select(ZoneExemption).where(col(ZoneExemption.event_id) == event_id)
    if not include_revoked:
        query = query.where(col(ZoneExemption.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(ZoneExemption.id))))


def _zone_window(session: Session, row: SecurityEvent) -> tuple[int, datetime, datetime]:
    if row.zone_id is None:
        raise InvalidTransition(
            f"security event {row.id} has no restricted zone",
            code="security_events.security_event_has_restricted",
            params={"id": row.id},
        )
    zone = airspace.get_zone(session=session, zone_id=row.zone_id)
    start = zone.active_from or as_utc(row.doors_open_at) - SWEEP_LEAD
    until = zone.active_until or as_utc(row.ends_at)
    return row.zone_id, as_utc(start), as_utc(until)


def revoke(*, session: Session, exemption: ZoneExemption, actor: str, reason: str) -> bool:
    """Revoke one exemption (audited); False when it was revoked already."""
    if exemption.revoked_at is not None:
        return False
    exemption.revoked_at = utcnow()
    exemption.revoked_by = actor[:100]
    session.add(exemption)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="exemption.revoke",
        target=f"vehicle:{exemption.vehicle_id}",
        details={"exemption_id": exemption.id, "zone_id": exemption.zone_id, "reason": reason[:200]},
    )
    return True


def _grant(
    session: Session,
    *,
    row: SecurityEvent,
    vehicle_id: int,
    actor: str,
    reason: str,
    incident_id: int | None = None,
    until: datetime | None = None,
) -> ZoneExemption:
    zone_id, start, zone_until = _zone_window(session, row)
    if session.get(Vehicle, vehicle_id) is None:
        raise NotFound(
            f"vehicle {vehicle_id} is not in the registry",
            code="security_events.vehicle_registry",
            params={"vehicle_id": vehicle_id},
        )
    valid_until = min(as_utc(until), zone_until) if until is not None else zone_until
    if valid_until <= utcnow():
        raise InvalidTransition(
            f"the window of event {row.name!r} is over: no exemption can be granted",
            code="security_events.window_event_over_exemption",
            params={"name": repr(row.name)},
        )
    exemption = ZoneExemption(
        zone_id=zone_id,
        vehicle_id=vehicle_id,
        event_id=row.id,
        incident_id=incident_id,
        valid_from=min(start, utcnow()),
        valid_until=valid_until,
        granted_by=actor[:100],
        reason=reason[:300],
    )
    session.add(exemption)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="exemption.grant",
        target=f"vehicle:{vehicle_id}",
        details={
            "exemption_id": exemption.id,
            "event_id": row.id,
            "zone_id": zone_id,
            "incident_id": incident_id,
            "valid_until": valid_until.isoformat(),
            "reason": reason[:200],
        },
    )
    return exemption


def assign(*, session: Session, event_id: int, vehicles: Sequence[int], actor: str) -> SecurityEvent:
    """Make ``vehicles`` the event's assigned vehicles: each gets an exemption for the event zone and
    window; vehicles taken off the event lose theirs (audited)."""
    row = get(session=session, event_id=event_id)
    if row.state == "ended":
        raise InvalidTransition(
            f"security event {event_id} has ended; its assignment is closed",
            code="security_events.security_event_has_ended",
            params={"event_id": event_id},
        )
    missing = [v for v in vehicles if session.get(Vehicle, v) is None]
    if missing:
        raise NotFound(
            f"vehicles {missing} are not in the registry",
            code="security_events.vehicles_registry",
            params={"missing": missing},
        )
    keep = set(vehicles)
    live = exemptions_of(session=session, event_id=event_id, include_revoked=False)
    for e in live:
        if e.incident_id is None and e.vehicle_id not in keep:
            revoke(session=session, exemption=e, actor=actor, reason="taken off the event")
    have = {e.vehicle_id for e in live if e.incident_id is None and e.vehicle_id in keep}
    for vid in vehicles:
        if vid not in have:
            _grant(session, row=row, vehicle_id=vid, actor=actor, reason=f"assigned to event {row.name!r}")
    row.assigned = list(vehicles)
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="security_event.assign",
        target=f"security_event:{event_id}",
        details={"vehicles": list(vehicles)},
    )
    return row


def grant_exemption(*, session: Session, event_id: int, data: ExemptionCreate, actor: str) -> ZoneExemption:
    """A dispatcher's explicit exemption for a vehicle not on the event (to serve an incident in it)."""
    row = get(session=session, event_id=event_id)
    if row.state == "ended":
        raise InvalidTransition(
            f"security event {event_id} has ended",
            code="security_events.security_event_has_ended_2",
            params={"event_id": event_id},
        )
    return _grant(
        session,
        row=row,
        vehicle_id=data.vehicle_id,
        actor=actor,
        reason=data.reason,
        incident_id=data.incident_id,
        until=data.valid_until,
    )


def revoke_exemption(*, session: Session, event_id: int, exemption_id: int, actor: str) -> ZoneExemption:
    exemption = session.get(ZoneExemption, exemption_id)
    if exemption is None or exemption.event_id != event_id:
        raise NotFound(
            f"exemption {exemption_id} of security event {event_id} does not exist",
            code="security_events.exemption_security_event_does",
            params={"exemption_id": exemption_id, "event_id": event_id},
        )
    if not revoke(session=session, exemption=exemption, actor=actor, reason="revoked by a dispatcher"):
        raise InvalidTransition(
            f"exemption {exemption_id} was revoked already",
            code="security_events.exemption_was_revoked_already",
            params={"exemption_id": exemption_id},
        )
    return exemption


def expire_all(*, session: Session, event_id: int, actor: str) -> int:
    """Stand-down: every exemption of the event ends now; how many did."""
    n = 0
    for e in exemptions_of(session=session, event_id=event_id, include_revoked=False):
        n += revoke(session=session, exemption=e, actor=actor, reason="event stood down")
    return n


def read(*, session: Session, row: SecurityEvent) -> SecurityEventRead:
    out = SecurityEventRead.model_validate(row)
    out.exemptions = [
        ZoneExemptionRead.model_validate(e) for e in exemptions_of(session=session, event_id=row.id or 0)
    ]
    return out
