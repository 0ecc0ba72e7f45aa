"""Take, release and hand off control of a vehicle; check who may act on it."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from mission.control.models import ControlRead, VehicleControl
from mission.errors import Conflict, PermissionDenied
from mission.missions.models import utcnow

# Roles that may fly a vehicle; admin may also take control from another pilot (force).
PILOT_ROLES = frozenset({"pilot", "admin"})


def status(*, session: Session, vehicle_id: int) -> ControlRead:
    """Who holds the vehicle now."""
    row = session.get(VehicleControl, vehicle_id)
    if row is None:
        return ControlRead(vehicle_id=vehicle_id, holder=None, since=None)
    return ControlRead(vehicle_id=vehicle_id, holder=row.holder, since=row.since)


def holder_of(*, session: Session, vehicle_id: int) -> str | None:
    """The username holding the vehicle, or None."""
    row = session.get(VehicleControl, vehicle_id)
    return None if row is None else row.holder


def take(
    *, session: Session, vehicle_id: int, username: str, role: str, force: bool = False
) -> tuple[ControlRead, str | None]:
    """Give ``username`` control; returns the new status and who held it before (None if free or self)."""
    if role not in PILOT_ROLES:
        raise PermissionDenied(
            f"role {role} cannot control vehicles (needs pilot or admin)",
            code="control.role_cannot_control_vehicles",
            params={"role": role},
        )
    row = session.get(VehicleControl, vehicle_id)
    previous: str | None = None
    if row is not None and row.holder != username:
        if not (force and role == "admin"):
            raise Conflict(
                f"vehicle {vehicle_id} is controlled by {row.holder}; ask them for a handoff"
                " (an admin may take it with force=true)",
                code="control.vehicle_controlled_ask_them_2",
                params={"vehicle_id": vehicle_id, "holder": row.holder},
            )
        previous = row.holder
        row.holder = username
        row.since = utcnow()
    elif row is None:
        row = VehicleControl(vehicle_id=vehicle_id, holder=username)
        session.add(row)
    session.flush()
    return ControlRead(vehicle_id=vehicle_id, holder=row.holder, since=row.since), previous


def release(*, session: Session, vehicle_id: int, username: str, role: str) -> ControlRead:
    """Give the vehicle up; only its holder (or an admin) may. Releasing a free vehicle is a no-op."""
    row = session.get(VehicleControl, vehicle_id)
    if row is None:
        return ControlRead(vehicle_id=vehicle_id, holder=None, since=None)
    if row.holder != username and role != "admin":
        raise PermissionDenied(
            f"vehicle {vehicle_id} is controlled by {row.holder}, not {username}",
            code="control.vehicle_controlled",
            params={"vehicle_id": vehicle_id, "holder": row.holder, "username": username},
        )
    session.delete(row)
    session.flush()
    return ControlRead(vehicle_id=vehicle_id, holder=None, since=None)


def handoff(
    *,
    session: Session,
    vehicle_id: int,
    username: str,
    role: str,
    to_username: str,
    role_of: Callable[[str], str | None],
) -> ControlRead:
    """Pass control from its holder to ``to_username``, who must exist and be allowed to fly."""
    row = session.get(VehicleControl, vehicle_id)
    if row is None or (row.holder != username and role != "admin"):
        holder = "nobody" if row is None else row.holder
        raise PermissionDenied(
            f"only the holder of vehicle {vehicle_id} can hand it off; it is held by {holder}",
            code="control.only_holder_vehicle_can",
            params={"vehicle_id": vehicle_id, "holder": holder},
        )
    to_role = role_of(to_username)
    if to_role is None:
        raise Conflict(
            f"user {to_username} does not exist; control of vehicle {vehicle_id} stays with {row.holder}",
            code="control.user_does_exist_control",
            params={"to_username": to_username, "vehicle_id": vehicle_id, "holder": row.holder},
        )
    if to_role not in PILOT_ROLES:
        raise Conflict(
            f"user {to_username} has role {to_role} and cannot fly (needs pilot or admin)",
            code="control.user_has_role_cannot",
            params={"to_username": to_username, "to_role": to_role},
        )
    row.holder = to_username
    row.since = utcnow()
    session.flush()
    return ControlRead(vehicle_id=vehicle_id, holder=row.holder, since=row.since)


def require_authority(*, session: Session, vehicle_id: int, username: str, explicit: bool) -> None:
    """Refuse unless ``username`` holds the vehicle (``explicit``) or, for missions, nobody else holds it."""
    holder = holder_of(session=session, vehicle_id=vehicle_id)
    if holder == username:
        return
    if holder is None:
        if explicit:
            raise PermissionDenied(
                f"take control of vehicle {vehicle_id} first (POST /api/v1/vehicles/{vehicle_id}/control)",
                code="control.take_control_vehicle_first",
                params={"vehicle_id": vehicle_id},
            )
        return
    raise PermissionDenied(
        f"vehicle {vehicle_id} is controlled by {holder}; ask them for a handoff",
        code="control.vehicle_controlled_ask_them",
        params={"vehicle_id": vehicle_id, "holder": holder},
    )
