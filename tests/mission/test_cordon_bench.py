"""bench.cordon with drones on patrol: the same fleet for every policy, patrol drones clear of the no-fly
zones, and a cordon that takes them mans at least as many stations as one that does not."""

from __future__ import annotations

import random

from shapely.geometry import Point

from bench.cordon import fleet, run, with_patrols
from mission.airspace.service import shape_geometry
from mission.dispatch.ranking import Activity
from mission.scenario import NO_FLY_ZONES


def test_patrol_drones_are_airborne_spread_and_clear_of_the_zones() -> None:
    zones = [shape_geometry(z.shape) for z in NO_FLY_ZONES]
    states = with_patrols(fleet(2), 4, random.Random(3), (60.0, 95.0), zones)
    patrols = [s for s in states if s.activity is Activity.PATROL]
    assert len(states) == 14 and len(patrols) == 4
    assert len({(s.home_lat, s.home_lon) for s in patrols}) == 4  # from four docks
    assert all(s.alt_rel_m > 0 and 60.0 <= s.battery_pct <= 95.0 for s in patrols)
    assert not any(z.contains(Point(s.lon, s.lat)) for z in zones for s in patrols)


def test_taking_patrol_drones_mans_at_least_as_many_stations() -> None:
    out = run(incidents=3, seed=5, hold_s=900.0, per_dock=2, min_hold_s=300.0, airborne=4)
    assert out["stations_manned_share"] >= out["without_patrols_stations_manned_share"]
    assert out["airborne"] == 4 and "with_patrols_as_many_s_p50" in out
    assert "without_patrols_stations_manned_share" not in run(
        incidents=1, seed=5, hold_s=900.0, per_dock=2, min_hold_s=300.0
    )
