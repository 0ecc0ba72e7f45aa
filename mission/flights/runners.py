"""What the event and cordon runners share: their tasks, the gate's verdict on a flight they plan, and with
several instances (mission.cluster) the two things a runner on the leader cannot do through its own executor.

- It hears only the flights this instance flies. The legs and ends of its flights flown by other instances
  (the owners of their vehicles) are read from the database (the owner advances the flight record leg by
  leg) and told to the runner the same way the executor tells them (``flight_leg_done``, ``flight_ended``).
- Its fence upload to a vehicle another instance owns is refused: the owner uploads the runner's fence
  before it first flies a flight the runner recorded (``executor.before_first_leg``), from ``_owner_fence``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission.flights import commander as cmd
from mission.flights.executor import FlightExecutor, path_of
from mission.flights.models import Flight, FlightPurpose, FlightState, Leg
from mission.safety.gate import Action, Asker, FlightPath, GateRequest, Verdict

log = logging.getLogger(__name__)
_OPEN = (FlightState.PENDING.value, FlightState.ACTIVE.value)


class FlightRunner:
    """Base of a runner flying its own ``purpose`` of flights through the one executor. Subclasses say
    which flights they wait on (``_wanted_flights``), what fence the owner of a vehicle uploads before
    flying one of them (``_owner_fence``), and react in ``flight_leg_done`` / ``flight_ended``."""

    name = "runner"  # for logs and task names
    asker = Asker("system:runner")

    def __init__(
        self, *, engine: Engine, executor: FlightExecutor, purpose: FlightPurpose, tick_s: float
    ) -> None:
        self._engine = engine
        self._executor = executor
        self._tick_s = tick_s
        self._tasks: set[asyncio.Task[Any]] = set()
        # Several instances: the legs flown so far of each flight another instance flies (the owner of its
        # vehicle), as this runner last heard them from the database; -1 once its end was told.
        self._heard: dict[int, int] = {}
        executor.add_listener(self, purposes=(purpose,))
        executor.before_first_leg(self._fence_for_owner, purposes=(purpose,))

    # -- tasks --------------------------------------------------------------------------------------------

    def _spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_hearing(self) -> None:
        """From ``__aenter__``: hear the flights other instances fly (a no-op pass with one instance)."""
        self._spawn(self._hear_remote_flights(), name=f"{self.name}:remote-flights")

    async def _stop_tasks(self, *extra: asyncio.Task[Any] | None) -> None:
        """From ``__aexit__``: cancel every task (and ``extra``), forget what was heard (entered again when
        this instance leads again)."""
        tasks = [*self._tasks, *(t for t in extra if t is not None)]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._heard.clear()

    # -- the gate and the fence ----------------------------------------------------------------------------

    async def _judge(self, vid: int, legs: list[Leg], *, dwell_s: float = 0.0) -> Verdict:
        """The gate's verdict on dispatching ``vid`` along ``legs`` (then home)."""
        path = path_of(legs)
        request = GateRequest(
            vehicle_id=vid,
            action=Action.DISPATCH,
            asker=self.asker,
            path=FlightPath(points=path.points, returns_home=True) if path else None,
            dwell_s=dwell_s,
        )
        return await asyncio.to_thread(self._executor.judge, request)

    async def _upload_fence(self, vid: int, fence: Any, *, flight_id: int | None = None) -> None:
        await self._executor.commander.send(
            vid, cmd.UploadGeofence(fence), actor=self.asker.name, refs=cmd.Refs(flight_id)
        )

    async def _owner_fence(self, flight: Flight) -> Any | None:
        """The fence the owner of ``flight``'s vehicle uploads before flying it (None: none to upload)."""
        raise NotImplementedError

    async def _fence_for_owner(self, flight: Flight) -> None:
        """Several instances: the owner of ``flight``'s vehicle uploads the runner's fence before flying a
        flight the runner recorded on another instance (the leader), as the runner does for its own."""
        fence = await self._owner_fence(flight)
        if fence is not None:
            await self._upload_fence(flight.vehicle_id, fence, flight_id=flight.id)

    # -- hearing flights flown by other instances -------------------------------------------------------

    def _wanted_flights(self) -> set[int]:
        """The ids of the flights the runner waits on now (started or recovered, not yet heard ended)."""
        raise NotImplementedError

    def _heard_from_start(self, flight: Flight) -> Flight:
        """A flight the runner just recorded: if another instance flies it, every leg of it is heard."""
        if flight.id is not None:
            self._heard.setdefault(flight.id, 0)
        return flight

    async def flight_airborne(self, flight: Flight) -> None:
        return None

    async def flight_takeoff_acked(self, flight: Flight) -> None:
        return None

    async def flight_leg_done(self, flight: Flight, leg: Leg) -> None:
        return None

    async def flight_ended(self, flight: Flight) -> None:
        return None

    async def _hear_remote_flights(self) -> None:
        while True:
            try:
                await self._hear_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: hearing other instances' flights failed", self.name)
            await asyncio.sleep(self._tick_s)

    async def _hear_once(self) -> None:
        wanted = self._wanted_flights()
        for fid in list(self._heard):
            if fid not in wanted:
                del self._heard[fid]
        if not wanted:
            return
        with Session(self._engine) as session:
            rows = list(session.exec(select(Flight).where(col(Flight.id).in_(wanted))))
        for flight in rows:
            assert flight.id is not None
            now_at, ended = flight.leg_index, flight.state not in _OPEN
            if self._executor.owns(flight.vehicle_id):
                # This instance flies it: the executor tells. Kept in step in case its owner changes.
                self._heard[flight.id] = -1 if ended else now_at
                continue
            # First heard now (recovered, or its vehicle just went to another owner): from where it is.
            done = self._heard.setdefault(flight.id, now_at)
            if done < 0:
                continue  # its end was told
            legs = flight.typed_legs()
            for i in range(done, min(now_at, len(legs))):
                flight.leg_index = i  # as the executor tells it: the leg just flown
                self._heard[flight.id] = i + 1
                await self.flight_leg_done(flight, legs[i])
            flight.leg_index = now_at
            if ended:
                self._heard[flight.id] = -1
                await self.flight_ended(flight)
