"""Per-vehicle exemptions from event zones: the one place the gate's airspace differs between vehicles.

An event's assigned vehicles (and any a dispatcher names for an incident in the venue) may fly inside the
event's restricted zone during its window. Only zones of kind ``event`` are ever lifted: a no-fly zone
inside a venue restricts every vehicle. Every other vehicle keeps the event zone as a restriction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from mission.airspace.models import ZoneKind
from mission.airspace.service import Restriction
from mission.audit.clock import as_utc
from mission.security_events.models import ZoneExemption


def active_exemptions(
    *, session: Session, at: datetime, vehicle_id: int | None = None
) -> list[ZoneExemption]:
    """Exemptions not revoked whose window contains ``at`` (one vehicle's, or everyone's)."""
    query = select(ZoneExemption).where(col(ZoneExemption.revoked_at).is_(None))
    if vehicle_id is not None:
        query = query.where(col(ZoneExemption.vehicle_id) == vehicle_id)
    at = as_utc(at)
    return [e for e in session.exec(query) if as_utc(e.valid_from) <= at < as_utc(e.valid_until)]


def exempt_zone_ids(
    *, session: Session, vehicle_id: int, start: datetime, end: datetime, restrictions: Sequence[Restriction]
) -> frozenset[int]:
    """The event zones among ``restrictions`` that ``vehicle_id`` may fly in over [start, end].

    An exemption covers the span when it is valid at ``start`` and lasts to ``end`` or to the end of the
    zone's own window (after which the zone restricts nobody).
    """
    if vehicle_id <= 0:
        return frozenset()
    events = {r.zone_id: r for r in restrictions if r.kind is ZoneKind.event}
    if not events:
        return frozenset()
    out = set()
    for e in active_exemptions(session=session, at=start, vehicle_id=vehicle_id):
        zone = events.get(e.zone_id)
        if zone is None:
            continue
        until = as_utc(e.valid_until)
        if until >= as_utc(end) or (zone.active_until is not None and as_utc(zone.active_until) <= until):
            out.add(e.zone_id)
    return frozenset(out)


def for_vehicle(
    restrictions: Sequence[Restriction],
    *,
    session: Session,
    vehicle_id: int,
    start: datetime,
    end: datetime,
) -> list[Restriction]:
    """``restrictions`` as they bind ``vehicle_id``: its exempt event zones left out."""
    lifted = exempt_zone_ids(
        session=session, vehicle_id=vehicle_id, start=start, end=end, restrictions=restrictions
    )
    return [r for r in restrictions if r.zone_id not in lifted]


__all__ = ["active_exemptions", "exempt_zone_ids", "for_vehicle"]
