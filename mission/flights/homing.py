"""The way home: legs that bring an airborne vehicle to its home around the restrictions, then RTL.

PX4's RTL climbs to RTL_RETURN_ALT (if lower), flies straight home and lands; it does not route around
fences. So the service first flies the vehicle along a routed detour (goto legs at the return altitude)
to a point from which the straight line home is clear, then hands over to RTL.
"""

from __future__ import annotations

from collections.abc import Sequence

from flightplans.errors import PlanningError
from mission.airspace.service import Restriction
from mission.flights.models import Leg, LegKind
from mission.safety.gate import GateConfig, VehicleView
from mission.safety.routing import airspace_at


def home_legs(vehicle: VehicleView, *, restrictions: Sequence[Restriction], config: GateConfig) -> list[Leg]:
    """Goto legs around the zones at the return altitude, then RTL; PlanningError when no way exists."""
    here = vehicle.position
    if here is None:
        return [Leg(kind=LegKind.RTL, tag="home")]
    alt = config.for_vehicle(vehicle).return_alt(here[2])
    home = vehicle.home
    space = airspace_at(restrictions, alt_m=alt, around=home, clearance_m=config.clearance_m)
    route = space.route((here[0], here[1]), home)  # PlanningError: no way around
    corners = space.to_latlon(route)[1:-1]
    legs = [Leg(kind=LegKind.GOTO, lat=lat, lon=lon, alt_m=alt, tag="route") for lat, lon in corners]
    return [*legs, Leg(kind=LegKind.RTL, tag="home")]


__all__ = ["PlanningError", "home_legs"]
