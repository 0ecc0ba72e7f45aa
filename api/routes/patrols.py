"""Scheduled patrols over HTTP: define (plan + cron + window + capabilities), list, enable, runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from api.deps import AnyRole, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.audit.clock import UtcDatetime, utcnow
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.errors import BadRequest
from mission.patrols import service
from mission.patrols.cron_text import schedule
from mission.patrols.models import PatrolCreate, PatrolRead, PatrolRunRead, check_cron, check_hhmm
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


Locale = Literal["zh-CN", "en"]


class SchedulePreviewRequest(BaseModel):
    """A schedule being edited: the panel shows it in words with its next runs before it is saved."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(max_length=100, examples=["0 */2 * * *"])
    timezone: str = "UTC"
    window_start: str | None = None
    window_end: str | None = None
    locale: Locale = "en"
    count: int = Field(default=5, ge=1, le=20)


class ScheduleOut(BaseModel):
    """A schedule in words (in the asked language) and the next runs the scheduler will launch."""

    patrol_id: int | None = None
    cron: str
    timezone: str
    description: str
    next_runs: list[UtcDatetime]
    skipped_outside_window: int


def _schedule_of(patrol: PatrolRead, locale: str, count: int, after: datetime) -> ScheduleOut:
    try:
        out = schedule(patrol, locale=locale, after=after, count=count)
    except (ValueError, KeyError) as err:
        raise BadRequest(
            f"cron {patrol.cron!r}: {err}", code="cron.invalid", params={"cron": patrol.cron}
        ) from None
    return ScheduleOut(
        patrol_id=patrol.id if patrol.id else None,
        cron=patrol.cron,
        timezone=patrol.timezone,
        description=out.description,
        next_runs=out.next_runs,
        skipped_outside_window=out.skipped_outside_window,
    )


def _clock_now(request: Request) -> datetime:
    """The scheduler's now (simulated time runs faster in a sim fleet), else the wall clock."""
    runtime = getattr(request.app.state, "runtime", None)
    scheduler = getattr(runtime, "scheduler", None)
    return scheduler.clock.now() if scheduler is not None else utcnow()


@router.get("/preview", response_model=ScheduleOut, summary="A schedule in words and its next runs")
def preview_schedule(
    data: Annotated[SchedulePreviewRequest, Query()], request: Request, _who: AnyRole
) -> ScheduleOut:
    try:
        check_cron(data.cron)
        check_hhmm(data.window_start)
        check_hhmm(data.window_end)
        probe = PatrolCreate(
            name="preview",
            plan={"kind": "orbit", "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}},
            cron=data.cron,
            timezone=data.timezone,
            window_start=data.window_start,
            window_end=data.window_end,
        )
    except (ValueError, ValidationError) as err:
        raise BadRequest(
            str(err).splitlines()[-1] if isinstance(err, ValidationError) else str(err),
            code="cron.invalid",
            params={"cron": data.cron},
        ) from None
    patrol = PatrolRead(id=0, created_at=utcnow(), **probe.model_dump())
    return _schedule_of(patrol, data.locale, data.count, _clock_now(request))


@router.get("/schedule", response_model=list[ScheduleOut], summary="Every patrol's schedule and next runs")
def all_schedules(
    request: Request,
    session: SessionDep,
    _who: AnyRole,
    locale: Annotated[Locale, Query()] = "en",
    count: Annotated[int, Query(ge=1, le=20)] = 5,
) -> list[ScheduleOut]:
    rows, _total = service.list_patrols(session=session, limit=500, offset=0)
    now = _clock_now(request)
    out = []
    for row in rows:
        patrol = PatrolRead.model_validate(row)
        if not patrol.enabled:
            out.append(
                ScheduleOut(
                    patrol_id=patrol.id,
                    cron=patrol.cron,
                    timezone=patrol.timezone,
                    description=schedule(patrol, locale=locale, after=now, count=1).description,
                    next_runs=[],
                    skipped_outside_window=0,
                )
            )
            continue
        out.append(_schedule_of(patrol, locale, count, now))
    return out


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


@router.put("/{patrol_id}", response_model=PatrolRead, summary="Change a patrol (plan, schedule, vehicle)")
def update_patrol(
    patrol_id: int, data: PatrolCreate, request: Request, session: SessionDep, who: Planner
) -> PatrolRead:
    row = service.update(session=session, patrol_id=patrol_id, data=data)
    audit.record(
        session=session,
        actor=who.username,
        action="patrol.update",
        target=f"patrol:{patrol_id}",
        details={"name": data.name, "cron": data.cron, "kind": data.plan.get("kind")},
    )
    out = PatrolRead.model_validate(row)
    next_slot(out, after=utcnow())
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
