"""Geodesy: WGS84 <-> local metres, distances, bearings, GeoJSON, bad input."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon

from flightplans.errors import PlanningError
from flightplans.geodesy import (
    LocalFrame,
    bearing_deg,
    distance_m,
    geometry_from_geojson,
    geometry_to_geojson,
)


@settings(max_examples=200, deadline=None)
@given(
    lat0=st.floats(-80, 80),
    lon0=st.floats(-179, 179),
    x=st.floats(-20_000, 20_000),
    y=st.floats(-20_000, 20_000),
)
def test_round_trip_error_below_1cm_within_20km(lat0: float, lon0: float, x: float, y: float) -> None:
    frame = LocalFrame(lat0, lon0)
    lat, lon = frame.point_to_wgs84(x, y)
    x2, y2 = frame.point_to_local(lat, lon)
    assert math.hypot(x2 - x, y2 - y) < 0.01


@settings(max_examples=100, deadline=None)
@given(
    lat0=st.floats(-80, 80),
    lon0=st.floats(-179, 179),
    x=st.floats(-20_000, 20_000),
    y=st.floats(-20_000, 20_000),
)
def test_local_distance_from_origin_matches_geodesic(lat0: float, lon0: float, x: float, y: float) -> None:
    # Azimuthal equidistant: distance and bearing from the centre are exact.
    frame = LocalFrame(lat0, lon0)
    lat, lon = frame.point_to_wgs84(x, y)
    assert distance_m(lat0, lon0, lat, lon) == pytest.approx(math.hypot(x, y), abs=0.01)


def test_axes_point_east_and_north() -> None:
    frame = LocalFrame(47.0, 8.0)
    lat_n, lon_n = frame.point_to_wgs84(0.0, 1000.0)
    lat_e, lon_e = frame.point_to_wgs84(1000.0, 0.0)
    assert lat_n > 47.0 and lon_n == pytest.approx(8.0, abs=1e-9)
    assert lon_e > 8.0 and lat_e == pytest.approx(47.0, abs=1e-4)
    assert bearing_deg(47.0, 8.0, lat_n, lon_n) == pytest.approx(0.0, abs=1e-6)
    assert bearing_deg(47.0, 8.0, lat_e, lon_e) == pytest.approx(90.0, abs=0.01)


def test_distance_golden_one_degree_of_latitude_at_equator() -> None:
    # WGS84 meridian arc from 0 to 1 degree latitude: 110574.4 m.
    assert distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(110_574.4, abs=0.5)
    assert bearing_deg(0.0, 0.0, -1.0, 0.0) == pytest.approx(180.0)
    assert bearing_deg(0.0, 0.0, 0.0, -1.0) == pytest.approx(270.0)


def test_geometry_round_trip_keeps_shape_and_area() -> None:
    square_m = Polygon([(-500, -500), (500, -500), (500, 500), (-500, 500)])
    frame = LocalFrame(52.52, 13.405)
    lonlat = frame.to_wgs84(square_m)
    assert lonlat.bounds[0] == pytest.approx(13.3976, abs=1e-3)
    back = frame.to_local(lonlat)
    assert back.area == pytest.approx(1_000_000.0, rel=1e-9)
    assert back.symmetric_difference(square_m).area < 1e-3


def test_altitudes_pass_through() -> None:
    frame = LocalFrame(47.0, 8.0)
    line = LineString([(8.0, 47.0, 100.0), (8.01, 47.01, 120.0)])
    local = frame.to_local(line)
    assert local.has_z and [c[2] for c in local.coords] == [100.0, 120.0]
    back = frame.to_wgs84(local)
    assert back.has_z and back.coords[1] == pytest.approx((8.01, 47.01, 120.0))


def test_for_geometry_centres_on_bounds() -> None:
    line = LineString([(8.0, 47.0), (8.2, 47.4)])
    frame = LocalFrame.for_geometry(line)
    assert (frame.lat0, frame.lon0) == pytest.approx((47.2, 8.1))
    local = frame.to_local(line)
    assert local.length == pytest.approx(distance_m(47.0, 8.0, 47.4, 8.2), rel=1e-4)


def test_equal_frames_are_equal_and_hashable() -> None:
    assert LocalFrame(47, 8) == LocalFrame(47.0, 8.0)
    assert hash(LocalFrame(47, 8)) == hash(LocalFrame(47.0, 8.0))


def test_geojson_round_trip() -> None:
    poly = Polygon([(8.0, 47.0), (8.01, 47.0), (8.01, 47.01), (8.0, 47.0)])
    doc = geometry_to_geojson(poly)
    assert doc["type"] == "Polygon"
    assert isinstance(doc["coordinates"][0][0], list)
    assert geometry_from_geojson(doc).equals(poly)
    feature = {"type": "Feature", "properties": {}, "geometry": geometry_to_geojson(Point(8.0, 47.0))}
    assert geometry_from_geojson(feature).equals(Point(8.0, 47.0))


@pytest.mark.parametrize(
    ("lat", "lon", "needle"),
    [
        (91.0, 0.0, "latitude 91.0"),
        (-90.5, 0.0, "latitude -90.5"),
        (0.0, 181.0, "longitude 181.0"),
        (math.nan, 0.0, "finite"),
        (0.0, math.inf, "finite"),
    ],
)
def test_bad_latlon_is_named(lat: float, lon: float, needle: str) -> None:
    with pytest.raises(PlanningError, match=needle):
        LocalFrame(lat, lon)
    with pytest.raises(PlanningError, match=needle):
        distance_m(lat, lon, 0.0, 0.0)
    with pytest.raises(PlanningError, match=needle):
        LocalFrame(0.0, 0.0).point_to_local(lat, lon)


def test_bad_geometries_are_named() -> None:
    frame = LocalFrame(0.0, 0.0)
    with pytest.raises(PlanningError, match="empty"):
        frame.to_local(Polygon())
    with pytest.raises(PlanningError, match="latitude 95"):
        frame.to_local(Point(10.0, 95.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # shapely warns while building a NaN geometry
        nan_line = LineString([(0, 0), (math.nan, 1)])
    with pytest.raises(PlanningError, match="NaN"):
        frame.to_wgs84(nan_line)
    with pytest.raises(PlanningError, match="finite"):
        frame.point_to_wgs84(math.inf, 0.0)
    with pytest.raises(PlanningError, match="x/y must be finite metres, got None, 1"):
        frame.point_to_wgs84(None, 1)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(PlanningError, match="Self-intersection"):
        geometry_from_geojson(bowtie)
    with pytest.raises(PlanningError, match="not a geometry"):
        geometry_from_geojson({"type": "Circle", "coordinates": [0, 0]})
    with pytest.raises(PlanningError, match="malformed"):
        geometry_from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1]]]})
    with pytest.raises(PlanningError, match="no geometry"):
        geometry_from_geojson({"type": "Feature", "geometry": None})
