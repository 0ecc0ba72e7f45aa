"""Payload use: the message library, live actions sent to a vehicle, and mission items; all recorded."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from mission.audit import service as audit
from mission.auth.roles import Role
from mission.control import service as control
from mission.db import session_scope
from mission.errors import Conflict, NotFound, PermissionDenied, SkywardenError
from mission.fleet.manager import VehicleProfile
from mission.incidents.models import Incident, IncidentState
from mission.link.types import TelemetrySnapshot, VehicleLink
from mission.payload.actions import ActuatorCommand, PayloadAction, actuator_command
from mission.payload.models import MessageCreate, PayloadMessage, PayloadRequest, PayloadUse
from mission.telemetry.events import Event, EventSink

OPEN_STATES = (IncidentState.ASSIGNED, IncidentState.EN_ROUTE, IncidentState.ON_SCENE)


class PayloadFleet(Protocol):
    """What payload use needs of the fleet manager."""

    def profile(self, vehicle_id: int) -> VehicleProfile: ...
    def latest(self, vehicle_id: int) -> TelemetrySnapshot | None: ...
    def link(self, vehicle_id: int) -> VehicleLink: ...


def create_message(*, session: Session, data: MessageCreate) -> PayloadMessage:
    """Add a message to the library; Conflict if its name or slot is taken."""
    clash = session.exec(
        select(PayloadMessage).where(
            (col(PayloadMessage.name) == data.name) | (col(PayloadMessage.slot) == data.slot)
        )
    ).first()
    if clash is not None:
        what = f"name {data.name!r}" if clash.name == data.name else f"slot {data.slot}"
        raise Conflict(f"message {what} is already used by message {clash.id} ({clash.name!r})")
    row = PayloadMessage(**data.model_dump())
    session.add(row)
    session.flush()
    return row


def get_message(*, session: Session, message_id: int) -> PayloadMessage:
    row = session.get(PayloadMessage, message_id)
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return row


def list_messages(*, session: Session, limit: int, offset: int) -> tuple[list[PayloadMessage], int]:
    rows = session.exec(select(PayloadMessage).order_by(col(PayloadMessage.slot)).offset(offset).limit(limit))
    total = session.exec(select(func.count()).select_from(PayloadMessage)).one()
    return list(rows.all()), int(total)


def list_uses(
    *, session: Session, limit: int, offset: int, vehicle_id: int | None = None
) -> tuple[list[PayloadUse], int]:
    query = select(PayloadUse)
    count = select(func.count()).select_from(PayloadUse)
    if vehicle_id is not None:
        query = query.where(col(PayloadUse.vehicle_id) == vehicle_id)
        count = count.where(col(PayloadUse.vehicle_id) == vehicle_id)
    rows = session.exec(query.order_by(col(PayloadUse.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(count).one())


def resolve(
    *, session: Session, profile: VehicleProfile, action: PayloadAction, message_id: int | None
) -> ActuatorCommand:
    """The actuator command for ``action`` on the vehicle, with the library message's slot if it plays one."""
    slot = None
    if message_id is not None and action is PayloadAction.SPEAKER_PLAY:
        slot = get_message(session=session, message_id=message_id).slot
    return actuator_command(action, actuators=profile.actuators, vehicle=profile.name, message_slot=slot)


def _record(
    session: Session,
    *,
    actor: str,
    profile: VehicleProfile,
    request: PayloadRequest,
    command: ActuatorCommand,
    snap: TelemetrySnapshot | None,
    via: str,
    ok: bool,
    error: str = "",
    mission_id: int | None = None,
    audited: bool = False,
) -> PayloadUse:
    use = PayloadUse(
        actor=actor,
        vehicle_id=profile.id,
        action=request.action.value,
        message_id=request.message_id,
        actuator_index=command.index,
        value=command.value,
        via=via,
        lat=snap.lat if snap else None,
        lon=snap.lon if snap else None,
        alt_rel_m=snap.alt_rel_m if snap else None,
        incident_id=request.incident_id,
        mission_id=mission_id,
        ok=ok,
        error=error[:500],
    )
    session.add(use)
    session.flush()
    if audited:  # the intent was audited before sending; a success needs no second entry
        return use
    audit.record(
        session=session,
        actor=actor,
        action=f"payload.{request.action.value}" + ("" if ok else ".failed"),
        target=f"vehicle:{profile.id}",
        details={
            "use_id": use.id,
            "index": command.index,
            "value": command.value,
            "message_id": request.message_id,
            "via": via,
            "lat": use.lat,
            "lon": use.lon,
            "incident_id": request.incident_id,
            **({"error": error} if error else {}),
        },
    )
    return use


