"""The safety gate: a plan judged against the airspace of its whole flight and its vehicle's battery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from mission.airspace.service import Restriction, restrictions_during
from mission.audit.clock import utcnow
from mission.fleet.manager import VehicleProfile
from mission.link.types import TelemetrySnapshot
from mission.missions.models import PlanSpec
from mission.planning import NoFly, PlanContext, PlanPreview, PlanRequest, preview


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Safety margins applied to every mission and command."""

    battery_reserve_pct: float = 20.0
    fence_margin_m: float = 150.0
    clearance_m: float = 20.0  # distance direct commands keep from restricted zones
    max_alt_m: float = 120.0  # ceiling above home for missions and commands (AGL)
    return_alt_m: float = 60.0  # the vehicles' RTL return altitude (PX4 RTL_RETURN_ALT)
    time_margin_s: float = 600.0  # restrictions starting this long after the planned landing count too


@dataclass(frozen=True, slots=True)
class GateResult:
    preview: PlanPreview
    geofence: dict[str, Any] | None


def nofly_from(restrictions: list[Restriction]) -> tuple[NoFly, ...]:
    """Airspace restrictions (no-fly zones and active event areas) as planning sees them."""
    return tuple(
        NoFly(
            name=r.name, geometry=r.geometry, floor_m=r.floor_m, ceiling_m=r.ceiling_m, fence=r.fence_shape()
        )
        for r in restrictions
    )


def restrictions_for_flight(*, session: Session, flight_s: float, config: GateConfig) -> list[Restriction]:
    """Restrictions active at any time from now to the end of a ``flight_s`` flight plus the margin."""
    now = utcnow()
    return restrictions_during(
        session=session, start=now, end=now + timedelta(seconds=max(0.0, flight_s) + config.time_margin_s)
    )


def context_for(
    *,
    session: Session,
    profile: VehicleProfile | None,
    snapshot: TelemetrySnapshot | None,
    config: GateConfig,
    flight_s: float = 0.0,
) -> PlanContext:
    """The context of a ``flight_s`` flight from now: restrictions, home, performance, charge."""
    nofly = nofly_from(restrictions_for_flight(session=session, flight_s=flight_s, config=config))
    limits: dict[str, Any] = {
        "nofly": nofly,
        "reserve_pct": config.battery_reserve_pct,
        "fence_margin_m": config.fence_margin_m,
        "max_alt_m": config.max_alt_m,
        "return_alt_m": config.return_alt_m,
    }
    if profile is None:
        return PlanContext(**limits)
    home = (profile.home_lat, profile.home_lon)
    if (
        snapshot is not None
        and snapshot.home_ok
        and snapshot.home_lat is not None
        and snapshot.home_lon is not None
    ):
        home = (snapshot.home_lat, snapshot.home_lon)
    return PlanContext(
        home=home,
        cruise_speed_m_s=profile.cruise_speed_m_s,
        battery_wh=profile.battery_wh,
        battery_pct=None if snapshot is None or not snapshot.link_up else snapshot.battery_pct,
        endurance_s=profile.endurance_s,
        actuators=dict(profile.actuators),
        **limits,
    )


def evaluate_plan(
    *,
    plan: PlanSpec | PlanRequest,
    session: Session,
    profile: VehicleProfile | None,
    snapshot: TelemetrySnapshot | None,
    config: GateConfig,
) -> GateResult:
    """Preview the plan against every restriction active during its flight; refuse when violations exist.

    The flight time is not known before planning: plan once over [now, now + margin], then again over
    [now, now + flight time + margin] until the set of restrictions no longer grows.
    """
    request = plan if isinstance(plan, PlanRequest) else PlanRequest.model_validate(plan.model_dump())
    flight_s = 0.0
    for _ in range(3):
        ctx = context_for(
            session=session, profile=profile, snapshot=snapshot, config=config, flight_s=flight_s
        )
        result = preview(request, context=ctx)
        flight_s = float(result.metrics.get("flight_time_s") or 0.0)
        wider = {
            r.zone_id for r in restrictions_for_flight(session=session, flight_s=flight_s, config=config)
        }
        if len(wider) <= len(ctx.nofly):
            break
    return GateResult(preview=result, geofence=result.geofence)
