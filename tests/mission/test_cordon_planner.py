"""The cordon planner over true ETAs: a drone too far to hold a station for the whole planned hold is fit
when stations are relieved on battery and it can hold at least ``min_hold_s`` (and return with a reserve)."""

from __future__ import annotations

from flightplans.geodesy import LocalFrame
from mission.cordons.planner import plan_cordon
from mission.dispatch.energy import Performance
from mission.dispatch.ranking import Activity, VehicleState
from mission.safety.routing import Airspace

LAT, LON = 39.82, 109.98


def _drone(vid: int, north_m: float) -> VehicleState:
    lat, lon = LocalFrame(LAT, LON).point_to_wgs84(0.0, north_m)
    return VehicleState(
        vehicle_id=vid,
        name=f"uav-{vid}",
        lat=lat,
        lon=lon,
        alt_rel_m=0.0,
        activity=Activity.DOCKED,
        battery_pct=100.0,
        home_lat=lat,
        home_lon=lon,
        perf=Performance(cruise_speed_m_s=12.0, battery_wh=250.0),
    )


def _plan(min_hold_s: float | None):  # type: ignore[no-untyped-def]
    return plan_cordon(
        lat=LAT,
        lon=LON,
        radii_m=[200.0],
        flee_speed_m_s=2.5,
        elapsed_s=60.0,
        stations_per_ring=[2],
        roads_latlon=None,
        nofly_lonlat=[],
        states=[_drone(1, 0.0), _drone(2, 6000.0)],
        airspace=Airspace(LocalFrame(LAT, LON), []),
        hold_s=900.0,
        alt_m=40.0,
        clearance_m=20.0,
        min_hold_s=min_hold_s,
    )


def test_a_far_drone_mans_a_station_when_a_relief_will_take_over():
    without = _plan(None)
    assert sorted(s.vehicle_id or 0 for s in without.stations) == [0, 1]
    unmanned = next(s for s in without.stations if s.vehicle_id is None)
    assert "no drone left" in unmanned.reason
    rotated = _plan(300.0)
    assert sorted(s.vehicle_id or 0 for s in rotated.stations) == [1, 2]
    assert all(s.reason == "" for s in rotated.stations)
