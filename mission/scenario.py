"""The demo district (~10 x 8 km around 39.82 N 109.98 E) as data, and a seed for an empty database.

Seven patrol zones, each with a dock at a police workstation; a stadium whose event area is restricted on
match evenings; three no-fly zones (hospital helipad, prison, airport approach). All positions WGS84.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, select

from mission.airspace.models import CircleShape, PolygonShape, Zone, ZoneCreate, ZoneKind
from mission.audit.clock import as_utc, utcnow
from mission.fleet.models import Capability, Vehicle, VehicleCreate

CENTER_LAT, CENTER_LON = 39.82, 109.98
HOME_ALT_M = 1320.0  # the district's ground level AMSL
DEFAULT_SIM_BASE_PORT = 14540


@dataclass(frozen=True, slots=True)
class Dock:
    """A drone dock at a police workstation, inside the patrol zone it serves."""

    name: str
    zone: str
    lat: float
    lon: float


def _rect(west: float, south: float, east: float, north: float) -> PolygonShape:
    ring = [(west, south), (east, south), (east, north), (west, north), (west, south)]
    return PolygonShape(type="Polygon", coordinates=[ring])


# Two rows of patrol zones tiling the district: four in the north, three in the south.
_W, _E, _S, _N, _MID = 109.92, 110.04, 39.784, 39.856, 39.820
PATROL_ZONES: tuple[ZoneCreate, ...] = (
    ZoneCreate(
        name="Patrol 1 - Riverside", kind=ZoneKind.patrol, shape=_rect(_W, _MID, 109.95, _N), ceiling_m=120
    ),
    ZoneCreate(
        name="Patrol 2 - Old Town", kind=ZoneKind.patrol, shape=_rect(109.95, _MID, 109.98, _N), ceiling_m=120
    ),
    ZoneCreate(
        name="Patrol 3 - Civic Center",
        kind=ZoneKind.patrol,
        shape=_rect(109.98, _MID, 110.01, _N),
        ceiling_m=120,
    ),
    ZoneCreate(
        name="Patrol 4 - East Gate", kind=ZoneKind.patrol, shape=_rect(110.01, _MID, _E, _N), ceiling_m=120
    ),
    ZoneCreate(
        name="Patrol 5 - Market", kind=ZoneKind.patrol, shape=_rect(_W, _S, 109.96, _MID), ceiling_m=120
    ),
    ZoneCreate(
        name="Patrol 6 - Stadium", kind=ZoneKind.patrol, shape=_rect(109.96, _S, 110.00, _MID), ceiling_m=120
    ),
    ZoneCreate(
        name="Patrol 7 - Industrial", kind=ZoneKind.patrol, shape=_rect(110.00, _S, _E, _MID), ceiling_m=120
    ),
)

DOCKS: tuple[Dock, ...] = (
    Dock(name="Workstation Riverside", zone="Patrol 1 - Riverside", lat=39.8371, lon=109.9352),
    Dock(name="Workstation Old Town", zone="Patrol 2 - Old Town", lat=39.8402, lon=109.9668),
    Dock(name="Workstation Civic Center", zone="Patrol 3 - Civic Center", lat=39.8288, lon=109.9941),
    Dock(name="Workstation East Gate", zone="Patrol 4 - East Gate", lat=39.8305, lon=110.0198),
    Dock(name="Workstation Market", zone="Patrol 5 - Market", lat=39.8046, lon=109.9387),
    Dock(name="Workstation Stadium", zone="Patrol 6 - Stadium", lat=39.7941, lon=109.9712),
    Dock(name="Workstation Industrial", zone="Patrol 7 - Industrial", lat=39.8052, lon=110.0163),
)

NO_FLY_ZONES: tuple[ZoneCreate, ...] = (
    ZoneCreate(
        name="No-fly - Hospital helipad",
        kind=ZoneKind.no_fly,
        shape=CircleShape(type="Circle", center=(109.9595, 39.8296), radius_m=300),
        ceiling_m=500,
        description="People's Hospital rooftop helipad",
    ),
    ZoneCreate(
        name="No-fly - Prison",
        kind=ZoneKind.no_fly,
        shape=PolygonShape(
            type="Polygon",
            coordinates=[
                [
                    (110.024, 39.788),
                    (110.034, 39.788),
                    (110.034, 39.795),
                    (110.027, 39.797),
                    (110.024, 39.788),
                ]
            ],
        ),
        ceiling_m=500,
        description="Municipal prison and its perimeter",
    ),
    ZoneCreate(
        name="No-fly - Airport approach",
        kind=ZoneKind.no_fly,
        shape=PolygonShape(
            type="Polygon",
            coordinates=[
                [
                    (110.030, 39.846),
                    (110.060, 39.856),
                    (110.058, 39.862),
                    (110.028, 39.852),
                    (110.030, 39.846),
                ]
            ],
        ),
        ceiling_m=1000,
        description="Final approach corridor of the airport to the north-east",
    ),
)

STADIUM = CircleShape(type="Circle", center=(109.9805, 39.8005), radius_m=450)


def stadium_event(*, now: datetime) -> ZoneCreate:
    """The stadium's event area, restricted on the next match evening (18:00-23:00 local, UTC+8)."""
    now = as_utc(now)
    start = now.replace(hour=10, minute=0, second=0, microsecond=0)  # 18:00 at UTC+8
    if start + timedelta(hours=5) <= now:
        start += timedelta(days=1)
    return ZoneCreate(
        name="Event - Stadium",
        kind=ZoneKind.event,
        shape=STADIUM,
        ceiling_m=300,
        active_from=start,
        active_until=start + timedelta(hours=5),
        description="Match evening: temporary restriction over the stadium and its forecourt",
    )


