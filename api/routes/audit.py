"""The audit log over HTTP (admins only): read it and verify its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminOnly, SessionDep
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.audit.fields import PrintableStr
from mission.audit.models import AuditRead, AuditReport

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditRead], summary="Audit entries, newest first")
def list_audit(
    session: SessionDep,
    paging: Paging,
    _who: AdminOnly,
    actor: Annotated[PrintableStr | None, Query(max_length=100)] = None,
    action: Annotated[PrintableStr | None, Query(max_length=100, description="action prefix")] = None,
) -> Page[AuditRead]:
    items, total = audit.list_entries(
        session=session, limit=paging.limit, offset=paging.offset, actor=actor, action=action
    )
    return paging.page(items, total)


@router.get("/verify", response_model=AuditReport, summary="Recompute the hash chain and name any tampering")
def verify_audit(session: SessionDep, _who: AdminOnly) -> AuditReport:
    return audit.verify(session=session)
