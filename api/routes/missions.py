"""Missions over HTTP: create from a plan, validate, launch, pause, resume, return, abort; events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from api.deps import AnyRole, SessionDep, require_roles
from api.pagination import Page, Paging
from mission.auth.models import Principal
from mission.auth.roles import Role
from mission.missions import service
from mission.missions.models import MissionCreate, MissionEventRead, MissionRead
from mission.missions.states import MissionState
from mission.missions.supervisor import MissionSupervisor
from mission.runtime import Runtime
from mission.safety.gate import Asker

router = APIRouter(prefix="/api/v1/missions", tags=["missions"])
Pilot = Annotated[Principal, Depends(require_roles(Role.pilot))]


def _supervisor(request: Request) -> MissionSupervisor:
    from api.deps import get_runtime

    runtime: Runtime = get_runtime(request)
    return runtime.missions


Supervisor = Annotated[MissionSupervisor, Depends(_supervisor)]


def _asker(who: Principal) -> Asker:
    return Asker(who.username, str(who.role))


@router.get("", response_model=Page[MissionRead], summary="List missions, newest first")
def list_missions(
    session: SessionDep,
    paging: Paging,
    _who: AnyRole,
    state: Annotated[MissionState | None, Query(description="only missions in this state")] = None,
    vehicle_id: Annotated[int | None, Query(ge=1, description="only this vehicle's missions")] = None,
) -> Page[MissionRead]:
    rows, total = service.list_missions(
        session=session,
        limit=paging.limit,
        offset=paging.offset,
        state=state.value if state else None,
        vehicle_id=vehicle_id,
    )
    return paging.page([MissionRead.model_validate(r) for r in rows], total)


@router.post(
    "", response_model=MissionRead, status_code=status.HTTP_201_CREATED, summary="Create a draft mission"
)
async def create_mission(data: MissionCreate, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(missions.create(data=data, asker=_asker(who)))


@router.get("/{mission_id}", response_model=MissionRead, summary="One mission")
def get_mission(mission_id: int, session: SessionDep, _who: AnyRole) -> MissionRead:
    return MissionRead.model_validate(service.get(session=session, mission_id=mission_id))


@router.get(
    "/{mission_id}/events", response_model=Page[MissionEventRead], summary="The mission's transitions"
)
def mission_events(
    mission_id: int, session: SessionDep, paging: Paging, _who: AnyRole
) -> Page[MissionEventRead]:
    rows, total = service.events(
        session=session, mission_id=mission_id, limit=paging.limit, offset=paging.offset
    )
    return paging.page([MissionEventRead.model_validate(r) for r in rows], total)


@router.post("/{mission_id}/validate", response_model=MissionRead, summary="Run the safety gate")
async def validate_mission(mission_id: int, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(missions.validate(mission_id=mission_id, asker=_asker(who)))


@router.post(
    "/{mission_id}/launch", response_model=MissionRead, summary="Upload (with its geofence) and start"
)
async def launch_mission(mission_id: int, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(await missions.launch(mission_id=mission_id, asker=_asker(who)))


@router.post("/{mission_id}/pause", response_model=MissionRead, summary="Hold the vehicle in place")
async def pause_mission(mission_id: int, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(await missions.pause(mission_id=mission_id, asker=_asker(who)))


@router.post("/{mission_id}/resume", response_model=MissionRead, summary="Continue a paused mission")
async def resume_mission(mission_id: int, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(await missions.resume(mission_id=mission_id, asker=_asker(who)))


@router.post("/{mission_id}/return", response_model=MissionRead, summary="Send the vehicle home")
async def return_mission(mission_id: int, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(await missions.return_home(mission_id=mission_id, asker=_asker(who)))


@router.post("/{mission_id}/abort", response_model=MissionRead, summary="End the mission now")
async def abort_mission(mission_id: int, who: Pilot, missions: Supervisor) -> MissionRead:
    return MissionRead.model_validate(await missions.abort(mission_id=mission_id, asker=_asker(who)))
