"""The safety gate: a mission's plan judged against the airspace of now and its vehicle's battery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from mission.airspace.service import Restriction, active_restrictions
from mission.fleet.manager import VehicleProfile
from mission.link.types import TelemetrySnapshot
from mission.missions.models import PlanSpec
from mission.planning import NoFly, PlanContext, PlanPreview, PlanRequest, preview


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Safety margins applied to every mission and command."""

    battery_reserve_pct: float = 20.0
    fence_margin_m: float = 150.0


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


def context_for(
    *,
    session: Session,
    profile: VehicleProfile | None,
    snapshot: TelemetrySnapshot | None,
    config: GateConfig,
) -> PlanContext:
    """The planning context of now: active restrictions, the vehicle's home, performance and charge."""
    nofly = nofly_from(active_restrictions(session=session))
    if profile is None:
        return PlanContext(
            nofly=nofly, reserve_pct=config.battery_reserve_pct, fence_margin_m=config.fence_margin_m
        )
    home = (profile.home_lat, profile.home_lon)
    if (
        snapshot is not None
        and snapshot.home_ok
        and snapshot.home_lat is not None
        and snapshot.home_lon is not None
    ):
        home = (snapshot.home_lat, snapshot.home_lon)
    return PlanContext(
        nofly=nofly,
        home=home,
        cruise_speed_m_s=profile.cruise_speed_m_s,
        battery_wh=profile.battery_wh,
        battery_pct=None if snapshot is None or not snapshot.link_up else snapshot.battery_pct,
        endurance_s=profile.endurance_s,
        reserve_pct=config.battery_reserve_pct,
        actuators=dict(profile.actuators),
        fence_margin_m=config.fence_margin_m,
    )


def evaluate_plan(
    *,
    plan: PlanSpec | PlanRequest,
    session: Session,
    profile: VehicleProfile | None,
    snapshot: TelemetrySnapshot | None,
    config: GateConfig,
) -> GateResult:
    """Preview the plan in today's context; the caller refuses it when ``preview.violations`` is not empty."""
    request = plan if isinstance(plan, PlanRequest) else PlanRequest.model_validate(plan.model_dump())
    ctx = context_for(session=session, profile=profile, snapshot=snapshot, config=config)
    result = preview(request, context=ctx)
    return GateResult(preview=result, geofence=result.geofence)
