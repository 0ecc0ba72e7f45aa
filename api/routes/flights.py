"""Flights over HTTP: what each vehicle flies (dispatch, relief, return, manual) and what watches it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import AnyRole, IdPath, RuntimeDep, SessionDep
from api.pagination import Page, Paging
from mission.flights import service
from mission.flights.models import FlightRead

router = APIRouter(prefix="/api/v1/flights", tags=["flights"])


class SupervisionRead(BaseModel):
    """One vehicle: is it in the air, and what watches it (``flight:ID``, ``mission:ID``, ``pilot:NAME``)."""

    vehicle_id: int
    link_up: bool
    in_air: bool
    supervised_by: str | None


@router.get("", response_model=Page[FlightRead], summary="Flights, newest first")
def list_flights(
    session: SessionDep,
    paging: Paging,
    _who: AnyRole,
    vehicle_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    open_only: Annotated[bool, Query(description="only pending or active flights")] = False,
) -> Page[FlightRead]:
    rows, total = service.list_flights(
        session=session,
        limit=paging.limit,
        offset=paging.offset,
        vehicle_id=vehicle_id,
        incident_id=incident_id,
        open_only=open_only,
    )
    return paging.page([FlightRead.model_validate(r) for r in rows], total)


@router.get(
    "/supervision",
    response_model=list[SupervisionRead],
    summary="Every vehicle, whether it flies and what supervises it",
)
def supervision(runtime: RuntimeDep, _who: AnyRole) -> list[SupervisionRead]:
    out = []
    for vehicle_id, by in sorted(runtime.flights.supervision().items()):
        snap = runtime.fleet.latest(vehicle_id)
        link_up = snap is not None and snap.link_up
        out.append(
            SupervisionRead(
                vehicle_id=vehicle_id,
                link_up=link_up,
                in_air=link_up and snap is not None and snap.in_air,
                supervised_by=by,
            )
        )
    return out


@router.get("/{flight_id}", response_model=FlightRead, summary="One flight and its legs")
def get_flight(flight_id: IdPath, session: SessionDep, _who: AnyRole) -> FlightRead:
    return FlightRead.model_validate(service.get(session=session, flight_id=flight_id))
