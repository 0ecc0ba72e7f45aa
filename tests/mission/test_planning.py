"""Plan requests -> previews: every kind flies, no-fly zones are avoided or reported, bad input is named."""

from __future__ import annotations

import pytest
from shapely.geometry import LineString, shape

from flightplans.errors import PlanningError
from flightplans.items import FenceCircle
from mission.airspace.service import circle_polygon
from mission.planning import NoFly, PlanContext, PlanRequest, preview

HOME = (39.8150, 109.9800)
HOSPITAL = NoFly(
    name="hospital",
    geometry=circle_polygon(lon=109.985, lat=39.82, radius_m=150),
    floor_m=0,
    ceiling_m=300,
    fence=FenceCircle(lat=39.82, lon=109.985, radius_m=150, inclusion=False),
)
CTX = PlanContext(nofly=(HOSPITAL,), home=HOME, battery_wh=100, endurance_s=1800, actuators={"spotlight": 2})
BLOCK = {
    "type": "Polygon",
    "coordinates": [
        [[109.978, 39.818], [109.992, 39.818], [109.992, 39.822], [109.978, 39.822], [109.978, 39.818]]
    ],
}
THROUGH = {"type": "LineString", "coordinates": [[109.978, 39.82], [109.992, 39.82]]}


def _plan(kind, geometry, ctx=CTX, **params):
    return preview(PlanRequest(kind=kind, geometry=geometry, params=params), context=ctx)


def _path_hits_hospital(pv) -> bool:
    return shape(pv.path).intersects(HOSPITAL.geometry)


@pytest.mark.parametrize(
    ("kind", "geometry", "params"),
    [
        ("sweep", BLOCK, {"swath_m": 80}),
        ("perimeter", BLOCK, {"inset_m": 20}),
        ("corridor", {"type": "LineString", "coordinates": [[109.97, 39.81], [109.975, 39.812]]}, {}),
        ("orbit", {"type": "Point", "coordinates": [109.97, 39.81]}, {"radius_m": 80, "dwell_s": 60}),
        ("rings", {"type": "Point", "coordinates": [109.985, 39.822]}, {"radii_m": [400], "drones": 2}),
        ("route", THROUGH, {}),
    ],
)
def test_each_kind_compiles_a_safe_mission_around_the_no_fly_zone(kind, geometry, params):
    pv = _plan(kind, geometry, **params)
    assert pv.violations == [], [v.message for v in pv.violations]
    assert not _path_hits_hospital(pv)
    kinds = [i["kind"] for i in pv.items]
    assert kinds[:2] == ["takeoff", "change_speed"] and kinds[-1] == "return"
    assert pv.metrics["length_m"] > 0 and pv.metrics["flight_time_s"] > 0 and pv.metrics["energy_wh"] > 0
    # the path starts and ends at home
    coords = list(LineString(shape(pv.path)).coords)
    assert coords[0] == pytest.approx((HOME[1], HOME[0]), abs=1e-6)
    assert coords[-1] == pytest.approx((HOME[1], HOME[0]), abs=1e-6)


def test_sweep_cuts_the_no_fly_zone_out_and_reports_coverage():
    pv = _plan("sweep", BLOCK, swath_m=60)
    assert 0.8 < pv.metrics["coverage"] < 1.0  # the hospital's disc (and its clearance) is not covered
    assert not _path_hits_hospital(pv)


def test_custom_line_through_a_zone_is_reported_with_where():
    pv = _plan("custom", THROUGH)
    nofly = [v for v in pv.violations if v.kind == "nofly"]
    assert nofly and "hospital" in nofly[0].message
    where = nofly[0].where
    assert abs(where["lat"] - 39.82) < 0.002 and abs(where["lon"] - 109.985) < 0.003


def test_zone_below_the_flight_altitude_is_flown_over():
    low = NoFly(name="stadium", geometry=HOSPITAL.geometry, floor_m=0, ceiling_m=40, fence=HOSPITAL.fence)
    ctx = PlanContext(nofly=(low,), home=HOME, battery_wh=100, endurance_s=1800)
    assert _plan("custom", THROUGH, ctx, alt_m=60).violations == []
    assert [v.kind for v in _plan("custom", THROUGH, ctx, alt_m=30).violations] == ["nofly"]


def test_battery_and_endurance_are_judged():
    ctx = PlanContext(home=HOME, battery_wh=100, endurance_s=1800, battery_pct=25)
    pv = _plan("perimeter", BLOCK, ctx)
    assert any(v.kind == "energy" for v in pv.violations)
    ctx = PlanContext(home=HOME, battery_wh=100, endurance_s=1800, battery_pct=15)
    low = _plan("custom", THROUGH, ctx)
    assert any("below the 20% reserve" in v.message or "at or below" in v.message for v in low.violations)


def test_payloads_are_switched_through_the_vehicles_actuator_map():
    pv = _plan(
        "custom",
        {"type": "LineString", "coordinates": [[109.97, 39.81], [109.972, 39.81]]},
        payload_on=["spotlight"],
    )
    acts = [(i["index"], i["value"]) for i in pv.items if i["kind"] == "set_actuator"]
    assert acts == [(2, 1.0), (2, -1.0)]
    with pytest.raises(PlanningError, match="payload 'siren' has no actuator on this vehicle"):
        _plan("custom", THROUGH, payload_on=["siren"])


def test_geofence_has_the_operating_area_and_nearby_zones():
    pv = _plan("route", THROUGH)
    shapes = pv.geofence["shapes"]
    assert shapes[0]["kind"] == "polygon" and shapes[0]["inclusion"]
    assert any(s["kind"] == "circle" and s["inclusion"] is False for s in shapes)
    far = _plan("orbit", {"type": "Point", "coordinates": [109.95, 39.80]}, radius_m=50, dwell_s=30)
    assert len(far.geofence["shapes"]) == 1  # the hospital is nowhere near


@pytest.mark.parametrize(
    ("kind", "geometry", "params", "message"),
    [
        ("sweep", {"type": "Point", "coordinates": [109.98, 39.82]}, {}, "needs a Polygon"),
        ("custom", THROUGH, {"swath": 3}, "params.swath"),
        ("sweep", BLOCK, {"swath_m": -5}, "params.swath_m"),
        ("orbit", {"type": "Point", "coordinates": [109.98, 95.0]}, {}, "lat"),
        ("rings", {"type": "Point", "coordinates": [109.985, 39.822]}, {"drone_index": 9}, "drone_index 9"),
    ],
)
def test_bad_input_names_the_problem(kind, geometry, params, message):
    with pytest.raises(PlanningError, match=message):
        _plan(kind, geometry, **params)
