"""The fleet as dispatch sees it: each registered vehicle's position, battery, activity and performance."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flightplans.geodesy import distance_m
from mission.control import service as control
from mission.dispatch.energy import Performance
from mission.dispatch.ranking import Activity, VehicleState
from mission.fleet.manager import VehicleProfile
from mission.incidents.models import Incident, IncidentState
from mission.link.types import FlightMode, TelemetrySnapshot
from mission.missions.models import Mission
from mission.missions.states import IN_FLIGHT
from mission.patrols.models import PatrolRun, RunStatus

# Within this distance of its home a vehicle on the ground counts as docked.
DOCKED_WITHIN_M = 60.0


class FleetReader(Protocol):
    """What dispatch reads of the fleet manager."""

    def profiles(self) -> list[VehicleProfile]: ...
    def latest(self, vehicle_id: int) -> TelemetrySnapshot | None: ...


@dataclass(frozen=True, slots=True)
class PerformanceDefaults:
    """How a profile (cruise speed, endurance, battery) becomes a power model."""

    takeoff_s: float = 5.0
    climb_rate_m_s: float = 3.0
    descent_rate_m_s: float = 2.0
    hover_ratio: float = 0.95  # hover power / cruise power
    climb_ratio: float = 1.4  # as the gate's energy model (mission.safety.rules.energy_model)
    reserve_pct: float = 20.0


def performance(profile: VehicleProfile, defaults: PerformanceDefaults) -> Performance:
    """A power model from a registry profile: endurance at cruise on a full battery gives cruise power."""
    cruise_w = profile.battery_wh * 3600.0 / profile.endurance_s
    return Performance(
        cruise_speed_m_s=profile.cruise_speed_m_s,
        climb_rate_m_s=defaults.climb_rate_m_s,
        descent_rate_m_s=defaults.descent_rate_m_s,
        takeoff_s=defaults.takeoff_s,
        cruise_power_w=cruise_w,
        hover_power_w=cruise_w * defaults.hover_ratio,
        climb_power_w=cruise_w * defaults.climb_ratio,
        battery_wh=profile.battery_wh,
        reserve_pct=defaults.reserve_pct,
    )


@dataclass
class DockLedger:
    """Charge tracking at docks: when each vehicle landed home, with what charge, at what rate it charges."""

    charge_pct_per_min: float = 2.5
    _landed: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (monotonic, pct)

    def observe(self, vehicle_id: int, *, docked: bool, battery_pct: float | None) -> None:
        """Note a vehicle's state; starts its charging clock when it arrives on its dock."""
        if not docked or battery_pct is None:
            self._landed.pop(vehicle_id, None)
        elif vehicle_id not in self._landed:
            self._landed[vehicle_id] = (time.monotonic(), battery_pct)

    def status(self, vehicle_id: int, battery_pct: float | None) -> dict[str, float | bool | None]:
        """Charging since (s), charge now and seconds until full for a docked vehicle."""
        entry = self._landed.get(vehicle_id)
        if entry is None or battery_pct is None:
            return {"docked": False, "charging_s": None, "battery_pct": battery_pct, "full_in_s": None}
        since, _ = entry
        full_in_s = max(0.0, 100.0 - battery_pct) / self.charge_pct_per_min * 60.0
        return {
            "docked": True,
            "charging_s": time.monotonic() - since,
            "battery_pct": battery_pct,
            "full_in_s": full_in_s,
        }


