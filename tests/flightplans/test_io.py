"""QGroundControl .plan, GeoJSON and KML conversions."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon, box

from flightplans.compile import Actuate, Hold, Speed, compile_mission
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.io.geojson import (
    features_from_geojson,
    mission_to_geojson,
    nofly_from_geojson,
    plan_to_geojson,
)
from flightplans.io.kml import KML_NS, mission_to_kml, plan_to_kml
from flightplans.io.qgc import dumps_qgc, from_qgc, to_qgc
from flightplans.items import (
    ChangeSpeed,
    FenceCircle,
    FencePolygon,
    Geofence,
    Land,
    LoiterTime,
    RallyPoint,
    ReturnToLaunch,
    SetActuator,
    Takeoff,
    Waypoint,
)
from flightplans.patterns import perimeter
from flightplans.rings import rings
from flightplans.safety import NoFlyZone

FRAME = LocalFrame(47.3977419, 8.545594)
HOME = {"home_lat": 47.3977419, "home_lon": 8.545594, "home_amsl_m": 487.989}

ITEMS = (
    Takeoff(30.0),
    ChangeSpeed(6.0),
    Waypoint(47.3985099, 8.5451002, 50.0),
    Waypoint(47.3990000, 8.5460000, 55.0, hold_s=5.0, acceptance_m=2.0),
    SetActuator(2, 1.0),
    LoiterTime(47.3995000, 8.5470000, 60.0, seconds=30.0, radius_m=20.0),
    SetActuator(2, -0.5),
    Land(47.3980000, 8.5450000),
    ReturnToLaunch(),
)
FENCE = Geofence(
    (
        FencePolygon(
            (
                (47.39807773798406, 8.543834631785785),
                (47.39983519888905, 8.550024648373267),
                (47.39641100087146, 8.54499282423751),
            ),
            inclusion=True,
        ),
        FencePolygon(((47.3980, 8.5450), (47.3982, 8.5452), (47.3980, 8.5454)), inclusion=False),
        FenceCircle(47.39756763610029, 8.544649762407738, 319.85, inclusion=False),
    )
)
RALLY = (RallyPoint(47.39760401, 8.5509154, 50.0), RallyPoint(47.39902017, 8.54263274, 50.0))


def test_qgc_round_trip_keeps_items_fence_and_rally() -> None:
    text = dumps_qgc(ITEMS, geofence=FENCE, rally=RALLY, **HOME)
    plan = from_qgc(text)
    assert plan.items == ITEMS
    assert plan.geofence == FENCE
    assert plan.rally == RALLY
    assert (plan.home_lat, plan.home_lon, plan.home_amsl_m) == (47.3977419, 8.545594, 487.989)


def test_qgc_document_has_qgc_structure() -> None:
    doc = json.loads(dumps_qgc(ITEMS, geofence=FENCE, rally=RALLY, **HOME))
    assert doc["fileType"] == "Plan" and doc["version"] == 1 and isinstance(doc["groundStation"], str)
    mission = doc["mission"]
    assert mission["version"] == 2 and mission["firmwareType"] == 12 and mission["vehicleType"] == 2
    assert mission["plannedHomePosition"] == [47.3977419, 8.545594, 487.989]
    assert mission["globalPlanAltitudeMode"] == 1
    takeoff, speed, wp = mission["items"][:3]
    assert takeoff == {
        "AMSLAltAboveTerrain": None,
        "Altitude": 30.0,
        "AltitudeMode": 1,
        "autoContinue": True,
        "command": 22,
        "doJumpId": 1,
        "frame": 3,
        "params": [0.0, 0.0, 0.0, None, 47.3977419, 8.545594, 30.0],
        "type": "SimpleItem",
    }
    # DO commands are in the mission frame and carry no altitude fields, as QGC saves them.
    assert speed["frame"] == 2 and speed["command"] == 178 and "Altitude" not in speed
    assert speed["params"] == [1.0, 6.0, -1.0, 0.0, 0.0, 0.0, 0.0]
    assert wp["params"][4:] == [47.3985099, 8.5451002, 50.0] and wp["doJumpId"] == 3
    actuator = mission["items"][4]
    assert actuator["command"] == 187 and actuator["params"] == [None, 1.0, None, None, None, None, 0.0]
    fence = doc["geoFence"]
    assert fence["version"] == 2
    assert fence["polygons"][0]["inclusion"] is True and fence["polygons"][0]["version"] == 1
    assert fence["polygons"][0]["polygon"][0] == [47.39807773798406, 8.543834631785785]
    assert fence["circles"] == [
        {
            "circle": {"center": [47.39756763610029, 8.544649762407738], "radius": 319.85},
            "inclusion": False,
            "version": 1,
        }
    ]
    assert doc["rallyPoints"] == {
        "points": [[47.39760401, 8.5509154, 50.0], [47.39902017, 8.54263274, 50.0]],
        "version": 2,
    }


# As QGroundControl writes it (its documented sample, plus an AMSL waypoint and an RTL).
QGC_SAMPLE = """
{
    "fileType": "Plan",
    "geoFence": {"circles": [], "polygons": [], "version": 2},
    "groundStation": "QGroundControl",
    "mission": {
        "cruiseSpeed": 15,
        "firmwareType": 12,
        "globalPlanAltitudeMode": 1,
        "hoverSpeed": 5,
        "items": [
            {"AMSLAltAboveTerrain": null, "Altitude": 50, "AltitudeMode": 1, "autoContinue": true,
             "command": 22, "doJumpId": 1, "frame": 3,
             "params": [15, 0, 0, null, 47.3985099, 8.5451002, 50], "type": "SimpleItem"},
            {"AMSLAltAboveTerrain": null, "Altitude": 537.989, "AltitudeMode": 2, "autoContinue": true,
             "command": 16, "doJumpId": 2, "frame": 0,
             "params": [0, 0, 0, null, 47.3990, 8.5460, 537.989], "type": "SimpleItem"},
            {"autoContinue": true, "command": 20, "doJumpId": 3, "frame": 2,
             "params": [0, 0, 0, 0, 0, 0, 0], "type": "SimpleItem"}
        ],
        "plannedHomePosition": [47.3977419, 8.545594, 487.989],
        "vehicleType": 2,
        "version": 2
    },
    "rallyPoints": {"points": [[47.39760401, 8.5509154, 50]], "version": 2},
    "version": 1
}
"""


def test_reads_a_qgc_written_plan_and_converts_amsl_altitudes() -> None:
    plan = from_qgc(QGC_SAMPLE)
    assert plan.items[0] == Takeoff(50.0)
    wp = plan.items[1]
    assert isinstance(wp, Waypoint) and wp.alt_m == pytest.approx(50.0) and wp.acceptance_m is None
    assert plan.items[2] == ReturnToLaunch()
    assert plan.rally == (RallyPoint(47.39760401, 8.5509154, 50.0),)
    assert plan.geofence == Geofence(())


def _doc() -> dict:
    return json.loads(QGC_SAMPLE)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(fileType="Mission"), 'fileType must be "Plan"'),
        (lambda d: d.update(version=2), "version 2 is not supported"),
        (
            lambda d: d["mission"]["items"][1].update(command=31000),
            "mission item 1: MAV_CMD 31000 is not supported",
        ),
        (lambda d: d["mission"]["items"][1].update(frame=10), "mission item 1 .* uses MAV_FRAME 10"),
        (lambda d: d["mission"]["items"][1]["params"].__setitem__(4, 91.0), "latitude 91.0 is outside"),
        (
            lambda d: d["mission"]["items"].append({"type": "ComplexItem", "complexItemType": "survey"}),
            "'survey' item",
        ),
        (
            lambda d: d["geoFence"]["polygons"].append({"polygon": [[0, 0], [1, 1]], "inclusion": True}),
            "at least 3",
        ),
        (
            lambda d: d["geoFence"]["circles"].append({"circle": {"center": [0, 0], "radius": -1}}),
            "radius must be positive",
        ),
        (
            lambda d: d["rallyPoints"]["points"].append([1, 2]),
            r"rallyPoints.points\[1\] must be \[lat, lon, alt\]",
        ),
        (lambda d: d.pop("mission"), "no 'mission' object"),
        (lambda d: d.update(geoFence=[1]), "geoFence must be an object"),
        (lambda d: d.update(rallyPoints=[1]), "rallyPoints must be an object"),
    ],
)
def test_bad_plans_are_named(mutate, needle: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(PlanningError, match=needle):
        from_qgc(doc)


def test_bad_json_and_export_input_are_named() -> None:
    with pytest.raises(PlanningError, match="not valid JSON"):
        from_qgc("{nope")
    with pytest.raises(PlanningError, match="at least one mission item"):
        to_qgc([], **HOME)
    with pytest.raises(PlanningError, match=r"latitude 120\.0 is outside"):
        to_qgc(ITEMS, home_lat=120.0, home_lon=0.0)
    with pytest.raises(PlanningError, match="fence polygon needs at least 3 vertices"):
        to_qgc(ITEMS, geofence=Geofence((FencePolygon(((0.0, 0.0), (1.0, 1.0)), inclusion=True),)), **HOME)


def test_compiled_patrol_survives_the_qgc_round_trip() -> None:
    plan = perimeter(box(-300, -200, 300, 200), inset_m=25)
    items = compile_mission(
        plan,
        frame=FRAME,
        alt_m=40,
        speed_m_s=7,
        actions=[Hold(2, seconds=15), Actuate(3, 1, 1.0), Speed(4, 4.0)],
    )
    assert from_qgc(dumps_qgc(items, **HOME)).items == items


def test_geojson_of_a_plan_with_zones_and_area() -> None:
    plan = perimeter(box(-300, -200, 300, 200), inset_m=25)
    zone = NoFlyZone(box(-50, -50, 50, 50), 0, 60, "school")
    doc = plan_to_geojson(
        plan, frame=FRAME, nofly=[zone, box(100, 100, 150, 150)], area=box(-300, -200, 300, 200)
    )
    json.dumps(doc, allow_nan=False)  # plain JSON
    roles = [f["properties"]["role"] for f in doc["features"]]
    assert roles == ["path"] + ["waypoint"] * len(plan.waypoints) + ["nofly", "nofly", "area"]
    path = doc["features"][0]
    assert path["geometry"]["type"] == "LineString"
    assert path["properties"]["length_m"] == pytest.approx(plan.length_m)
    lon, lat = path["geometry"]["coordinates"][0]
    assert math.dist(FRAME.point_to_local(lat, lon), plan.waypoints[0]) < 0.01
    assert doc["features"][-3]["properties"] == {
        "role": "nofly",
        "index": 0,
        "name": "school",
        "floor_m": 0,
        "ceiling_m": 60,
    }
    assert "ceiling_m" not in doc["features"][-2]["properties"]  # unbounded
    zones = nofly_from_geojson(doc, frame=FRAME)
    assert [z.name for z in zones] == ["school", ""]
    assert zones[0].polygon.symmetric_difference(zone.polygon).area < 0.01
    assert zones[0].ceiling_m == 60 and zones[1].ceiling_m == math.inf


def test_geojson_of_rings_and_of_a_mission() -> None:
    plan = rings((0, 0), radii_m=[100, 200], drones=3, revisit_s=120)
    doc = plan_to_geojson(plan, frame=FRAME)
    assert doc["features"][0]["geometry"]["type"] == "MultiLineString"
    mission = mission_to_geojson(ITEMS, geofence=FENCE, rally=RALLY)
    kinds = [(f["properties"]["role"], f["geometry"]["type"]) for f in mission["features"]]
    assert kinds[0] == ("path", "LineString")
    assert kinds.count(("waypoint", "Point")) == 4  # 2 waypoints, a loiter, a landing
    assert kinds.count(("fence", "Polygon")) == 2 and kinds.count(("fence", "Point")) == 1
    assert kinds.count(("rally", "Point")) == 2
    features = features_from_geojson(mission)
    assert features[1].geometry.equals(Point(8.5451002, 47.3985099))


def test_geojson_bad_input_is_named() -> None:
    with pytest.raises(PlanningError, match="expected a GeoJSON FeatureCollection"):
        features_from_geojson({"type": "Polygon", "coordinates": []})
    with pytest.raises(PlanningError, match=r"features\[0\]: GeoJSON Point: latitude 95"):
        features_from_geojson(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 95]}}],
            }
        )
    with pytest.raises(PlanningError, match=r"expected a plan with \.path and \.waypoints"):
        plan_to_geojson([(0, 0)], frame=FRAME)


def _kml(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text)


def test_kml_of_a_plan_with_zones() -> None:
    plan = perimeter(box(-300, -200, 300, 200), inset_m=25)
    text = plan_to_kml(
        plan,
        frame=FRAME,
        alt_m=40,
        nofly=[NoFlyZone(box(-50, -50, 50, 50), name="school")],
        area=box(-300, -200, 300, 200),
    )
    root = _kml(text)
    ns = {"k": KML_NS}
    line = root.find(".//k:Placemark/k:LineString/k:coordinates", ns)
    coords = [tuple(map(float, c.split(","))) for c in line.text.split()]
    assert len(coords) == len(plan.waypoints)
    lon, lat, alt = coords[0]
    assert alt == 40 and math.dist(FRAME.point_to_local(lat, lon), plan.waypoints[0]) < 0.01
    names = [n.text for n in root.iter(f"{{{KML_NS}}}name")]
    assert "school" in names and "operating area" in names and "WP 0" in names
    polygons = root.findall(".//k:Polygon", ns)
    assert len(polygons) == 2


def test_kml_of_a_mission_with_fence() -> None:
    root = _kml(mission_to_kml(ITEMS, geofence=FENCE, name="patrol 7"))
    ns = {"k": KML_NS}
    assert root.find("k:Document/k:name", ns).text == "patrol 7"
    assert len(root.findall(".//k:Polygon", ns)) == 3  # two fence polygons and the circle
    circle = root.findall(".//k:Polygon", ns)[2].find(".//k:coordinates", ns).text.split()
    lon, lat, _ = map(float, circle[0].split(","))
    frame = LocalFrame(47.39756763610029, 8.544649762407738)
    assert math.hypot(*frame.point_to_local(lat, lon)) == pytest.approx(319.85, abs=0.01)


def test_kml_bad_input_is_named() -> None:
    with pytest.raises(PlanningError, match="alt_m must be positive"):
        plan_to_kml(perimeter(box(0, 0, 100, 100), inset_m=5), frame=FRAME, alt_m=0)
    with pytest.raises(PlanningError, match="geometry is empty"):
        plan_to_kml(perimeter(box(0, 0, 100, 100), inset_m=5), frame=FRAME, alt_m=30, nofly=[Polygon()])


_lat = st.floats(-90, 90)
_lon = st.floats(-180, 180)
_alt = st.floats(0.5, 500)
_items = st.one_of(
    st.builds(Takeoff, _alt),
    st.builds(ChangeSpeed, st.floats(0.1, 30)),
    st.builds(
        Waypoint,
        _lat,
        _lon,
        _alt,
        hold_s=st.floats(0, 600),
        acceptance_m=st.one_of(st.none(), st.floats(0.1, 50)),
    ),
    st.builds(LoiterTime, _lat, _lon, _alt, seconds=st.floats(0, 3600), radius_m=st.floats(0, 200)),
    st.builds(SetActuator, st.integers(1, 6), st.floats(-1, 1)),
    st.builds(Land, _lat, _lon),
    st.builds(ReturnToLaunch),
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(_items, min_size=1, max_size=12),
    rally=st.lists(st.builds(RallyPoint, _lat, _lon, _alt), max_size=3),
    circles=st.lists(st.builds(FenceCircle, _lat, _lon, st.floats(1, 5000), st.booleans()), max_size=3),
)
def test_any_mission_survives_the_qgc_round_trip(items, rally, circles) -> None:
    fence = Geofence((*FENCE.shapes[:2], *circles))
    plan = from_qgc(dumps_qgc(items, geofence=fence, rally=rally, **HOME))
    assert plan.items == tuple(items)
    assert plan.geofence == fence
    assert plan.rally == tuple(rally)
