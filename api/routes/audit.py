"""The audit log over HTTP (admins only): read and filter it (user, action, vehicle, incident, time), export
it as CSV, and verify its hash chain."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AdminOnly, SessionDep
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.audit.clock import as_utc
from mission.audit.fields import PrintableStr
from mission.audit.models import AuditRead, AuditReport

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Actor = Annotated[PrintableStr | None, Query(max_length=100, description="the user (or service) who acted")]
ActionPrefix = Annotated[PrintableStr | None, Query(max_length=100, description="action prefix")]
VehicleId = Annotated[int | None, Query(ge=1, description="entries about this vehicle")]
IncidentId = Annotated[int | None, Query(ge=1, description="entries about this incident")]
Since = Annotated[datetime | None, Query(description="entries at or after this time (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="entries before this time (ISO 8601)")]
EXPORT_MAX = 100_000


@router.get("", response_model=Page[AuditRead], summary="Audit entries, newest first, filtered")
def list_audit(
    session: SessionDep,
    paging: Paging,
    _who: AdminOnly,
    actor: Actor = None,
    action: ActionPrefix = None,
    vehicle_id: VehicleId = None,
    incident_id: IncidentId = None,
    since: Since = None,
    until: Until = None,
) -> Page[AuditRead]:
    items, total = audit.search_entries(
        session=session,
        limit=paging.limit,
        offset=paging.offset,
        actor=actor,
        action=action,
        vehicle_id=vehicle_id,
        incident_id=incident_id,
        since=as_utc(since) if since else None,
        until=as_utc(until) if until else None,
    )
    return paging.page(items, total)


@router.get("/export.csv", summary="The filtered audit entries as CSV (newest first)")
def export_audit(
    session: SessionDep,
    _who: AdminOnly,
    actor: Actor = None,
    action: ActionPrefix = None,
    vehicle_id: VehicleId = None,
    incident_id: IncidentId = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    items, _total = audit.search_entries(
        session=session,
        limit=EXPORT_MAX,
        offset=0,
        actor=actor,
        action=action,
        vehicle_id=vehicle_id,
        incident_id=incident_id,
        since=as_utc(since) if since else None,
        until=as_utc(until) if until else None,
    )
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["seq", "at", "actor", "action", "target", "details", "hash"])
    for e in items:
        writer.writerow(
            [
                e.seq,
                e.at.isoformat(),
                e.actor,
                e.action,
                e.target or "",
                json.dumps(e.details, ensure_ascii=False),
                e.hash,
            ]
        )
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


@router.get("/verify", response_model=AuditReport, summary="Recompute the hash chain and name any tampering")
def verify_audit(session: SessionDep, _who: AdminOnly) -> AuditReport:
    return audit.verify(session=session)
