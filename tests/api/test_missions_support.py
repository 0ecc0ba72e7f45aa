"""Shared pieces of the mission, command and plan API tests (no tests here)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from api import migrations
from tests.support.geo import HOME as HOME_3D
from tests.support.net import free_udp_base
from tests.support.service import USERS, Service, running_service

HOME = HOME_3D[:2]  # the demo district; the sim's vehicles start here
# A no-fly zone (hospital helipad) 600 m east of home.
HOSPITAL = {
    "name": "hospital helipad",
    "kind": "no_fly",
    "shape": {"type": "Circle", "center": [109.9870, 39.8200], "radius_m": 150},
    "floor_m": 0,
    "ceiling_m": 300,
}
free_udp_ports = free_udp_base


def make_schema(engine: Engine) -> None:
    """The migrated schema, as the service's lifespan builds it."""
    migrations.upgrade(engine)


__all__ = ["HOME", "HOSPITAL", "USERS", "Service", "free_udp_ports", "make_schema", "running_service"]