def demo_zones(*, now: datetime | None = None) -> tuple[ZoneCreate, ...]:
    """Every zone of the demo district."""
    return (*PATROL_ZONES, *NO_FLY_ZONES, stadium_event(now=now or utcnow()))


# MAVLink gives a link 253 vehicle sysids: 1..255 without MAVSDK's (245) and QGroundControl's (255) own.
# Simulated vehicle i streams to its own port and the sysids repeat past 253 (as `python -m sim` numbers
# them); the registry holds one vehicle per sysid and connection URL, and the link layer puts a repeated
# sysid in another MAVSDK instance. `serve --sim` stops at the simulator's own ceiling (one process).
_GCS_SYSIDS = frozenset({245, 255})
SIM_SYSIDS = tuple(s for s in range(1, 256) if s not in _GCS_SYSIDS)
MAX_SIM_VEHICLES = 2000  # sim.fleet.MAX_VEHICLES: mission/ does not import the simulator


def sim_sysid(index: int) -> int:
    """Simulated vehicle ``index``'s sysid as ``python -m sim`` gives it (1..244, 246..254, 1 ...)."""
    if not 0 <= index < MAX_SIM_VEHICLES:
        raise ValueError(
            f"the simulator runs at most {MAX_SIM_VEHICLES} vehicles in one process; vehicle #{index + 1} "
            "is past that"
        )
    return SIM_SYSIDS[index % len(SIM_SYSIDS)]


def demo_vehicles(*, count: int, base_port: int = DEFAULT_SIM_BASE_PORT) -> list[VehicleCreate]:
    """``count`` simulated quadcopters: sysid ``sim_sysid(i)`` at ``udpin://0.0.0.0:base_port+i``."""
    vehicles = []
    for i in range(count):
        dock = DOCKS[i % len(DOCKS)]
        caps = [Capability.camera]
        actuators: dict[Capability, int] = {}
        if i % 2 == 0:
            caps.append(Capability.speaker)
            actuators[Capability.speaker] = 1
        if i % 3 == 0:
            caps.append(Capability.spotlight)
            actuators[Capability.spotlight] = 2
        vehicles.append(
            VehicleCreate(
                name=f"drone-{i + 1}",
                connection_url=f"udpin://0.0.0.0:{base_port + i}",
                sysid=sim_sysid(i),
                home_lat=dock.lat,
                home_lon=dock.lon,
                home_alt_m=HOME_ALT_M,
                dock=dock.name,
                capabilities=caps,
                cruise_speed_m_s=12.0,
                endurance_s=1800.0,
                battery_wh=250.0,
                payload_actuators=actuators,
            )
        )
    return vehicles


@dataclass(frozen=True, slots=True)
class SeedResult:
    zones_created: list[str] = field(default_factory=list)
    vehicles_created: list[str] = field(default_factory=list)


def seed(
    *,
    session: Session,
    vehicle_count: int = 0,
    base_port: int = DEFAULT_SIM_BASE_PORT,
    now: datetime | None = None,
) -> SeedResult:
    """Add the demo zones and vehicles that are not there yet (by name); never changes existing rows."""
    from mission.airspace import service as airspace
    from mission.fleet import service as fleet

    result = SeedResult()
    existing_zones = set(session.exec(select(Zone.name)).all())
    for zone in demo_zones(now=now):
        if zone.name not in existing_zones:
            airspace.create_zone(session=session, data=zone)
            result.zones_created.append(zone.name)
    rows = session.exec(select(Vehicle)).all()
    names, links = {v.name for v in rows}, {(v.connection_url, v.sysid) for v in rows}
    for vehicle in demo_vehicles(count=vehicle_count, base_port=base_port):
        if vehicle.name in names or (vehicle.connection_url, vehicle.sysid) in links:
            continue
        fleet.create(session=session, data=vehicle)
        result.vehicles_created.append(vehicle.name)
    return result
