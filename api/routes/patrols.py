"""Scheduled patrols over HTTP: define (plan + cron + window + capabilities), list, enable, runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from api.deps import AnyRole, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.patrols import service
from mission.patrols.models import PatrolCreate, PatrolRead, PatrolRunRead
from mission.patrols.scheduler import next_slot

router = APIRouter(prefix="/api/v1/patrols", tags=["patrols"])
Planner = Annotated[Principal, Depends(require_roles(Role.dispatcher))]


class PatrolEnable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


def _wake(request: Request, session: Session) -> None:
    """Commit now and have the scheduler re-read the patrols (it must see the change)."""
    session.commit()
    runtime = getattr(request.app.state, "runtime", None)
    scheduler = getattr(runtime, "scheduler", None)
    if scheduler is not None:
        scheduler.wake()


@router.get("", response_model=Page[PatrolRead], summary="List patrols")
def list_patrols(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[PatrolRead]:
    rows, total = service.list_patrols(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page([PatrolRead.model_validate(r) for r in rows], total)


@router.post("", response_model=PatrolRead, status_code=status.HTTP_201_CREATED, summary="Define a patrol")
def create_patrol(data: PatrolCreate, request: Request, session: SessionDep, who: Planner) -> PatrolRead:
    row = service.create(session=session, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="patrol.create",
        target=f"patrol:{row.id}",
        details={"name": data.name, "cron": data.cron, "kind": data.plan.get("kind")},
    )
    out = PatrolRead.model_validate(row)
    next_slot(out, after=out.created_at)  # a cron that never fires fails here, not in the scheduler
    _wake(request, session)
    return out


@router.get("/runs", response_model=Page[PatrolRunRead], summary="Every patrol run, latest slot first")
def all_runs(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[PatrolRunRead]:
    rows, total = service.runs(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page([PatrolRunRead.model_validate(r) for r in rows], total)


@router.get("/{patrol_id}", response_model=PatrolRead, summary="One patrol")
def get_patrol(patrol_id: int, session: SessionDep, _who: AnyRole) -> PatrolRead:
    return PatrolRead.model_validate(service.get(session=session, patrol_id=patrol_id))


@router.patch("/{patrol_id}", response_model=PatrolRead, summary="Enable or disable a patrol")
def enable_patrol(
    patrol_id: int, data: PatrolEnable, request: Request, session: SessionDep, who: Planner
) -> PatrolRead:
    row = service.set_enabled(session=session, patrol_id=patrol_id, enabled=data.enabled)
    audit.record(
        session=session,
        actor=who.username,
        action="patrol.enable" if data.enabled else "patrol.disable",
        target=f"patrol:{patrol_id}",
    )
    _wake(request, session)
    return PatrolRead.model_validate(row)


@router.delete(
    "/{patrol_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a patrol that never ran"
)
def delete_patrol(patrol_id: int, session: SessionDep, who: Planner) -> Response:
    gone = service.delete(session=session, patrol_id=patrol_id)
    audit.record(
        session=session,
        actor=who.username,
        action="patrol.delete",
        target=f"patrol:{patrol_id}",
        details={"name": gone.name},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{patrol_id}/runs", response_model=Page[PatrolRunRead], summary="A patrol's runs")
def patrol_runs(patrol_id: int, session: SessionDep, paging: Paging, _who: AnyRole) -> Page[PatrolRunRead]:
    rows, total = service.runs(session=session, limit=paging.limit, offset=paging.offset, patrol_id=patrol_id)
    return paging.page([PatrolRunRead.model_validate(r) for r in rows], total)
