"""Flight fixtures: real MAVSDK (mission.link) against sim/ over UDP, or against a PX4 SITL.

``flight`` yields a ``Flight`` (the vehicle's link plus a probe). Against the simulator the probe can also see
inside the vehicle (payload events, stored mission, fence); against PX4 (a fresh SITL per test from the
bundle, see tests/support/px4.py) it sees nothing but telemetry, so the same test body runs against either
and checks what it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from mission.link import LinkManager, MavsdkVehicleLink, TelemetrySnapshot
from sim import SimConfig, SimFleet, SimVehicle
from sim.config import DEFAULT_STREAM_HZ
from tests.support.net import free_udp_base
from tests.support.px4 import PX4_CRUISE_M_S, Px4Factory

HOME = (39.82, 109.98, 1100.0)  # lat, lon, alt AMSL
SIM_SPEED = 10.0  # simulated seconds per wall second: a 200 m leg at 10 m/s takes 2 s
# What PX4 SITL streams on its offboard/API link (MAVLINK.md): far more than the service wants to forward.
SIM_CRUISE_M_S = 10.0  # sim/'s MPC_XY_CRUISE
# Flight-time model for sizing waits (both vehicles share PX4's vertical defaults): MPC_Z_VEL_MAX_UP 3 m/s,
# MPC_Z_VEL_MAX_DN 1.5 m/s (less on PX4 near the ground), MPC_LAND_SPEED 0.7 m/s for the last metres, plus
# per leg the acceleration at MPC_ACC_HOR, the acceptance radius and turning to the heading.
CLIMB_M_S = 1.5
DESCENT_M_S = 1.0
LAND_M_S = 0.7
LEG_OVERHEAD_S = 8.0
RTL_RETURN_ALT_M = 60.0  # PX4 and sim/ both climb to it before coming home
PX4_STREAM_HZ = {
    **DEFAULT_STREAM_HZ,
    "GLOBAL_POSITION_INT": 50.0,
    "ATTITUDE": 100.0,
    "LOCAL_POSITION_NED": 30.0,
}


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance; exact enough over a few km."""
    dn = math.radians(lat2 - lat1) * 6371000.0
    de = math.radians(lon2 - lon1) * 6371000.0 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dn, de)


def offset(north_m: float, east_m: float, *, origin: tuple[float, ...] = HOME) -> tuple[float, float]:
    """The (lat, lon) ``north_m``/``east_m`` metres from ``origin``."""
    lat = origin[0] + math.degrees(north_m / 6371000.0)
    lon = origin[1] + math.degrees(east_m / (6371000.0 * math.cos(math.radians(origin[0]))))
    return lat, lon


async def wait_for_snapshot(
    link: MavsdkVehicleLink,
    predicate: Callable[[TelemetrySnapshot], bool],
    *,
    timeout_s: float,
    what: str,
    seen: list[TelemetrySnapshot] | None = None,
) -> TelemetrySnapshot:
    """The first snapshot matching ``predicate``; fails the test naming ``what`` and the last snapshot."""
    latest = link.latest
    if latest is not None and predicate(latest):
        return latest

    async def watch() -> TelemetrySnapshot:
        async with contextlib.aclosing(link.snapshots()) as stream:
            async for snap in stream:
                if seen is not None:
                    seen.append(snap)
                if predicate(snap):
                    return snap
        raise AssertionError(f"vehicle {link.vehicle_id}: link closed while waiting for {what}")

    try:
        return await asyncio.wait_for(watch(), timeout_s)
    except TimeoutError:
        pytest.fail(f"vehicle {link.vehicle_id}: no {what} within {timeout_s} s; last: {link.latest}")


@dataclass
class VehicleProbe:
    """What a test can see of the vehicle besides its telemetry: everything for sim/, nothing for PX4."""

    kind: str
    vehicle: SimVehicle | None = None

    @property
    def is_sim(self) -> bool:
        """True when the vehicle is sim/ (fault injection and inside views available)."""
        return self.vehicle is not None

    def sim(self) -> SimVehicle:
        """The simulated vehicle; skips the test on PX4."""
        if self.vehicle is None:
            pytest.skip("needs the simulator's inside view or fault injection")
        return self.vehicle


