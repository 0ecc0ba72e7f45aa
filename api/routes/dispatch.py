"""Dispatch over HTTP: explain a choice before making it, response metrics, docks, wind, coverage gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import col, func, select

from api.deps import AnyRole, SessionDep, require_roles
from api.pagination import Page, Paging
from api.routes.incidents import DecisionOut, DispatcherDep
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.dispatch.dispatcher import decision_json
from mission.dispatch.energy import Wind
from mission.dispatch.ranking import DispatchRequest
from mission.incidents import service as incidents
from mission.incidents.metrics import ResponseSummary
from mission.patrols.models import CoverageGap, CoverageGapRead

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])
DispatcherRole = Annotated[Principal, Depends(require_roles(Role.dispatcher))]


class WindIn(BaseModel):
    """Wind at patrol altitude: ``speed_m_s`` blowing FROM ``from_deg`` (clockwise from north)."""

    model_config = ConfigDict(extra="forbid")

    speed_m_s: float = PydField(ge=0, le=40)
    from_deg: float = PydField(ge=0, lt=360)


class PercentilesOut(BaseModel):
    count: int
    p50_s: float | None
    p90_s: float | None


class ResponseMetricsOut(BaseModel):
    """p50/p90 seconds from request to assigned, airborne and on scene."""

    incidents: int
    assigned: PercentilesOut
    airborne: PercentilesOut
    on_scene: PercentilesOut


def _metrics(summary: ResponseSummary) -> ResponseMetricsOut:
    def p(x: Any) -> PercentilesOut:
        return PercentilesOut(count=x.count, p50_s=x.p50_s, p90_s=x.p90_s)

    return ResponseMetricsOut(
        incidents=summary.incidents,
        assigned=p(summary.assigned),
        airborne=p(summary.airborne),
        on_scene=p(summary.on_scene),
    )


@router.get(
    "/candidates", response_model=DecisionOut, summary="Rank vehicles for a point without dispatching"
)
def candidates(
    dispatcher: DispatcherDep,
    _who: AnyRole,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    overhead_s: Annotated[float, Query(ge=0, le=6 * 3600)] = 300.0,
    alt_m: Annotated[float, Query(gt=0, le=500, description="the gate's altitude band applies")] = 60.0,
    capabilities: Annotated[list[str] | None, Query(description="required payloads")] = None,
) -> DecisionOut:
    request = DispatchRequest(
        lat, lon, overhead_s=overhead_s, alt_m=alt_m, required_capabilities=frozenset(capabilities or ())
    )
    decision = dispatcher.decide(request)
    return DecisionOut(**decision_json(decision))


@router.get(
    "/incidents/{incident_id}/candidates",
    response_model=DecisionOut,
    summary="Rank vehicles for an incident now",
)
def incident_candidates(incident_id: int, dispatcher: DispatcherDep, _who: AnyRole) -> DecisionOut:
    return DecisionOut(**decision_json(dispatcher.preview(incident_id)))


@router.get("/metrics", response_model=ResponseMetricsOut, summary="Response-time percentiles")
def metrics(
    session: SessionDep,
    _who: AnyRole,
    since: Annotated[datetime | None, Query(description="incidents created at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="incidents created before (ISO 8601)")] = None,
) -> ResponseMetricsOut:
    return _metrics(incidents.response_summary(session=session, since=since, until=until))


@router.get("/docks", summary="Each vehicle's dock state and charge")
def docks(dispatcher: DispatcherDep, _who: AnyRole) -> list[dict[str, Any]]:
    out = []
    for s in dispatcher.states():
        status = dispatcher.ledger.status(s.vehicle_id, s.battery_pct if s.link_up else None)
        out.append(
            {
                "vehicle_id": s.vehicle_id,
                "name": s.name,
                "activity": s.activity.value,
                "home": [s.home_lat, s.home_lon],
                **status,
            }
        )
    return out


@router.get("/wind", response_model=WindIn, summary="The wind dispatch plans with")
def get_wind(dispatcher: DispatcherDep, _who: AnyRole) -> WindIn:
    return WindIn(speed_m_s=dispatcher.wind.speed_m_s, from_deg=dispatcher.wind.from_deg)


@router.put("/wind", response_model=WindIn, summary="Set the wind dispatch plans with")
def set_wind(data: WindIn, session: SessionDep, dispatcher: DispatcherDep, who: DispatcherRole) -> WindIn:
    dispatcher.wind = Wind(data.speed_m_s, data.from_deg)
    audit.record(
        session=session,
        actor=who.username,
        action="dispatch.wind",
        target="dispatch",
        details=data.model_dump(),
    )
    return data


@router.get(
    "/coverage-gaps", response_model=Page[CoverageGapRead], summary="Patrols interrupted by incidents"
)
def coverage_gaps(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[CoverageGapRead]:
    rows = session.exec(
        select(CoverageGap).order_by(col(CoverageGap.id).desc()).offset(paging.offset).limit(paging.limit)
    ).all()
    total = session.exec(select(func.count()).select_from(CoverageGap)).one()
    return paging.page([CoverageGapRead.model_validate(r) for r in rows], int(total))
