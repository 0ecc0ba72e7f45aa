"""Zone CRUD and the question the safety gate asks: which restrictions are active at a given time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlmodel import Session, col, func, select

from flightplans.items import FenceCircle, FencePolygon, FenceShape
from mission.airspace.models import CircleShape, PolygonShape, Zone, ZoneCreate, ZoneKind, ZoneRead
from mission.audit.clock import as_utc, utcnow
from mission.errors import Conflict, NotFound

RESTRICTION_KINDS = (ZoneKind.no_fly, ZoneKind.event)
_M_PER_DEG_LAT = 111_320.0
_CIRCLE_SEGMENTS = 64


def circle_polygon(*, lon: float, lat: float, radius_m: float, segments: int = _CIRCLE_SEGMENTS) -> Polygon:
    """A lon/lat polygon approximating a circle of ``radius_m`` (local flat-earth; fine below ~50 km)."""
    m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(lat))
    ring = [
        (
            lon + radius_m * math.cos(2 * math.pi * k / segments) / m_per_deg_lon,
            lat + radius_m * math.sin(2 * math.pi * k / segments) / _M_PER_DEG_LAT,
        )
        for k in range(segments)
    ]
    return Polygon(ring)


def shape_geometry(shape: PolygonShape | CircleShape) -> Polygon:
    """The shape as a shapely polygon in (lon, lat)."""
    if isinstance(shape, CircleShape):
        return circle_polygon(lon=shape.center[0], lat=shape.center[1], radius_m=shape.radius_m)
    return Polygon(shape.coordinates[0], shape.coordinates[1:])


@dataclass(frozen=True, slots=True)
class Restriction:
    """An active no-fly zone or event area between ``floor_m`` and ``ceiling_m`` (metres above ground)."""

    zone_id: int
    name: str
    kind: ZoneKind
    shape: PolygonShape | CircleShape
    geometry: BaseGeometry  # shapely, (lon, lat)
    floor_m: float
    ceiling_m: float
    active_until: datetime | None

    def contains(self, *, lat: float, lon: float, alt_m: float) -> bool:
        """Whether a point at ``alt_m`` above ground lies inside the restricted volume."""
        return self.floor_m <= alt_m <= self.ceiling_m and self.geometry.intersects(Point(lon, lat))

    def fence_shape(self) -> FenceShape:
        """The restriction as an exclusion geofence shape for upload with a mission."""
        if isinstance(self.shape, CircleShape):
            lon, lat = self.shape.center
            return FenceCircle(lat=lat, lon=lon, radius_m=self.shape.radius_m, inclusion=False)
        outline = self.shape.coordinates[0][:-1]
        return FencePolygon(points=tuple((lat, lon) for lon, lat in outline), inclusion=False)


def is_active(zone: Zone | ZoneRead, *, at: datetime) -> bool:
    """Whether ``at`` falls in the zone's window [active_from, active_until); no window = always."""
    at = as_utc(at)
    if zone.active_from is not None and at < as_utc(zone.active_from):
        return False
    return not (zone.active_until is not None and at >= as_utc(zone.active_until))


def active_restrictions(*, session: Session, at: datetime | None = None) -> list[Restriction]:
    """No-fly zones and event areas active at ``at`` (default now), for the safety gate."""
    when = as_utc(at) if at is not None else utcnow()
    return restrictions_during(session=session, start=when, end=when)


def restrictions_during(*, session: Session, start: datetime, end: datetime) -> list[Restriction]:
    """No-fly zones and event areas active at any moment of [start, end] (a flight's time span)."""
    start, end = as_utc(start), as_utc(end)
    rows = session.exec(
        select(Zone).where(col(Zone.kind).in_([k.value for k in RESTRICTION_KINDS])).order_by(col(Zone.id))
    ).all()
    out = []
    for row in rows:
        if row.active_from is not None and as_utc(row.active_from) > end:
            continue
        if row.active_until is not None and as_utc(row.active_until) <= start:
            continue
        zone = ZoneRead.model_validate(row)
        out.append(
            Restriction(
                zone_id=zone.id,
                name=zone.name,
                kind=zone.kind,
                shape=zone.shape,
                geometry=shape_geometry(zone.shape),
                floor_m=zone.floor_m,
                ceiling_m=zone.ceiling_m,
                active_until=zone.active_until,
            )
        )
    return out


def create_zone(*, session: Session, data: ZoneCreate) -> ZoneRead:
    """Store a new zone; Conflict if the name is taken."""
    _check_name_free(session, data.name)
    zone = Zone.model_validate(_columns(data))
    session.add(zone)
    session.flush()
    return ZoneRead.model_validate(zone)


def get_zone(*, session: Session, zone_id: int) -> ZoneRead:
    """One zone; NotFound names the id."""
    return ZoneRead.model_validate(_row(session, zone_id))


def list_zones(
    *,
    session: Session,
    limit: int,
    offset: int,
    kind: ZoneKind | None = None,
    active_at: datetime | None = None,
) -> tuple[Sequence[ZoneRead], int]:
    """A page of zones (optionally one kind, or only those active at a time) and the total."""
    query = select(Zone).order_by(col(Zone.id))
    if kind is not None:
        query = query.where(Zone.kind == kind.value)
    if active_at is not None:
        active = [z for z in session.exec(query).all() if is_active(z, at=active_at)]
        return [ZoneRead.model_validate(z) for z in active[offset : offset + limit]], len(active)
    count = select(func.count()).select_from(Zone)
    if kind is not None:
        count = count.where(Zone.kind == kind.value)
    total = session.exec(count).one()
    rows = session.exec(query.offset(offset).limit(limit)).all()
    return [ZoneRead.model_validate(z) for z in rows], total


def replace_zone(*, session: Session, zone_id: int, data: ZoneCreate) -> ZoneRead:
    """Replace every field of a zone (PUT semantics)."""
    zone = _row(session, zone_id)
    if data.name != zone.name:
        _check_name_free(session, data.name)
    for key, value in _columns(data).items():
        setattr(zone, key, value)
    zone.updated_at = utcnow()
    session.add(zone)
    session.flush()
    return ZoneRead.model_validate(zone)


def delete_zone(*, session: Session, zone_id: int) -> ZoneRead:
    """Remove a zone and return what it was."""
    zone = _row(session, zone_id)
    gone = ZoneRead.model_validate(zone)
    session.delete(zone)
    session.flush()
    return gone


def _columns(data: ZoneCreate) -> dict[str, object]:
    values = data.model_dump(mode="python", exclude={"shape"})
    values["kind"] = data.kind.value
    values["shape"] = data.shape.model_dump(mode="json")
    return values


def _row(session: Session, zone_id: int) -> Zone:
    zone = session.get(Zone, zone_id)
    if zone is None:
        raise NotFound(
            f"zone {zone_id} does not exist", code="airspace.zone_does_exist", params={"zone_id": zone_id}
        )
    return zone


def _check_name_free(session: Session, name: str) -> None:
    if session.exec(select(Zone).where(Zone.name == name)).first() is not None:
        raise Conflict(
            f"a zone named {name!r} already exists",
            code="airspace.zone_named_already_exists",
            params={"name": repr(name)},
        )