@dataclass
class Flight:
    """A connected, ready vehicle: its link, the manager that owns it, and a probe."""

    link: MavsdkVehicleLink
    links: LinkManager
    probe: VehicleProbe
    home: tuple[float, float, float]
    speed: float = 1.0  # the vehicle's simulated seconds per wall second
    cruise_m_s: float = SIM_CRUISE_M_S  # the vehicle's own cruise speed (MPC_XY_CRUISE) in missions and gotos
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def vehicle_id(self) -> int:
        """The vehicle's MAVLink system id (PX4 instance I is sysid I+1)."""
        return self.link.vehicle_id

    def wall_s(self, vehicle_s: float, *, slack_s: float = 10.0) -> float:
        """A wait for something the vehicle needs ``vehicle_s`` of its own time for: x1.5 + slack."""
        return 1.5 * vehicle_s / self.speed + slack_s

    def legs_s(self, *distances_m: float) -> float:
        """Vehicle seconds to fly straight legs at cruise, each starting and ending at rest."""
        return sum(d / self.cruise_m_s + LEG_OVERHEAD_S for d in distances_m)

    def climb_s(self, alt_m: float) -> float:
        """Vehicle seconds to climb ``alt_m`` (arming and spin-up included)."""
        return alt_m / CLIMB_M_S + LEG_OVERHEAD_S

    def descent_s(self, alt_m: float) -> float:
        """Vehicle seconds to land from ``alt_m`` and disarm (the last metres slow)."""
        return alt_m / DESCENT_M_S + 5.0 / LAND_M_S + 2.0 + LEG_OVERHEAD_S


@pytest.fixture
def sim_speed() -> float:
    """Speed factor for the simulator (override in a module to slow a test down)."""
    return SIM_SPEED


@pytest.fixture(params=["sim", pytest.param("px4", marks=pytest.mark.px4)])
async def flight(
    request: pytest.FixtureRequest, sim_speed: float, px4_fleet: Px4Factory
) -> AsyncIterator[Flight]:
    """One ready vehicle: sim/, or (marked px4) a fresh PX4 SITL from the bundle at a demo dock."""
    if request.param == "px4":
        (px4,) = await px4_fleet(1)
        async with LinkManager(telemetry_hz=10.0) as links:
            link = await links.add_vehicle(sysid=px4.sysid, url=px4.url)
            await link.wait_ready(timeout_s=60)
            snap = link.latest
            assert snap is not None and snap.home_lat is not None and snap.home_lon is not None
            home = (snap.home_lat, snap.home_lon, snap.home_alt_amsl_m or 0.0)
            yield Flight(
                link=link,
                links=links,
                probe=VehicleProbe("px4"),
                home=home,
                speed=px4.speed,
                cruise_m_s=PX4_CRUISE_M_S,
            )
        return
    async with _sim_flight(sim_speed) as sim:
        yield sim


@pytest.fixture
async def sim_flight(sim_speed: float) -> AsyncIterator[Flight]:
    """One ready simulated vehicle, for tests that inject faults."""
    async with _sim_flight(sim_speed) as sim:
        yield sim


@contextlib.asynccontextmanager
async def _sim_flight(speed: float) -> AsyncIterator[Flight]:
    base = free_udp_base(1)
    async with (
        SimFleet(
            count=1,
            base_port=base,
            speed=speed,
            home=HOME,
            config=SimConfig(stream_hz=PX4_STREAM_HZ, tick_hz=100.0),
        ) as fleet,
        LinkManager(telemetry_hz=10.0) as links,
    ):
        link = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base}")
        await link.wait_ready(timeout_s=15)
        yield Flight(
            link=link, links=links, probe=VehicleProbe("sim", fleet.vehicles[0]), home=HOME, speed=speed
        )


@pytest.fixture
async def fleet_links() -> AsyncIterator[Callable[[int], Awaitable[tuple[SimFleet, LinkManager]]]]:
    """Factory: ``await make(n)`` starts n simulated vehicles and links them all; closed after the test."""
    stack: list[tuple[SimFleet, LinkManager]] = []

    async def make(count: int, *, speed: float = SIM_SPEED) -> tuple[SimFleet, LinkManager]:
        base = free_udp_base(count)
        fleet = SimFleet(count=count, base_port=base, speed=speed, home=HOME)
        await fleet.__aenter__()
        links = LinkManager(telemetry_hz=10.0)
        await links.__aenter__()
        stack.append((fleet, links))
        for i in range(count):
            await links.add_vehicle(sysid=i + 1, url=f"udpin://0.0.0.0:{base + i}")
        await asyncio.gather(*(link.wait_ready(timeout_s=20) for link in links.all()))
        return fleet, links

    try:
        yield make
    finally:
        for fleet, links in reversed(stack):
            await links.__aexit__(None, None, None)
            await fleet.__aexit__(None, None, None)
