"""Payload use: the message library, live actions sent to a vehicle, and mission items; all recorded."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from mission.audit import service as audit
from mission.db import session_scope
from mission.errors import Conflict, LinkError, NotFound, SkywardenError
from mission.fleet.manager import VehicleProfile
from mission.flights.commander import Commander, Refs, SetActuator
from mission.incidents.models import Incident, IncidentState
from mission.link.types import ActuatorResult, TelemetrySnapshot
from mission.payload.actions import ActuatorCommand, PayloadAction, actuator_command
from mission.payload.models import MessageCreate, PayloadMessage, PayloadRequest, PayloadUse
from mission.safety.gate import Action, Asker, GateRequest, VehicleView, Verdict
from mission.telemetry.events import Event, EventSink

OPEN_STATES = (IncidentState.ASSIGNED, IncidentState.EN_ROUTE, IncidentState.ON_SCENE)


class Payloads(Protocol):
    """What payload use needs of the flight executor: the gate, the vehicle, the Commander."""

    commander: Commander

    def judge(self, request: GateRequest) -> Verdict: ...
    def refuse(self, verdict: Verdict, *, audit_action: str) -> None: ...
    def view(self, vehicle_id: int) -> VehicleView: ...


def create_message(*, session: Session, data: MessageCreate) -> PayloadMessage:
    """Add a message to the library; Conflict if its name or slot is taken."""
    clash = session.exec(
        select(PayloadMessage).where(
            (col(PayloadMessage.name) == data.name) | (col(PayloadMessage.slot) == data.slot)
        )
    ).first()
    if clash is not None:
        what = f"name {data.name!r}" if clash.name == data.name else f"slot {data.slot}"
        raise Conflict(
            f"message {what} is already used by message {clash.id} ({clash.name!r})",
            code="payload.message_already_used_message",
            params={"what": what, "id": clash.id, "name": repr(clash.name)},
        )
    row = PayloadMessage(**data.model_dump())
    session.add(row)
    session.flush()
    return row


def update_message(*, session: Session, message_id: int, data: MessageCreate) -> PayloadMessage:
    """Change a library message; Conflict if its new name or slot is another message's."""
    row = get_message(session=session, message_id=message_id)
    clash = session.exec(
        select(PayloadMessage)
        .where((col(PayloadMessage.name) == data.name) | (col(PayloadMessage.slot) == data.slot))
        .where(col(PayloadMessage.id) != message_id)
    ).first()
    if clash is not None:
        what = f"name {data.name!r}" if clash.name == data.name else f"slot {data.slot}"
        raise Conflict(
            f"message {what} is already used by message {clash.id} ({clash.name!r})",
            code="payload.message_already_used_message",
            params={"what": what, "id": clash.id, "name": repr(clash.name)},
        )
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return row


def delete_message(*, session: Session, message_id: int) -> PayloadMessage:
    """Remove a message from the library (its past uses keep their record)."""
    row = get_message(session=session, message_id=message_id)
    session.delete(row)
    session.flush()
    return row


def get_message(*, session: Session, message_id: int) -> PayloadMessage:
    row = session.get(PayloadMessage, message_id)
    if row is None:
        raise NotFound(
            f"message {message_id} does not exist",
            code="payload.message_does_exist",
            params={"message_id": message_id},
        )
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
    if message_id is not None and action in (PayloadAction.SPEAKER_PLAY, PayloadAction.SPEAKER_LOOP):
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


async def fire(
    *,
    engine: Engine,
    flights: Payloads,
    hub: EventSink,
    vehicle_id: int,
    action: str,
    command: ActuatorCommand,
    message_id: int | None,
    incident_id: int | None,
    asker: Asker,
) -> PayloadUse:
    """The one path of a live payload action (DO_SET_ACTUATOR), whoever asks and however.

    The gate's payload rule decides who may (``mission.safety.gate.payload_authority_problem``); the
    command is audited before it is sent (a vehicle that is not connected is refused before anything is
    written, so no entry ever records a use that did not happen); the outcome is kept in the use log.
    """
    verdict = flights.judge(
        GateRequest(vehicle_id=vehicle_id, action=Action.PAYLOAD, asker=asker, incident_id=incident_id)
    )
    if not verdict.ok:
        flights.refuse(verdict, audit_action=f"payload.{action}.refused")
    if incident_id is None:
        incident_id = _serving_incident(engine, vehicle_id)
    view = flights.view(vehicle_id)
    snap = view.snapshot
    flights.commander.link_of(vehicle_id)
    refs = Refs(
        incident_id=incident_id,
        extra={"payload": action, "message_id": message_id, "lat": snap.lat if snap else None},
    )
    error = ""
    failure: SkywardenError | None = None
    answer: object = None
    try:
        answer = await flights.commander.send(
            vehicle_id, SetActuator(command.index, command.value), actor=asker.name, refs=refs
        )
    except SkywardenError as err:
        error, failure = str(err), err
    result = answer if isinstance(answer, ActuatorResult) else ActuatorResult(False, "no output feedback")
    with session_scope(engine) as session:
        use = PayloadUse(
            actor=asker.name,
            vehicle_id=vehicle_id,
            action=action,
            message_id=message_id,
            actuator_index=command.index,
            value=command.value,
            via="live",
            lat=snap.lat if snap else None,
            lon=snap.lon if snap else None,
            alt_rel_m=snap.alt_rel_m if snap else None,
            incident_id=incident_id,
            ok=not error,
            error=error[:500],
            details={} if error else {"delivery": result.delivery, "delivery_note": result.note[:300]},
        )
        session.add(use)
        session.flush()
    if error:
        code = (failure.code if failure is not None else None) or "link.failed"
        params = failure.params if failure is not None else {}
        raise LinkError(error, vehicle_id=vehicle_id, action=action, code=code, params=params)
    hub.emit(
        Event(
            kind="payload.used",
            vehicle_id=vehicle_id,
            data={
                "action": action,
                "index": command.index,
                "value": command.value,
                "actor": asker.name,
                "lat": use.lat,
                "lon": use.lon,
                "use_id": use.id,
                "incident_id": incident_id,
                "delivery": use.delivery,
            },
        )
    )
    return use


def _serving_incident(engine: Engine, vehicle_id: int) -> int | None:
    with Session(engine) as session:
        row = session.exec(
            select(Incident)
            .where(col(Incident.vehicle_id) == vehicle_id)
            .where(col(Incident.state).in_([s.value for s in OPEN_STATES]))
            .order_by(col(Incident.id).desc())
        ).first()
        return row.id if row is not None else None


async def use_live(
    *,
    engine: Engine,
    flights: Payloads,
    hub: EventSink,
    vehicle_id: int,
    request: PayloadRequest,
    asker: Asker,
) -> PayloadUse:
    """A library action (``speaker.play`` of a message, siren, spotlight) sent now through ``fire``."""
    profile = flights.view(vehicle_id).profile
    with session_scope(engine) as session:
        command = resolve(
            session=session, profile=profile, action=request.action, message_id=request.message_id
        )
    return await fire(
        engine=engine,
        flights=flights,
        hub=hub,
        vehicle_id=vehicle_id,
        action=request.action.value,
        command=command,
        message_id=request.message_id,
        incident_id=request.incident_id,
        asker=asker,
    )


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
