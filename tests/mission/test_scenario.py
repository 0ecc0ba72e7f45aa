"""The demo district is consistent geography and seeds an empty database once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shapely.geometry import Point, box
from sqlmodel import Session

from mission import scenario
from mission.airspace import service as airspace
from mission.airspace.models import ZoneKind
from mission.fleet import service as fleet

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # 20:00 local: the match evening


def test_every_dock_is_in_its_zone_and_clear_of_no_fly_zones() -> None:
    zones = {z.name: airspace.shape_geometry(z.shape) for z in scenario.demo_zones(now=NOW)}
    no_fly = [airspace.shape_geometry(z.shape) for z in scenario.NO_FLY_ZONES]
    stadium = airspace.shape_geometry(scenario.STADIUM)
    assert len(scenario.PATROL_ZONES) == 7 and len(scenario.DOCKS) == 7
    for dock in scenario.DOCKS:
        here = Point(dock.lon, dock.lat)
        assert zones[dock.zone].contains(here), dock.name
        assert not any(z.buffer(0.002).contains(here) for z in no_fly), dock.name  # ~200 m clear
        assert not stadium.contains(here)


def test_district_is_about_10_by_8_km_around_the_center() -> None:
    patrol = [airspace.shape_geometry(z.shape) for z in scenario.PATROL_ZONES]
    west, south, east, north = box(*patrol[0].bounds).union(box(*patrol[-1].bounds)).bounds
    width_km = (east - west) * 111.32 * 0.768  # cos(39.82 deg)
    height_km = (north - south) * 111.32
    assert 9 < width_km < 11 and 7 < height_km < 9
    assert west < scenario.CENTER_LON < east and south < scenario.CENTER_LAT < north
    # The patrol zones tile the district without overlapping.
    for i, a in enumerate(patrol):
        for b in patrol[i + 1 :]:
            assert a.intersection(b).area < 1e-12


def test_stadium_event_is_restricted_on_the_match_evening() -> None:
    during = scenario.stadium_event(now=NOW)
    assert during.active_from <= NOW < during.active_until  # type: ignore[operator]
    after = scenario.stadium_event(now=NOW + timedelta(hours=5))
    assert after.active_from == during.active_from + timedelta(days=1)  # type: ignore[operator]


def test_seed_is_idempotent(session: Session) -> None:
    first = scenario.seed(session=session, vehicle_count=3, base_port=15000, now=NOW)
    assert len(first.zones_created) == 11 and first.vehicles_created == ["drone-1", "drone-2", "drone-3"]
    again = scenario.seed(session=session, vehicle_count=3, base_port=15000, now=NOW)
    assert again.zones_created == [] and again.vehicles_created == []
    vehicles, _ = fleet.list_vehicles(session=session)
    assert [(v.sysid, v.connection_url) for v in vehicles] == [
        (1, "udpin://0.0.0.0:15000"),
        (2, "udpin://0.0.0.0:15001"),
        (3, "udpin://0.0.0.0:15002"),
    ]
    assert vehicles[0].dock == scenario.DOCKS[0].name
    kinds = {r.kind for r in airspace.active_restrictions(session=session, at=NOW)}
    assert kinds == {ZoneKind.no_fly, ZoneKind.event}
