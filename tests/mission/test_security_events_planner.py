"""Event plan sets: legs stay out of no-fly zones, the sweep covers the venue, rings meet the revisit."""

from __future__ import annotations

import itertools

import pytest
from shapely.geometry import LineString, Point, box

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from mission.safety.routing import NoFlyZone
from mission.security_events.planner import plan_event

FRAME = LocalFrame(39.82, 109.98)
VENUE = FRAME.to_wgs84(box(-150, -100, 150, 100))  # a stadium 300 m x 200 m
HELIPAD = NoFlyZone("hospital helipad", FRAME.to_wgs84(Point(0, 420).buffer(80)))
PRISON = NoFlyZone("prison", FRAME.to_wgs84(box(120, -60, 400, 60)))  # overlaps the venue's east end


def legs(points):
    local = [FRAME.point_to_local(lat, lon) for lat, lon in points]
    return [LineString([a, b]) for a, b in itertools.pairwise(local) if a != b]


def test_every_leg_of_the_event_plan_stays_out_of_no_fly_zones():
    plan = plan_event(
        VENUE, ring_radii_m=[300, 500], drones=8, revisit_s=240, nofly=[HELIPAD, PRISON], sweep_drones=3
    )
    zones = [FRAME.to_local(z.polygon_lonlat) for z in (HELIPAD, PRISON)]
    all_paths = [t.waypoints for t in plan.sweep] + [t.waypoints for t in plan.rings]
    assert len(plan.sweep) == 3 and plan.rings
    for path in all_paths:
        for leg in legs(path):
            for zone in zones:
                assert zone.intersection(leg).length < 0.01
    for p in plan.overwatch:
        x, y = FRAME.point_to_local(p.lat, p.lon)
        assert not any(z.buffer(30).contains(Point(x, y)) for z in zones)


def test_coverage_is_reported_against_the_targets():
    plan = plan_event(
        VENUE, ring_radii_m=[300, 500], drones=8, revisit_s=240, nofly=[HELIPAD], sweep_drones=2, swath_m=40
    )
    cov = plan.coverage
    assert cov.sweep_ratio > 0.9
    assert cov.rings_meet_target and cov.worst_ring_gap_s <= 240
    assert len(cov.ring_gaps_s) == 2
    assert cov.overwatch_points == 4
    # The restricted zone covers the venue and the outer ring.
    restricted = FRAME.to_local(plan.restricted_lonlat)
    assert restricted.contains(FRAME.to_local(VENUE))
    assert restricted.contains(Point(0, 0).buffer(500))


def test_too_few_drones_say_how_many_are_needed():
    plan = plan_event(VENUE, ring_radii_m=[300, 600], drones=2, revisit_s=60)
    assert not plan.coverage.rings_meet_target
    assert "needed" in plan.coverage.ring_reason


def test_a_prison_overlap_removes_that_part_from_the_sweep():
    full = plan_event(VENUE, ring_radii_m=[300], drones=4, revisit_s=600)
    cut = plan_event(VENUE, ring_radii_m=[300], drones=4, revisit_s=600, nofly=[PRISON])
    assert cut.coverage.sweep_ratio < full.coverage.sweep_ratio


def test_bad_inputs_name_the_problem():
    with pytest.raises(PlanningError, match="drones"):
        plan_event(VENUE, ring_radii_m=[300], drones=0, revisit_s=60)
    with pytest.raises(PlanningError, match="radii_m is empty"):
        plan_event(VENUE, ring_radii_m=[], drones=2, revisit_s=60)
    whole = NoFlyZone("airport", FRAME.to_wgs84(box(-1000, -1000, 1000, 1000)))
    with pytest.raises(PlanningError, match="inside no-fly zones"):
        plan_event(VENUE, ring_radii_m=[300], drones=2, revisit_s=60, nofly=[whole])
