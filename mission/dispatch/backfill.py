"""Preempt and backfill: a patrol drone pulled to an incident leaves a coverage gap that is flown by another
docked drone (a backfill mission, through the gate like any launch) or by itself when it is free again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from shapely.geometry import LineString
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.audit import service as audit
from mission.audit.clock import utcnow
from mission.control import service as control
from mission.db import session_scope
from mission.dispatch.candidates import Candidates
from mission.dispatch.ranking import Activity, DispatchRequest, rank
from mission.errors import SkywardenError
from mission.flights import commander as cmd
from mission.missions import service as missions_service
from mission.missions.codec import geofence_from_json
from mission.missions.models import Mission, MissionCreate, PlanSpec
from mission.patrols.models import CoverageGap, PatrolRun, RunStatus
from mission.patrols.scheduler import finish_run
from mission.safety.gate import Asker
from mission.telemetry.events import Event, EventSink

log = logging.getLogger(__name__)

ACTOR = "system:dispatch"
SERVICE = Asker(ACTOR)


class MissionControl(Protocol):
    """What backfill needs of the mission supervisor."""

    def note_manual_command(self, *, vehicle_id: int, command: str, actor: str) -> None: ...
    def create(self, *, data: MissionCreate, asker: Asker) -> Any: ...
    def validate(self, *, mission_id: int, asker: Asker) -> Any: ...
    async def launch(self, *, mission_id: int, asker: Asker) -> Any: ...
    async def resume(self, *, mission_id: int, asker: Asker) -> Any: ...


class Backfill:
    """Coverage gaps: opened when a patrol is preempted, closed by a backfill or by resuming the patrol."""

    def __init__(
        self,
        *,
        engine: Engine,
        hub: EventSink,
        commander: cmd.Commander,
        missions: MissionControl,
        candidates: Candidates,
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._commander = commander
        self._missions = missions
        self._candidates = candidates
        self._tasks: set[asyncio.Task[Any]] = set()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def preempt(self, vid: int, incident_id: int) -> None:
        """Pull a vehicle off its patrol: pause the mission, log the gap, backfill it or resume later."""
        with session_scope(self._engine) as session:
            mission = missions_service.current_for_vehicle(session=session, vehicle_id=vid)
            if mission is None or mission.id is None:
                return
            run = session.exec(select(PatrolRun).where(col(PatrolRun.mission_id) == mission.id)).first()
            remaining = remaining_waypoints(mission.items or [], mission.progress_current)
            gap = CoverageGap(
                patrol_run_id=run.id if run else None,
                incident_id=incident_id,
                vehicle_id=vid,
                remaining={
                    "mission_id": mission.id,
                    "from_item": mission.progress_current,
                    "waypoints": remaining,
                },
                resolution="resume later",
            )
            session.add(gap)
            session.flush()
            run_id, mission_id, gap_id = (run.id if run else None), mission.id, gap.id
            alt_m = float(mission.plan.get("params", {}).get("alt_m", 60.0)) if mission.plan else 60.0
            audit.record(
                session=session,
                actor=ACTOR,
                action="dispatch.preempt",
                target=f"vehicle:{vid}",
                details={
                    "incident_id": incident_id,
                    "mission_id": mission_id,
                    "waypoints_left": len(remaining),
                },
            )
        self._missions.note_manual_command(vehicle_id=vid, command="goto", actor=ACTOR)
        if run_id is not None:
            finish_run(
                engine=self._engine,
                run_id=run_id,
                status=RunStatus.PREEMPTED,
                reason=f"vehicle pulled to incident {incident_id}; {len(remaining)} waypoints left",
                at=utcnow(),
            )
        self._hub.emit(
            Event(
                kind="patrol.preempted",
                vehicle_id=vid,
                mission_id=mission_id,
                data={"incident_id": incident_id, "waypoints_left": len(remaining)},
            )
        )
        log.info("vehicle %s pulled off mission %s for incident %s", vid, mission_id, incident_id)
        assert gap_id is not None
        task = asyncio.create_task(
            self._backfill(gap_id, remaining, alt_m=alt_m, exclude=vid), name=f"coverage_gap:{gap_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _backfill(
        self, gap_id: int, remaining: list[list[float]], *, alt_m: float, exclude: int
    ) -> None:
        """Fly the rest of a preempted patrol on a free docked vehicle; else it resumes later."""
        geometry = remaining_route_geojson(remaining)
        if geometry is None:
            return
        candidates = [
            s
            for s in self._candidates.states()
            if s.vehicle_id != exclude and s.activity is Activity.DOCKED and s.link_up
        ]
        if not candidates:
            return
        first = remaining[0]
        request = DispatchRequest(first[0], first[1], overhead_s=0.0, alt_m=alt_m)
        space = self._candidates.airspace(around=(first[0], first[1]), alt_m=alt_m)
        decision = rank(candidates, request, airspace=space, wind=self._candidates.wind)
        if decision.chosen is None:
            return
        vid = decision.chosen.vehicle_id
        data = MissionCreate(
            name=f"backfill of coverage gap {gap_id}",
            vehicle_id=vid,
            plan=PlanSpec(kind="route", geometry=geometry, params={"alt_m": alt_m}),
        )
        try:
            mission = self._missions.create(data=data, asker=SERVICE)
            self._missions.validate(mission_id=mission.id, asker=SERVICE)
            await self._missions.launch(mission_id=mission.id, asker=SERVICE)
        except SkywardenError as err:
            log.info("coverage gap %s: backfill on vehicle %s failed: %s", gap_id, vid, err)
            return
        with session_scope(self._engine) as session:
            row = session.get(CoverageGap, gap_id)
            if row is not None:
                row.resolution = f"backfilled by vehicle {vid} (mission {mission.id})"
                row.ended_at = utcnow()
                session.add(row)
        self._hub.emit(
            Event(
                kind="patrol.backfilled",
                vehicle_id=vid,
                mission_id=mission.id,
                data={"coverage_gap_id": gap_id},
            )
        )

    async def resume_preempted(self, vid: int) -> bool:
        """When a preempted vehicle is free again, resume its paused patrol (the gate judges the rest)."""
        with session_scope(self._engine) as session:
            gap = session.exec(
                select(CoverageGap)
                .where(col(CoverageGap.vehicle_id) == vid)
                .where(col(CoverageGap.ended_at).is_(None))
                .order_by(col(CoverageGap.id).desc())
            ).first()
            if gap is None or gap.id is None:
                return False
            gap_id = gap.id
            mission_id = int(gap.remaining.get("mission_id", 0))
        if not mission_id:
            return False
        with Session(self._engine) as session:
            mission = session.get(Mission, mission_id)
            fence_json = mission.geofence if mission is not None else None
            holder = control.holder_of(session=session, vehicle_id=vid)
        if holder is not None:
            resolution = f"not resumed: pilot {holder} holds the vehicle"
        else:
            try:
                if fence_json:
                    # Dispatch replaced the patrol's fence with the incident's: put the patrol's back first.
                    await self._commander.send(
                        vid,
                        cmd.UploadGeofence(geofence_from_json(fence_json)),
                        actor=ACTOR,
                        refs=cmd.Refs(mission_id=mission_id),
                    )
                await self._missions.resume(mission_id=mission_id, asker=SERVICE)
            except SkywardenError as err:
                resolution = f"not resumed: {err}"
            else:
                resolution = f"resumed by vehicle {vid}"
        with session_scope(self._engine) as session:
            row = session.get(CoverageGap, gap_id)
            if row is not None:
                row.ended_at = utcnow()
                row.resolution = resolution[:200]
                session.add(row)
        return resolution.startswith("resumed")


def remaining_waypoints(items: list[dict[str, Any]], from_item: int) -> list[list[float]]:
    """[lat, lon, alt] of the positioned items not yet flown."""
    out = []
    for item in items[max(0, from_item) :]:
        if "lat" in item and "lon" in item and item.get("kind") in ("waypoint", "loiter_time"):
            out.append([float(item["lat"]), float(item["lon"]), float(item.get("alt_m", 0.0))])
    return out


def remaining_route_geojson(waypoints: list[list[float]]) -> dict[str, Any] | None:
    """The remaining patrol as a GeoJSON LineString (lon, lat), for a backfill mission."""
    if len(waypoints) < 2:
        return None
    line = LineString([(lon, lat) for lat, lon, _ in waypoints])
    return {"type": "LineString", "coordinates": [list(c) for c in line.coords]}
