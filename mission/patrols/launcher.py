"""Launching a scheduled patrol through the mission supervisor (the same path as an operator's launch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mission.dispatch.ranking import VehicleState
from mission.missions.models import MissionCreate, PlanSpec
from mission.patrols.models import PatrolRead
from mission.patrols.scheduler import PatrolLauncher
from mission.safety.gate import Asker

ACTOR = Asker("system:scheduler")


class Missions(Protocol):
    def create(self, *, data: MissionCreate, asker: Asker) -> Any: ...
    def validate(self, *, mission_id: int, asker: Asker) -> Any: ...
    async def launch(self, *, mission_id: int, asker: Asker) -> Any: ...


class SupervisorLauncher(PatrolLauncher):
    """Creates, validates (safety gate) and launches the patrol's plan as a mission on the chosen vehicle."""

    def __init__(
        self,
        *,
        missions: Missions,
        states: Callable[[], Sequence[VehicleState]],
        on_created: Callable[[int, int], None] | None = None,
        owns: Callable[[int], bool] | None = None,
    ) -> None:
        self._missions = missions
        self._states = states
        self._on_created = on_created
        self._owns = owns  # several instances: a run on another's vehicle is handed to it

    def vehicle_states(self) -> Sequence[VehicleState]:
        return self._states()

    def owned_here(self, vehicle_id: int) -> bool:
        return self._owns is None or self._owns(vehicle_id)

    async def launch(self, *, patrol: PatrolRead, run_id: int, vehicle_id: int) -> int | None:
        data = MissionCreate(
            name=f"patrol {patrol.name} (run {run_id})",
            vehicle_id=vehicle_id,
            plan=PlanSpec.model_validate(patrol.plan),
        )
        mission = self._missions.create(data=data, asker=ACTOR)
        if self._on_created is not None:
            self._on_created(run_id, mission.id)
        self._missions.validate(mission_id=mission.id, asker=ACTOR)
        await self._missions.launch(mission_id=mission.id, asker=ACTOR)
        return int(mission.id)
