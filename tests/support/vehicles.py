"""Vehicles for a test, sim/ or real PX4 SITL, on the same docks: one factory so scenarios run on both.

    @pytest.mark.parametrize("kind", VEHICLE_KINDS)            # or use the ``vehicle_kind`` fixture
    async def test_x(tmp_path, kind):
        async with running_service(tmp_path, docks=[(0, 0)], vehicles=kind, speed=speed_for(kind)) as svc:

``start_vehicles`` gives each vehicle's sysid, MAVLink URL and home; the sim fleet too when it is sim/ (for
fault injection and inside views: a test that needs them skips itself on PX4 through ``Vehicles.sim``).
Without the PX4 bundle the px4 variants skip with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim import SimConfig, SimFleet
from sim.px4sitl import Px4Instance
from tests.support.geo import HOME, offset
from tests.support.net import free_udp_base
from tests.support.px4 import PX4_CRUISE_M_S, px4_speed, require_px4, start_fleet

SIM = "sim"
PX4 = "px4"
VEHICLE_KINDS = [SIM, pytest.param(PX4, marks=pytest.mark.px4)]
SIM_DEFAULT_SPEED = 10.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the service reaches one vehicle."""

    sysid: int
    port: int
    home: tuple[float, float, float]

    @property
    def url(self) -> str:
        return f"udpin://0.0.0.0:{self.port}"


@dataclass
class Vehicles:
    """Started vehicles of one kind, in dock order."""

    kind: str
    speed: float
    endpoints: list[Endpoint]
    fleet: SimFleet | None = None
    px4: list[Px4Instance] = field(default_factory=list)

    @property
    def is_sim(self) -> bool:
        return self.kind == SIM

    def sim(self) -> SimFleet:
        """The sim fleet; skips the test on PX4 (no inside view of a real autopilot)."""
        if self.fleet is None:
            pytest.skip("needs the simulator's inside view or fault injection")
        return self.fleet


def wall_s(speed: float, vehicle_s: float, *, slack_s: float = 15.0) -> float:
    """A wall-clock wait for what the vehicle needs ``vehicle_s`` of its own time for (x1.5 + slack)."""
    return 1.5 * vehicle_s / speed + slack_s


def cruise_m_s(kind: str) -> float:
    """The speed a vehicle flies missions and gotos at unless told (MPC_XY_CRUISE: PX4 5, sim/ 10 m/s)."""
    return PX4_CRUISE_M_S if kind == PX4 else 10.0


@pytest.fixture(params=VEHICLE_KINDS)
def vehicle_kind(request: pytest.FixtureRequest) -> str:
    """``sim`` or ``px4`` (marked px4): the kind of vehicle a scenario flies."""
    return str(request.param)


def speed_for(kind: str, sim_speed: float = SIM_DEFAULT_SPEED) -> float:
    """The speed factor a scenario runs ``kind`` at: sim/'s given one, PX4's reliable one."""
    return px4_speed() if kind == PX4 else sim_speed


def dock_home(dock: tuple[float, float]) -> tuple[float, float, float]:
    """A dock (north_m, east_m from the demo origin) as a home: lat, lon, alt AMSL."""
    return (*offset(*dock), HOME[2])


@contextlib.asynccontextmanager
async def start_vehicles(
    kind: str,
    docks: Sequence[tuple[float, float]],
    *,
    speed: float,
    workdir: Path,
    sim_config: SimConfig | None = None,
) -> AsyncIterator[Vehicles]:
    """One vehicle per dock, of ``kind``; stopped when the block ends."""
    homes = [dock_home(d) for d in docks]
    if kind == SIM:
        from tests.support.service import docked_fleet  # the service helpers build on this module

        base = free_udp_base(max(1, len(docks)))
        fleet = docked_fleet(docks, base_port=base, speed=speed, config=sim_config)
        async with fleet:
            yield Vehicles(
                kind=kind,
                speed=speed,
                endpoints=[Endpoint(i + 1, base + i, h) for i, h in enumerate(homes)],
                fleet=fleet,
            )
        return
    if kind != PX4:
        raise ValueError(f"vehicle kind must be {SIM!r} or {PX4!r}, got {kind!r}")
    require_px4()
    if sim_config is not None:
        pytest.skip("sim_config tunes sim/ only; this scenario needs the simulator")
    px4 = await start_fleet(len(homes), homes=homes, workdir=workdir / "px4", speed=speed)
    try:
        yield Vehicles(
            kind=kind,
            speed=speed,
            endpoints=[Endpoint(v.sysid, v.port, v.home) for v in px4.instances],
            px4=list(px4.instances),
        )
    finally:
        await px4.stop()
