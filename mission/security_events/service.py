"""Create a large event: plan it against the airspace of its window, restrict the area, store the plan set."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from shapely.geometry import Polygon, mapping
from sqlmodel import Session, col, func, select

from mission.airspace import service as airspace
from mission.airspace.models import ZoneCreate, ZoneKind
from mission.errors import Conflict, NotFound
from mission.safety.routing import NoFlyZone
from mission.security_events.models import SecurityEvent, SecurityEventCreate
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
        raise Conflict(f"security event {data.name!r} already exists")
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
        drones=data.drones,
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
        drones=data.drones,
        zone_id=zone.id,
        plan={**_plan_json(plan), "sweep_starts_at": (data.doors_open_at - SWEEP_LEAD).isoformat()},
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def get(*, session: Session, event_id: int) -> SecurityEvent:
    row = session.get(SecurityEvent, event_id)
    if row is None:
        raise NotFound(f"security event {event_id} does not exist")
    return row


def list_events(*, session: Session, limit: int, offset: int) -> tuple[list[SecurityEvent], int]:
    rows = session.exec(
        select(SecurityEvent).order_by(col(SecurityEvent.starts_at).desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), int(session.exec(select(func.count()).select_from(SecurityEvent)).one())


def delete(*, session: Session, event_id: int) -> SecurityEvent:
    """Remove an event and its restricted zone."""
    row = get(session=session, event_id=event_id)
    if row.zone_id is not None:
        zone_id, row.zone_id = row.zone_id, None
        session.add(row)
        session.flush()
        airspace.delete_zone(session=session, zone_id=zone_id)
    session.delete(row)
    session.flush()
    return row
