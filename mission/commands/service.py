"""A pilot's direct command: judged by the safety gate, recorded, then flown as a flight of the executor.

``goto``, ``orbit``, ``takeoff``, ``hold`` and ``land`` become a manual flight (persisted, recovered after a
restart, supervised until it ends); ``return`` is a routed return flight; ``arm`` and ``payload`` are
single commands through the Commander. Everything the pilot asks is judged by the same gate as any other
movement (role, control, airspace over the flight's span, altitude band, battery); a refusal is audited
and nothing is sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine

from mission.audit import service as audit
from mission.auth.models import Principal
from mission.commands.models import (
    PARAMS,
    CommandRequest,
    CommandResult,
    GotoParams,
    LandParams,
    OrbitParams,
    TakeoffParams,
)
from mission.db import session_scope
from mission.errors import Conflict
from mission.flights import commander as cmd
from mission.flights.executor import FlightExecutor, path_of
from mission.flights.models import FlightPurpose, Leg, LegKind
from mission.missions.supervisor import MissionSupervisor
from mission.payload import service as payload
from mission.payload.actions import ActuatorCommand, PayloadAction
from mission.safety.gate import Action, Asker, FlightPath, GateRequest
from mission.telemetry.events import Event, EventSink

# An orbit is judged as if the pilot kept it up this long (simulated seconds).
ORBIT_JUDGED_S = 60.0
TAKEOFF_DEFAULT_M = 10.0


def _legs(name: str, params: BaseModel, *, here: tuple[float, float] | None) -> list[Leg]:
    """The manual flight a command asks for."""
    if isinstance(params, OrbitParams):
        return [
            Leg(
                kind=LegKind.ORBIT,
                lat=params.lat,
                lon=params.lon,
                alt_m=params.alt_m,
                radius_m=params.radius_m,
                speed_m_s=params.speed_m_s,
                clockwise=params.clockwise,
            )
        ]
    if isinstance(params, GotoParams):
        return [
            Leg(kind=LegKind.GOTO, lat=params.lat, lon=params.lon, alt_m=params.alt_m),
            Leg(kind=LegKind.HOLD),
        ]
    if isinstance(params, TakeoffParams):
        lat, lon = here if here is not None else (None, None)
        return [
            Leg(kind=LegKind.TAKEOFF, lat=lat, lon=lon, alt_m=params.alt_m or TAKEOFF_DEFAULT_M),
            Leg(kind=LegKind.HOLD),
        ]
    if isinstance(params, LandParams) and params.lat is not None and params.lon is not None:
        # Land here: fly to the point, then land there.
        return [
            Leg(kind=LegKind.GOTO, lat=params.lat, lon=params.lon, alt_m=params.alt_m),
            Leg(kind=LegKind.LAND),
        ]
    if name == "land":
        return [Leg(kind=LegKind.LAND)]
    return [Leg(kind=LegKind.HOLD)]


async def execute(
    *,
    engine: Engine,
    flights: FlightExecutor,
    missions: MissionSupervisor,
    hub: EventSink,
    vehicle_id: int,
    request: CommandRequest,
    principal: Principal,
) -> CommandResult:
    """Judge, record and carry out one command; refusals raise with the reason (nothing is sent)."""
    params = PARAMS[request.command].model_validate(request.params)
    name = request.command
    asker = Asker(principal.username, str(principal.role))
    details: dict[str, Any] = {"vehicle_id": vehicle_id, "params": params.model_dump()}
    if name == "payload":
        use = await _payload(
            engine=engine, flights=flights, hub=hub, vehicle_id=vehicle_id, params=params, asker=asker
        )
        return CommandResult(
            vehicle_id=vehicle_id,
            command=name,
            params=params.model_dump(),
            message=f"{use.action} (actuator {use.actuator_index} = {use.value:g})",
        )
    snap = flights.view(vehicle_id).snapshot
    here = (
        (snap.lat, snap.lon) if snap is not None and snap.lat is not None and snap.lon is not None else None
    )
    legs = _legs(name, params, here=here)
    path = path_of(legs, dwell_s=ORBIT_JUDGED_S)
    # Landing somewhere else flies there first: that leg is judged as a goto (airspace, energy).
    action = Action.GOTO if name == "land" and len(legs) > 1 else Action(name)
    verdict = flights.judge(
        GateRequest(
            vehicle_id=vehicle_id, action=action, asker=asker, path=path if name != "return" else None
        )
    )
    if not verdict.ok:
        with session_scope(engine) as session:
            audit.record(
                session=session,
                actor=asker.name,
                action=f"command.{name}.refused",
                target=f"vehicle:{vehicle_id}",
                details={**details, **verdict.details()},
            )
        verdict.raise_if_refused()
    flights.commander.link_of(vehicle_id)  # not connected: refused before anything is recorded
    with session_scope(engine) as session:
        audit.record(
            session=session,
            actor=asker.name,
            action=f"command.{name}",
            target=f"vehicle:{vehicle_id}",
            details=details,
        )
    if name == "arm" and snap is not None and (snap.armed or snap.in_air):
        # Already armed (flying, perhaps on a pack that has sagged since): nothing to send.
        message = "already armed"
    elif name == "arm":
        await flights.commander.send(vehicle_id, cmd.Arm(), actor=asker.name)
        message = "armed"
    elif name == "return":
        await flights.send_home(vehicle_id, asker=asker, reason="pilot's return command", confirm=True)
        message = "returning home"
    else:
        await flights.start(
            vehicle_id=vehicle_id,
            purpose=FlightPurpose.MANUAL,
            legs=legs,
            asker=asker,
            action=action,
            reason=f"pilot's {name} command",
            verdict=verdict,
            confirm=True,
        )
        message = _message(name, params)
    if name in ("hold", "goto", "orbit", "return", "land"):
        # Only once the vehicle is under the new flight is its mission paused or returning.
        missions.note_manual_command(vehicle_id=vehicle_id, command=name, actor=asker.name)
    hub.emit(
        Event(
            kind="vehicle.command",
            vehicle_id=vehicle_id,
            data={"command": name, "params": params.model_dump(), "actor": asker.name},
        )
    )
    return CommandResult(vehicle_id=vehicle_id, command=name, params=params.model_dump(), message=message)


def _message(name: str, params: BaseModel) -> str:
    if isinstance(params, OrbitParams):
        return f"orbiting {params.lat:.5f}, {params.lon:.5f} at {params.radius_m:g} m"
    if isinstance(params, GotoParams):
        return f"going to {params.lat:.5f}, {params.lon:.5f} at {params.alt_m:g} m"
    if isinstance(params, LandParams) and params.lat is not None and params.lon is not None:
        return f"landing at {params.lat:.5f}, {params.lon:.5f}"
    if isinstance(params, TakeoffParams):
        return f"taking off to {params.alt_m or TAKEOFF_DEFAULT_M:g} m"
    return {"hold": "holding position", "land": "landing"}.get(name, name)


async def _payload(
    *, engine: Engine, flights: FlightExecutor, hub: EventSink, vehicle_id: int, params: Any, asker: Asker
) -> Any:
    """``payload`` as a command: the named payload on or off, through the one payload path."""
    profile = flights.view(vehicle_id).profile
    index = profile.actuators.get(params.name)
    if index is None:
        carried = ", ".join(sorted(profile.actuators)) or "none"
        raise Conflict(
            f"vehicle {vehicle_id} has no actuator for {params.name!r} (payloads: {carried})",
            code="commands.vehicle_has_actuator_payloads",
            params={"vehicle_id": vehicle_id, "name": repr(params.name), "carried": carried},
        )
    known = {
        ("speaker", True): PayloadAction.SIREN_ON,
        ("speaker", False): PayloadAction.SIREN_OFF,
        ("spotlight", True): PayloadAction.SPOTLIGHT_ON,
        ("spotlight", False): PayloadAction.SPOTLIGHT_OFF,
    }
    action = known.get((params.name, params.on))
    command = ActuatorCommand(payload=params.name, index=index, value=1.0 if params.on else -1.0)
    return await payload.fire(
        engine=engine,
        flights=flights,
        hub=hub,
        vehicle_id=vehicle_id,
        action=action.value if action else f"{params.name}.{'on' if params.on else 'off'}",
        command=command,
        message_id=None,
        incident_id=None,
        asker=asker,
    )


__all__ = ["FlightPath", "execute"]
