"""Creating a large event: its restricted zone over the event window, its plan set, refusals."""

from __future__ import annotations

import importlib
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import LineString, Point
from sqlmodel import SQLModel

from api import migrations
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from mission.airspace import service as airspace
from mission.airspace.models import ZoneCreate, ZoneKind
from mission.db import make_engine, session_scope
from mission.errors import Conflict
from mission.security_events import service
from mission.security_events.models import SecurityEventCreate

FRAME = LocalFrame(39.8005, 109.9805)
DOORS = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def venue():
    ring = [
        FRAME.point_to_wgs84(x, y)
        for x, y in [(-150, -100), (150, -100), (150, 100), (-150, 100), (-150, -100)]
    ]
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]}


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'events.db'}")
    migrations.upgrade(eng)
    importlib.import_module("mission.security_events.models")
    SQLModel.metadata.create_all(eng)
    lat, lon = FRAME.point_to_wgs84(0, 420)
    with session_scope(eng) as s:
        airspace.create_zone(
            session=s,
            data=ZoneCreate(
                name="helipad",
                kind=ZoneKind.no_fly,
                shape={"type": "Circle", "center": [lon, lat], "radius_m": 80},
                ceiling_m=500,
            ),
        )
    yield eng
    eng.dispose()


def event(**kw):
    return SecurityEventCreate(
        name=kw.pop("name", "derby"),
        venue=venue(),
        doors_open_at=DOORS,
        starts_at=DOORS + timedelta(hours=1),
        ends_at=DOORS + timedelta(hours=3),
        ring_radii_m=[300, 500],
        revisit_s=240,
        drones=8,
        **kw,
    )


def test_event_creates_a_timed_restricted_zone_and_a_plan_clear_of_no_fly_zones(engine):
    with session_scope(engine) as s:
        row = service.create(session=s, data=event(), actor="dan")
        zone = airspace.get_zone(session=s, zone_id=row.zone_id)
        assert zone.kind is ZoneKind.event
        assert zone.active_from == DOORS - service.SWEEP_LEAD and zone.active_until == DOORS + timedelta(
            hours=3
        )
        active_during = {
            r.name for r in airspace.active_restrictions(session=s, at=DOORS + timedelta(hours=2))
        }
        assert zone.name in active_during
        assert zone.name not in {
            r.name for r in airspace.active_restrictions(session=s, at=DOORS + timedelta(days=1))
        }
    plan = row.plan
    assert plan["coverage"]["sweep_ratio"] > 0.9 and plan["coverage"]["rings_meet_target"]
    helipad = Point(0, 420).buffer(80)
    for task in [*plan["sweep"], *plan["rings"]]:
        pts = [FRAME.point_to_local(lat, lon) for lat, lon in task["waypoints"]]
        for a, b in itertools.pairwise(pts):
            if a != b:
                assert helipad.intersection(LineString([a, b])).length < 0.01


def test_duplicate_names_and_bad_windows_are_refused(engine):
    with session_scope(engine) as s:
        service.create(session=s, data=event(), actor="dan")
        with pytest.raises(Conflict, match="already exists"):
            service.create(session=s, data=event(), actor="dan")
    with pytest.raises(ValueError, match="doors_open_at <= starts_at < ends_at"):
        SecurityEventCreate(
            name="x",
            venue=venue(),
            doors_open_at=DOORS,
            starts_at=DOORS,
            ends_at=DOORS - timedelta(hours=1),
            ring_radii_m=[300],
        )
    with pytest.raises(ValueError, match=r"ring radius 5\.0 m must be within 20\.\.5000"):
        SecurityEventCreate.model_validate({**event(name="y").model_dump(), "ring_radii_m": [5]})


def test_deleting_an_event_removes_its_zone(engine):
    with session_scope(engine) as s:
        row = service.create(session=s, data=event(name="concert"), actor="dan")
        zone_id, event_id = row.zone_id, row.id
    with session_scope(engine) as s:
        service.delete(session=s, event_id=event_id)
    with session_scope(engine) as s:
        assert all(z.id != zone_id for z in airspace.list_zones(session=s, limit=50, offset=0)[0])


def test_a_venue_under_a_no_fly_zone_is_a_planning_error(engine):
    lat, lon = FRAME.point_to_wgs84(0, 0)
    with session_scope(engine) as s:
        airspace.create_zone(
            session=s,
            data=ZoneCreate(
                name="airport",
                kind=ZoneKind.no_fly,
                shape={"type": "Circle", "center": [lon, lat], "radius_m": 2000},
                ceiling_m=500,
            ),
        )
    with session_scope(engine) as s, pytest.raises(PlanningError, match="inside no-fly zones"):
        service.create(session=s, data=event(name="blocked"), actor="dan")
