"""Incident cordons over HTTP: start one (rings, stations, assignment, flights), read its report, end it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlmodel import col, func, select

from api.deps import AnyRole, IdPath, RuntimeDep, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.cordons.models import Cordon, CordonCreate, CordonRead
from mission.cordons.runner import report

router = APIRouter(prefix="/api/v1/cordons", tags=["cordons"])
Dispatcher = Annotated[Principal, Depends(require_roles(Role.dispatcher))]


@router.post(
    "",
    response_model=CordonRead,
    status_code=status.HTTP_201_CREATED,
    summary="Start a cordon: rings around the scene, stations at road crossings, drones assigned min-max",
)
async def start(data: CordonCreate, who: Dispatcher, runtime: RuntimeDep) -> CordonRead:
    return await runtime.cordons.start(data, actor=who.username)


@router.get("", response_model=Page[CordonRead], summary="Cordons, latest first")
def list_cordons(session: SessionDep, paging: Paging, _who: AnyRole) -> Page[CordonRead]:
    rows = session.exec(
        select(Cordon).order_by(col(Cordon.id).desc()).offset(paging.offset).limit(paging.limit)
    )
    items = []
    for row in rows:
        out = CordonRead.model_validate(row)
        out.report = report(row)
        items.append(out)
    total = int(session.exec(select(func.count()).select_from(Cordon)).one())
    return paging.page(items, total)


@router.get("/{cordon_id}", response_model=CordonRead, summary="One cordon: stations, who mans them, report")
def get_cordon(cordon_id: IdPath, _who: AnyRole, runtime: RuntimeDep) -> CordonRead:
    return runtime.cordons.read(cordon_id)


@router.post("/{cordon_id}/end", response_model=CordonRead, summary="End a cordon: its drones fly home")
async def end(cordon_id: IdPath, who: Dispatcher, runtime: RuntimeDep) -> CordonRead:
    return await runtime.cordons.end(cordon_id, actor=who.username)


@router.post(
    "/{cordon_id}/widen",
    response_model=CordonRead,
    summary="Grow the rings with the time since the incident; stations and drones re-planned and flown",
)
async def widen(cordon_id: IdPath, who: Dispatcher, runtime: RuntimeDep) -> CordonRead:
    return await runtime.cordons.widen(cordon_id, actor=who.username)
