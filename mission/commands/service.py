"""Run one vehicle command: check role and control, airspace and battery, audit, then command the vehicle."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel
from shapely.geometry import Point
from sqlalchemy.engine import Engine

from flightplans.energy import RoutePoint
from flightplans.geodesy import LocalFrame, distance_m
from flightplans.safety import NoFlyZone, check_plan
from mission.airspace.service import Restriction
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.commands.models import MOVING, PARAMS, CommandRequest, CommandResult, GotoParams, OrbitParams
from mission.control import service as control
from mission.db import session_scope
from mission.errors import AirspaceViolation, Conflict, LinkError, PermissionDenied
from mission.fleet.manager import FleetManager, Hub, VehicleProfile
from mission.link.types import TelemetrySnapshot, VehicleLink
from mission.missions.gate import GateConfig, restrictions_for_flight
from mission.missions.supervisor import MissionSupervisor
from mission.telemetry.events import Event

log = logging.getLogger(__name__)

# Same rough power model as planning: ~200 W for a ~2 kg quad cruising.
_CRUISE_POWER_W = 200.0


def airspace_problems(
    *,
    restrictions: list[Restriction],
    start: tuple[float, float] | None,
    target: tuple[float, float],
    alt_m: float,
    radius_m: float | None = None,
    start_alt_m: float | None = None,
    clearance_m: float = 0.0,
    max_alt_m: float | None = None,
) -> list[str]:
    """Why flying from ``start`` (at ``start_alt_m``) to ``target`` at ``alt_m`` (or orbiting it) is refused.

    The leg is checked through the whole altitude band it climbs or descends through, against every
    restriction grown by ``clearance_m``, and against the ``max_alt_m`` ceiling.
    """
    lat, lon = target
    frame = LocalFrame(lat, lon)
    loiter = {"loiter_s": 1.0, "loiter_radius_m": radius_m} if radius_m is not None else {}
    goal = RoutePoint(*frame.point_to_local(lat, lon), alt_m, **loiter)
    points = [goal]
    if start is not None:
        points.insert(
            0, RoutePoint(*frame.point_to_local(*start), alt_m if start_alt_m is None else start_alt_m)
        )
    problems: list[str] = []
    if max_alt_m is not None and alt_m > max_alt_m:
        problems.append(f"{alt_m:g} m is above the {max_alt_m:g} m altitude ceiling")
    for zone in restrictions:
        local = frame.to_local(zone.geometry)
        label = (
            f"{zone.kind.value.replace('_', '-')} zone {zone.name} ({zone.floor_m:g}-{zone.ceiling_m:g} m,"
            f" {clearance_m:g} m clearance)"
        )
        near_m = clearance_m + (radius_m or 0.0)
        if zone.floor_m <= alt_m <= zone.ceiling_m and Point(goal.xy).distance(local) < near_m:
            what = "the target" if radius_m is None else f"the {radius_m:g} m orbit"
            inside = Point(goal.xy).distance(local) <= (radius_m or 0.0)
            how = "is inside" if inside else f"comes closer than {clearance_m:g} m to"
            problems.append(f"{what} at {lat:.5f}, {lon:.5f} {how} {label}")
            continue
        if len(points) < 2:
            continue
        found = check_plan(
            points,
            home=points[0].xy,
            nofly=[NoFlyZone(polygon=local, floor_m=zone.floor_m, ceiling_m=zone.ceiling_m, name=zone.name)],
            clearance_m=clearance_m,
            return_home=False,
        )
        # The outbound legs (the climb from the ground to where the vehicle is now) were flown already.
        if any(v.where.kind != "outbound" for v in found):
            problems.append(
                f"the straight leg to {lat:.5f}, {lon:.5f} crosses {label}; plan a route around it"
            )
    return list(dict.fromkeys(problems))


def _position(snap: TelemetrySnapshot | None) -> tuple[float, float] | None:
    if snap is None or snap.lat is None or snap.lon is None:
        return None
    return (snap.lat, snap.lon)


def battery_problem(
    *,
    command: str,
    snap: TelemetrySnapshot | None,
    profile: VehicleProfile,
    reserve_pct: float,
    params: BaseModel,
) -> str | None:
    """Why the battery does not allow ``command`` (below reserve, or not enough to get there and back)."""
    if command not in MOVING:
        return None
    if snap is None or not snap.link_up or snap.battery_pct is None:
        return f"no battery reading from the vehicle; {command} refused until it reports its charge"
    pct = snap.battery_pct
    if pct < reserve_pct:
        return f"battery {pct:.0f}% is below the {reserve_pct:g}% reserve; only hold, return and land allowed"
    if isinstance(params, GotoParams):
        here = _position(snap)
        if here is None:
            return f"no position from the vehicle; {command} refused until it reports one"
        out_m = distance_m(here[0], here[1], params.lat, params.lon)
        back_m = distance_m(params.lat, params.lon, profile.home_lat, profile.home_lon)
        extra_s = 60.0 if isinstance(params, OrbitParams) else 0.0
        need_wh = _CRUISE_POWER_W * ((out_m + back_m) / profile.cruise_speed_m_s + extra_s) / 3600.0
        usable_wh = profile.battery_wh * (pct - reserve_pct) / 100.0
        if need_wh > usable_wh:
            return (
                f"going to {params.lat:.5f}, {params.lon:.5f} and home needs {need_wh:.0f} Wh;"
                f" the battery at {pct:.0f}%"
                f" has {usable_wh:.0f} Wh above its {reserve_pct:g}% reserve"
            )
    return None


async def execute(
    *,
    engine: Engine,
    fleet: FleetManager,
    hub: Hub,
    missions: MissionSupervisor,
    gate: GateConfig,
    vehicle_id: int,
    request: CommandRequest,
    principal: Principal,
) -> CommandResult:
    """Check everything, record the command, then send it; refusals raise with the reason."""
    params = PARAMS[request.command].model_validate(request.params)
    name = request.command
    profile = fleet.profile(vehicle_id)
    snap = fleet.latest(vehicle_id)
    actuator: int | None = None
    with session_scope(engine) as session:
        control.require_authority(
            session=session, vehicle_id=vehicle_id, username=principal.username, explicit=True
        )
        # A vehicle sent somewhere may stay up until its battery runs out: zones starting by then count.
        up_s = profile.endurance_s * ((snap.battery_pct if snap and snap.battery_pct else 100.0) / 100.0)
        restrictions = restrictions_for_flight(session=session, flight_s=up_s, config=gate)
    if principal.role not in control.PILOT_ROLES:
        raise PermissionDenied(f"role {principal.role} cannot command vehicles")
    problems: list[str] = []
    here = _position(snap)
    if name in MOVING and here is None:
        problems.append(f"vehicle {vehicle_id} reports no position; {name} refused until it does")
    if isinstance(params, GotoParams):
        problems += airspace_problems(
            restrictions=restrictions,
            start=here,
            start_alt_m=snap.alt_rel_m if snap is not None else None,
            target=(params.lat, params.lon),
            alt_m=params.alt_m,
            radius_m=params.radius_m if isinstance(params, OrbitParams) else None,
            clearance_m=gate.clearance_m,
            max_alt_m=gate.max_alt_m,
        )
    if name == "takeoff" and here is not None:
        climb_to_m = params.alt_m or 10.0  # type: ignore[attr-defined]
        if climb_to_m > gate.max_alt_m:
            problems.append(f"{climb_to_m:g} m is above the {gate.max_alt_m:g} m altitude ceiling")
        problems += [
            f"taking off to {climb_to_m:g} m here climbs into {z.kind.value.replace('_', '-')} zone {z.name}"
            f" ({z.floor_m:g}-{z.ceiling_m:g} m, {gate.clearance_m:g} m clearance)"
            for z in restrictions
            if z.floor_m <= climb_to_m
            and LocalFrame(*here).to_local(z.geometry).distance(Point(0.0, 0.0)) < gate.clearance_m
        ]
    battery = battery_problem(
        command=name, snap=snap, profile=profile, reserve_pct=gate.battery_reserve_pct, params=params
    )
    if battery:
        problems.append(battery)
    if name == "payload":
        payload = params.name  # type: ignore[attr-defined]
        actuator = profile.actuators.get(payload)
        if actuator is None:
            carried = ", ".join(sorted(profile.actuators)) or "none"
            raise Conflict(f"vehicle {vehicle_id} has no actuator for {payload!r} (payloads: {carried})")
    details: dict[str, Any] = {"vehicle_id": vehicle_id, "params": params.model_dump()}
    if problems:
        with session_scope(engine) as session:
            audit.record(
                session=session,
                actor=principal.username,
                action=f"command.{name}.refused",
                target=f"vehicle:{vehicle_id}",
                details={**details, "problems": problems},
            )
        raise AirspaceViolation(f"{name} refused: " + "; ".join(problems), violations=list(problems))
    link = fleet.link(vehicle_id)
    with session_scope(engine) as session:
        audit.record(
            session=session,
            actor=principal.username,
            action=f"command.{name}",
            target=f"vehicle:{vehicle_id}",
            details=details,
        )
    try:
        if name == "return":
            await missions.send_home(vehicle_id)
            message = "returning home"
        else:
            message = await _send(link, name, params, actuator)
    except LinkError as err:
        with session_scope(engine) as session:
            audit.record(
                session=session,
                actor=principal.username,
                action=f"command.{name}.failed",
                target=f"vehicle:{vehicle_id}",
                details={**details, "error": str(err)},
            )
        raise
    if name in ("hold", "goto", "orbit", "return", "land"):
        # Only once the vehicle took the command is its mission paused or returning.
        missions.note_manual_command(vehicle_id=vehicle_id, command=name, actor=principal.username)
    hub.emit(
        Event(
            kind="payload.used" if name == "payload" else "vehicle.command",
            vehicle_id=vehicle_id,
            data={"command": name, "params": params.model_dump(), "actor": principal.username},
        )
    )
    return CommandResult(vehicle_id=vehicle_id, command=name, params=params.model_dump(), message=message)


async def _send(link: VehicleLink, name: str, params: BaseModel, actuator: int | None) -> str:
    if name == "arm":
        await link.arm()
        return "armed"
    if name == "takeoff":
        alt = params.alt_m  # type: ignore[attr-defined]
        await link.takeoff(alt)
        return "taking off" + (f" to {alt:g} m" if alt else "")
    if name == "hold":
        await link.hold()
        return "holding position"
    if isinstance(params, OrbitParams):
        await link.orbit(
            params.lat,
            params.lon,
            params.alt_m,
            radius_m=params.radius_m,
            speed_m_s=params.speed_m_s,
            clockwise=params.clockwise,
        )
        return f"orbiting {params.lat:.5f}, {params.lon:.5f} at {params.radius_m:g} m"
    if isinstance(params, GotoParams):
        await link.goto(params.lat, params.lon, params.alt_m)
        return f"going to {params.lat:.5f}, {params.lon:.5f} at {params.alt_m:g} m"
    if name == "return":
        await link.return_to_launch()
        return "returning home"
    if name == "land":
        await link.land()
        return "landing"
    assert actuator is not None
    on = params.on  # type: ignore[attr-defined]
    await link.set_actuator(actuator, 1.0 if on else -1.0)
    return f"{params.name} {'on' if on else 'off'} (actuator {actuator})"  # type: ignore[attr-defined]