def _busy_sets(
    engine: Engine, vehicle_ids: Iterable[int]
) -> tuple[set[int], dict[int, int | None], dict[int, str]]:
    """Vehicles on incidents; vehicles flying missions (-> their patrol run id or None); pilots in control."""
    with Session(engine) as session:
        on_incident = {
            int(v)
            for v in session.exec(
                select(Incident.vehicle_id).where(
                    col(Incident.state).in_(
                        [
                            IncidentState.ASSIGNED.value,
                            IncidentState.EN_ROUTE.value,
                            IncidentState.ON_SCENE.value,
                        ]
                    )
                )
            ).all()
            if v is not None
        }
        flying = session.exec(
            select(Mission.id, Mission.vehicle_id).where(col(Mission.state).in_([s.value for s in IN_FLIGHT]))
        ).all()
        runs = dict(
            session.exec(
                select(PatrolRun.mission_id, PatrolRun.id).where(
                    col(PatrolRun.status) == RunStatus.LAUNCHED.value
                )
            ).all()
        )
        missions = {int(vid): runs.get(mid) for mid, vid in flying}
        holders: dict[int, str] = {}
        for vid in vehicle_ids:
            holder = control.holder_of(session=session, vehicle_id=vid)
            if holder is not None:
                holders[vid] = holder
    return on_incident, missions, holders


def vehicle_states(
    *,
    engine: Engine,
    fleet: FleetReader,
    defaults: PerformanceDefaults,
    ledger: DockLedger | None = None,
    exclude: Iterable[int] = (),
) -> list[VehicleState]:
    """Every registered vehicle as a dispatch candidate, with what it is doing now."""
    profiles = fleet.profiles()
    on_incident, missions, holders = _busy_sets(engine, [p.id for p in profiles])
    skip = set(exclude)
    out: list[VehicleState] = []
    for p in profiles:
        if p.id in skip:
            continue
        snap = fleet.latest(p.id)
        link_up = snap is not None and snap.link_up and snap.lat is not None and snap.lon is not None
        lat = snap.lat if snap is not None and snap.lat is not None else p.home_lat
        lon = snap.lon if snap is not None and snap.lon is not None else p.home_lon
        alt = snap.alt_rel_m if snap is not None and snap.alt_rel_m is not None else 0.0
        battery = snap.battery_pct if snap is not None and snap.battery_pct is not None else 0.0
        activity = _activity(p, snap, on_incident=on_incident, missions=missions, holder=holders.get(p.id))
        if ledger is not None:
            ledger.observe(p.id, docked=activity is Activity.DOCKED, battery_pct=battery if link_up else None)
        out.append(
            VehicleState(
                vehicle_id=p.id,
                name=p.name,
                lat=lat,
                lon=lon,
                alt_rel_m=alt,
                activity=activity,
                battery_pct=battery,
                home_lat=p.home_lat,
                home_lon=p.home_lon,
                perf=performance(p, defaults),
                capabilities=frozenset(p.capabilities),
                link_up=link_up,
                patrol_run_id=missions.get(p.id),
            )
        )
    return out


def _activity(
    p: VehicleProfile,
    snap: TelemetrySnapshot | None,
    *,
    on_incident: set[int],
    missions: dict[int, int | None],
    holder: str | None,
) -> Activity:
    if p.id in on_incident:
        return Activity.INCIDENT
    if holder is not None:
        return Activity.UNAVAILABLE  # a pilot has it
    if snap is None:
        return Activity.UNAVAILABLE
    if snap.in_air:
        low = (snap.alt_rel_m or 0.0) < 10.0
        if snap.mode is FlightMode.LAND or (snap.mode is FlightMode.RETURN and low):
            return Activity.UNAVAILABLE  # touching down: PX4 refuses a reposition now
        if snap.mode is FlightMode.RETURN:
            return Activity.RETURNING
        if p.id in missions:
            return Activity.PATROL if missions[p.id] is not None else Activity.UNAVAILABLE
        return Activity.IDLE_AIRBORNE
    if p.id in missions or snap.armed:
        return Activity.UNAVAILABLE  # about to launch something else
    if snap.lat is None or snap.lon is None:
        return Activity.UNAVAILABLE
    if distance_m(snap.lat, snap.lon, p.home_lat, p.home_lon) > DOCKED_WITHIN_M:
        return Activity.UNAVAILABLE  # landed away from its dock
    return Activity.DOCKED
