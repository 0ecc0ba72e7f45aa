"""The vehicle registry: create, read, change and remove registered vehicles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from mission.audit.clock import utcnow
from mission.errors import Conflict, NotFound
from mission.fleet.models import Vehicle, VehicleCreate, VehicleRead, VehicleUpdate


def create(*, session: Session, data: VehicleCreate) -> VehicleRead:
    """Register a vehicle; Conflict if its name, or its sysid on its connection URL, is taken."""
    _check_unique(session, name=data.name, link=(data.connection_url, data.sysid))
    vehicle = Vehicle(**data.model_dump(mode="json"))
    session.add(vehicle)
    session.flush()
    return VehicleRead.model_validate(vehicle)


def get(*, session: Session, vehicle_id: int) -> VehicleRead:
    """One vehicle; NotFound names the id."""
    return VehicleRead.model_validate(_row(session, vehicle_id))


def get_by_sysid(*, session: Session, sysid: int) -> VehicleRead | None:
    """The first vehicle (by id) with MAVLink system id ``sysid``, if any (one per connection URL)."""
    row = session.exec(select(Vehicle).where(Vehicle.sysid == sysid).order_by(col(Vehicle.id))).first()
    return VehicleRead.model_validate(row) if row else None


def list_vehicles(
    *, session: Session, limit: int = 1000, offset: int = 0, enabled_only: bool = False
) -> tuple[Sequence[VehicleRead], int]:
    """A page of vehicles by id and the total count."""
    query = select(Vehicle).order_by(col(Vehicle.id))
    count = select(func.count()).select_from(Vehicle)
    if enabled_only:
        query, count = (
            query.where(col(Vehicle.enabled).is_(True)),
            count.where(col(Vehicle.enabled).is_(True)),
        )
    total = session.exec(count).one()
    rows = session.exec(query.offset(offset).limit(limit)).all()
    return [VehicleRead.model_validate(v) for v in rows], total


def update(*, session: Session, vehicle_id: int, data: VehicleUpdate) -> VehicleRead:
    """Change the given fields; the result must still be a valid vehicle."""
    vehicle = _row(session, vehicle_id)
    changes = data.model_dump(mode="json", exclude_unset=True)
    merged = VehicleCreate.model_validate(
        {
            **VehicleRead.model_validate(vehicle).model_dump(
                mode="json", exclude={"id", "created_at", "updated_at"}
            ),
            **changes,
        }
    )
    _check_unique(
        session,
        name=merged.name if "name" in changes else None,
        link=(merged.connection_url, merged.sysid) if {"sysid", "connection_url"} & changes.keys() else None,
        exclude_id=vehicle_id,
    )
    for key, value in merged.model_dump(mode="json").items():
        setattr(vehicle, key, value)
    vehicle.updated_at = utcnow()
    session.add(vehicle)
    session.flush()
    return VehicleRead.model_validate(vehicle)


def delete(*, session: Session, vehicle_id: int) -> VehicleRead:
    """Remove a vehicle from the registry and return what it was."""
    vehicle = _row(session, vehicle_id)
    gone = VehicleRead.model_validate(vehicle)
    session.delete(vehicle)
    try:
        session.flush()
    except IntegrityError as err:
        raise Conflict(
            f"vehicle {vehicle_id} ({gone.name}) has missions or incidents on record; "
            "disable it (enabled=false) instead of deleting it",
            code="fleet.vehicle_has_missions_incidents",
            params={"vehicle_id": vehicle_id, "name": gone.name},
        ) from err
    return gone


def upsert_many(*, session: Session, vehicles: Iterable[VehicleCreate]) -> tuple[int, int]:
    """Create or replace vehicles by name (a fleet file's sync); returns (created, updated)."""
    created = updated = 0
    for data in vehicles:
        row = session.exec(select(Vehicle).where(Vehicle.name == data.name)).first()
        if row is None:
            create(session=session, data=data)
            created += 1
            continue
        _check_unique(session, name=None, link=(data.connection_url, data.sysid), exclude_id=row.id)
        for key, value in data.model_dump(mode="json").items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        updated += 1
    return created, updated


def _row(session: Session, vehicle_id: int) -> Vehicle:
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None:
        raise NotFound(
            f"vehicle {vehicle_id} does not exist",
            code="fleet.vehicle_does_exist",
            params={"vehicle_id": vehicle_id},
        )
    return vehicle


def _check_unique(
    session: Session, *, name: str | None, link: tuple[str, int] | None, exclude_id: int | None = None
) -> None:
    if name is not None:
        other = session.exec(select(Vehicle).where(Vehicle.name == name)).first()
        if other is not None and other.id != exclude_id:
            raise Conflict(
                f"a vehicle named {name!r} already exists (id {other.id})",
                code="fleet.vehicle_named_already_exists",
                params={"name": repr(name), "id": other.id},
            )
    if link is not None:
        url, sysid = link
        other = session.exec(
            select(Vehicle).where(Vehicle.connection_url == url, Vehicle.sysid == sysid)
        ).first()
        if other is not None and other.id != exclude_id:
            raise Conflict(
                f"sysid {sysid} is already used on {url} by vehicle {other.id} ({other.name}): vehicles "
                "on one connection need distinct sysids",
                code="fleet.sysid_already_used_vehicle",
                params={"sysid": sysid, "url": url, "id": other.id, "name": other.name},
            )