def require_payload_authority(
    *, session: Session, vehicle_id: int, username: str, role: str, incident_id: int | None
) -> int | None:
    """Who may fire a payload live; returns the incident the use serves, if any.

    The rule: whoever holds control of the vehicle (as /commands payload needs), or, when no pilot holds
    it, a dispatcher (or admin) on a vehicle assigned to an open incident (assigned, en route, on scene).
    PermissionDenied otherwise, naming what to do.
    """
    holder = control.holder_of(session=session, vehicle_id=vehicle_id)
    if holder == username:
        return incident_id
    if holder is not None:
        raise PermissionDenied(f"vehicle {vehicle_id} is controlled by {holder}; ask them for a handoff")
    if role in (Role.dispatcher.value, Role.admin.value):
        query = (
            select(Incident)
            .where(col(Incident.vehicle_id) == vehicle_id)
            .where(col(Incident.state).in_([s.value for s in OPEN_STATES]))
        )
        if incident_id is not None:
            query = query.where(col(Incident.id) == incident_id)
        incident = session.exec(query.order_by(col(Incident.id).desc())).first()
        if incident is not None:
            return incident.id
        which = f"incident {incident_id}" if incident_id is not None else "an open incident"
        raise PermissionDenied(
            f"vehicle {vehicle_id} is not assigned to {which}; a dispatcher may use payloads only on a"
            f" vehicle serving an open incident, otherwise take control of it first"
            f" (POST /api/v1/vehicles/{vehicle_id}/control)"
        )
    raise PermissionDenied(
        f"take control of vehicle {vehicle_id} first (POST /api/v1/vehicles/{vehicle_id}/control)"
    )


async def use_live(
    *,
    engine: Engine,
    fleet: PayloadFleet,
    hub: EventSink,
    vehicle_id: int,
    request: PayloadRequest,
    actor: str,
    role: str,
) -> PayloadUse:
    """Send a payload action now (DO_SET_ACTUATOR); audited before sending, the outcome recorded after."""
    profile = fleet.profile(vehicle_id)
    with session_scope(engine) as session:
        incident_id = require_payload_authority(
            session=session,
            vehicle_id=vehicle_id,
            username=actor,
            role=role,
            incident_id=request.incident_id,
        )
        command = resolve(
            session=session, profile=profile, action=request.action, message_id=request.message_id
        )
    request = request.model_copy(update={"incident_id": incident_id})
    snap = fleet.latest(vehicle_id)
    with session_scope(engine) as session:
        audit.record(
            session=session,
            actor=actor,
            action=f"payload.{request.action.value}",
            target=f"vehicle:{profile.id}",
            details={
                "index": command.index,
                "value": command.value,
                "message_id": request.message_id,
                "via": "live",
                "lat": snap.lat if snap else None,
                "lon": snap.lon if snap else None,
                "incident_id": incident_id,
            },
        )
    try:
        link = fleet.link(vehicle_id)
        await link.set_actuator(command.index, command.value)
    except SkywardenError as err:
        with session_scope(engine) as session:
            _record(
                session,
                actor=actor,
                profile=profile,
                request=request,
                command=command,
                snap=snap,
                via="live",
                ok=False,
                error=str(err),
            )
        raise
    with session_scope(engine) as session:
        use = _record(
            session,
            actor=actor,
            profile=profile,
            request=request,
            command=command,
            snap=snap,
            via="live",
            ok=True,
            audited=True,
        )
    hub.emit(
        Event(
            kind="payload.used",
            vehicle_id=vehicle_id,
            data={
                "action": request.action.value,
                "index": command.index,
                "value": command.value,
                "actor": actor,
                "lat": use.lat,
                "lon": use.lon,
                "use_id": use.id,
            },
        )
    )
    return use


def record_mission_use(
    *,
    session: Session,
    profile: VehicleProfile,
    request: PayloadRequest,
    actor: str,
    mission_id: int | None,
    at_latlon: tuple[float, float] | None = None,
) -> tuple[ActuatorCommand, PayloadUse]:
    """The mission item for a payload action planned into a mission, recorded where it will happen."""
    command = resolve(session=session, profile=profile, action=request.action, message_id=request.message_id)
    use = _record(
        session,
        actor=actor,
        profile=profile,
        request=request,
        command=command,
        snap=None,
        via="mission",
        ok=True,
        mission_id=mission_id,
    )
    if at_latlon is not None:
        use.lat, use.lon = at_latlon
        session.add(use)
        session.flush()
    return command, use
