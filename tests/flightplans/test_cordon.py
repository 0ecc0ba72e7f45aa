"""Cordon planning: radii grow with elapsed time, stations at road crossings (merged, facing out of the
ring), evenly spaced without roads, clear of no-fly zones; min-max assignment beats the greedy one."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest
from shapely.geometry import LineString, Point

from flightplans.cordon import (
    cordon_radii,
    greedy_assignment,
    minmax_assignment,
    place_stations,
    road_lines,
)
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame

ROOT = Path(__file__).resolve().parents[2]


def test_radii_grow_with_elapsed_time_and_have_a_floor():
    early = cordon_radii(flee_speed_m_s=3.0, elapsed_s=10.0)
    late = cordon_radii(flee_speed_m_s=3.0, elapsed_s=300.0)
    assert early[0] == 150.0 and late[0] == 900.0
    assert late[0] < late[1] < late[2]
    with pytest.raises(PlanningError, match="flee_speed_m_s"):
        cordon_radii(flee_speed_m_s=0.0, elapsed_s=1.0)


def test_stations_sit_where_roads_cross_and_face_out():
    roads = [LineString([(-1000, 50), (1000, 50)]), LineString([(0, -1000), (0, 1000)])]
    stations, dropped = place_stations((0, 0), 300.0, roads=roads, count=5)
    assert not dropped and len(stations) == 4 and {s.source for s in stations} == {"road"}
    for s in stations:
        assert math.hypot(s.x, s.y) == pytest.approx(300.0, abs=1.0)
        outward = math.degrees(math.atan2(s.x, s.y)) % 360
        assert abs((s.look_deg - outward + 180) % 360 - 180) < 90  # along the road, away from the scene
    # Two crossings 20 m apart are one station.
    close = [LineString([(-1000, 0), (1000, 0)]), LineString([(-1000, 20), (1000, 20)])]
    assert len(place_stations((0, 0), 300.0, roads=close, count=3)[0]) == 2


def test_stations_avoid_no_fly_zones():
    zone = Point(0, 300).buffer(40)
    stations, dropped = place_stations((0, 0), 300.0, roads=[], count=4, nofly=[zone], clearance_m=20)
    assert len(stations) == 4 and not dropped
    assert all(not zone.buffer(20).contains(Point(s.x, s.y)) for s in stations)
    big = Point(0, 300).buffer(200)
    stations, dropped = place_stations((0, 0), 300.0, roads=[], count=4, nofly=[big], clearance_m=20)
    assert len(stations) == 3 and len(dropped) == 1 and "no-fly" in dropped[0].reason


def test_minmax_is_optimal_and_never_worse_than_greedy():
    rng = random.Random(7)
    for _ in range(40):
        n, m = rng.randint(2, 5), rng.randint(2, 5)
        eta = [[rng.uniform(10, 300) if rng.random() > 0.1 else math.inf for _ in range(m)] for _ in range(n)]
        got, worst = minmax_assignment(eta)
        _, greedy_worst = greedy_assignment(eta)
        # Brute force: the most stations manned, then the smallest latest arrival.
        best = (0, 0.0)
        for perm in itertools.permutations(range(max(n, m))):
            pairs = [(i, perm[i]) for i in range(n) if perm[i] < m and math.isfinite(eta[i][perm[i]])]
            key = (len(pairs), -max((eta[i][j] for i, j in pairs), default=0.0))
            best = max(best, key)
        assert (len(got), -worst) == best
        assert len(set(got.values())) == len(got)
        greedy_n = len(greedy_assignment(eta)[0])
        if greedy_n == len(got):
            assert worst <= greedy_worst + 1e-9


def test_demo_road_layer_loads_in_a_local_frame():
    layer = json.loads((ROOT / "mission/cordons/demo_roads.geojson").read_text())
    frame = LocalFrame(39.82, 109.98)
    lines = road_lines(layer, to_local=frame.point_to_local)
    assert len(lines) >= 10
    stations, _ = place_stations((0, 0), 900.0, roads=lines, count=4)
    assert len(stations) >= 4 and all(s.source == "road" for s in stations)
    with pytest.raises(PlanningError, match="Point"):
        points = {"type": "FeatureCollection", "features": [{"geometry": {"type": "Point"}}]}
        road_lines(points, to_local=None)
