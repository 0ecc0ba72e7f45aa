"""Reports over a chosen period (dispatchers and admins): response times, drones, patrols; JSON and CSV."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from api.deps import SessionDep, require_roles
from mission.audit.clock import UtcDatetime, as_utc, utcnow
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.errors import BadRequest
from mission.reports import service
from mission.reports.service import DroneRow, PatrolRow, ResponseRow

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require_roles(Role.dispatcher))]
Since = Annotated[datetime | None, Query(description="start of the period (ISO 8601); default 7 days ago")]
Until = Annotated[datetime | None, Query(description="end of the period (ISO 8601); default now")]


class ReportOut(BaseModel):
    since: UtcDatetime
    until: UtcDatetime
    response: list[ResponseRow]
    drones: list[DroneRow]
    patrols: list[PatrolRow]


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = as_utc(until) if until is not None else utcnow()
    start = as_utc(since) if since is not None else end - timedelta(days=7)
    if start >= end:
        raise BadRequest("since must be before until", code="report.period")
    return start, end


@router.get("", response_model=ReportOut, summary="Response, drones and patrols over a period")
def get_report(session: SessionDep, _who: Reader, since: Since = None, until: Until = None) -> ReportOut:
    start, end = _period(since, until)
    r = service.report(session=session, since=start, until=end)
    return ReportOut(since=r.since, until=r.until, response=r.response, drones=r.drones, patrols=r.patrols)


@router.get("/{section}.csv", summary="One section of the report as CSV")
def report_csv(
    section: Literal["response", "drones", "patrols"],
    session: SessionDep,
    _who: Reader,
    since: Since = None,
    until: Until = None,
) -> Response:
    start, end = _period(since, until)
    r = service.report(session=session, since=start, until=end)
    sections: dict[str, list[Any]] = {"response": r.response, "drones": r.drones, "patrols": r.patrols}
    rows = sections[section]
    stamp = f"{start:%Y%m%d}-{end:%Y%m%d}"
    return Response(
        service.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{section}-{stamp}.csv"'},
    )
