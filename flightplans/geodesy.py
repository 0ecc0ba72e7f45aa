"""The one place that converts WGS84 (lon/lat degrees) to and from a local metric frame.

Planning happens in metres: x east, y north, in an azimuthal equidistant projection centred on the area,
so distances from the centre are exact and distortion stays far below a centimetre over a few tens of km.
Shapely geometries in WGS84 are always in (lon, lat) order, as GeoJSON has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
import shapely.errors
from pyproj import Geod, Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from flightplans.errors import PlanningError

_GEOD = Geod(ellps="WGS84")


def check_latlon(lat: float, lon: float, *, name: str = "point") -> None:
    """Raise PlanningError unless ``lat``/``lon`` are finite degrees within -90..90 / -180..180."""
    if not (isinstance(lat, int | float) and isinstance(lon, int | float)):
        raise PlanningError(
            f"{name}: latitude/longitude must be numbers, got {lat!r}, {lon!r}",
            code="plan.geodesy.latitude_longitude_numbers",
            params={"name": name, "lat": repr(lat), "lon": repr(lon)},
        )
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise PlanningError(
            f"{name}: latitude/longitude must be finite, got {lat}, {lon}",
            where=(lat, lon),
            code="plan.geodesy.latitude_longitude_finite",
            params={"name": name, "lat": lat, "lon": lon},
        )
    if not -90.0 <= lat <= 90.0:
        raise PlanningError(
            f"{name}: latitude {lat} is outside -90..90",
            where=(lat, lon),
            code="plan.geodesy.latitude_outside",
            params={"name": name, "lat": lat},
        )
    if not -180.0 <= lon <= 180.0:
        raise PlanningError(
            f"{name}: longitude {lon} is outside -180..180",
            where=(lat, lon),
            code="plan.geodesy.longitude_outside",
            params={"name": name, "lon": lon},
        )


def _check_geometry_lonlat(geom: BaseGeometry, *, name: str) -> None:
    if not isinstance(geom, BaseGeometry):
        raise PlanningError(
            f"{name}: expected a shapely geometry, got {type(geom).__name__}",
            code="plan.geodesy.expected_shapely_geometry",
            params={"name": name, "name2": type(geom).__name__},
        )
    if geom.is_empty:
        raise PlanningError(
            f"{name}: geometry is empty", code="plan.geodesy.geometry_empty", params={"name": name}
        )
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise PlanningError(
            f"{name}: coordinates contain NaN or infinity",
            code="plan.geodesy.coordinates_contain_nan_infinity",
            params={"name": name},
        )
    lon, lat = coords[:, 0], coords[:, 1]
    bad_lat = np.flatnonzero((lat < -90.0) | (lat > 90.0))
    if bad_lat.size:
        i = int(bad_lat[0])
        raise PlanningError(
            f"{name}: latitude {lat[i]} is outside -90..90 (coordinates are (lon, lat))",
            where=(float(lat[i]), float(lon[i])),
            code="plan.geodesy.latitude_outside_coordinates_lon",
            params={"name": name, "lat": lat[i]},
        )
    bad_lon = np.flatnonzero((lon < -180.0) | (lon > 180.0))
    if bad_lon.size:
        i = int(bad_lon[0])
        raise PlanningError(
            f"{name}: longitude {lon[i]} is outside -180..180",
            where=(float(lat[i]), float(lon[i])),
            code="plan.geodesy.longitude_outside",
            params={"name": name, "lon": lon[i]},
        )


def _check_geometry_metric(geom: BaseGeometry, *, name: str) -> None:
    if not isinstance(geom, BaseGeometry):
        raise PlanningError(
            f"{name}: expected a shapely geometry, got {type(geom).__name__}",
            code="plan.geodesy.expected_shapely_geometry",
            params={"name": name, "name2": type(geom).__name__},
        )
    if geom.is_empty:
        raise PlanningError(
            f"{name}: geometry is empty", code="plan.geodesy.geometry_empty", params={"name": name}
        )
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise PlanningError(
            f"{name}: coordinates contain NaN or infinity",
            code="plan.geodesy.coordinates_contain_nan_infinity",
            params={"name": name},
        )


@lru_cache(maxsize=256)
def _transformers(lat0: float, lon0: float) -> tuple[Transformer, Transformer]:
    crs = f"+proj=aeqd +lat_0={lat0!r} +lon_0={lon0!r} +datum=WGS84 +units=m +no_defs"
    forward = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inverse = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return forward, inverse


def _apply(transformer: Transformer, geom: BaseGeometry) -> BaseGeometry:
    """Transform x/y of every coordinate; a z (altitude) passes through unchanged."""

    def xy_only(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0], out[:, 1] = transformer.transform(coords[:, 0], coords[:, 1])
        return out

    return shapely.transform(geom, xy_only, include_z=bool(shapely.has_z(geom)))


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """A metric frame (x east, y north, metres) centred on (``lat0``, ``lon0``).

    >>> frame = LocalFrame(47.0, 8.0)
    >>> x, y = frame.point_to_local(47.0, 8.0)
    >>> round(x, 6), round(y, 6)
    (0.0, 0.0)
    """

    lat0: float
    lon0: float

    def __post_init__(self) -> None:
        check_latlon(self.lat0, self.lon0, name="frame origin")
        # Normalise ints and numpy scalars so equal frames hash (and cache) alike.
        object.__setattr__(self, "lat0", float(self.lat0))
        object.__setattr__(self, "lon0", float(self.lon0))

    @classmethod
    def for_geometry(cls, geom_lonlat: BaseGeometry) -> LocalFrame:
        """A frame centred on the middle of a WGS84 (lon, lat) geometry's bounding box."""
        _check_geometry_lonlat(geom_lonlat, name="geometry")
        min_lon, min_lat, max_lon, max_lat = geom_lonlat.bounds
        return cls((min_lat + max_lat) / 2.0, (min_lon + max_lon) / 2.0)

    @property
    def _forward(self) -> Transformer:
        return _transformers(self.lat0, self.lon0)[0]

    @property
    def _inverse(self) -> Transformer:
        return _transformers(self.lat0, self.lon0)[1]

    def to_local(self, geom: BaseGeometry) -> BaseGeometry:
        """A WGS84 (lon, lat) geometry in this frame's metres."""
        _check_geometry_lonlat(geom, name="geometry")
        return _apply(self._forward, geom)

    def to_wgs84(self, geom: BaseGeometry) -> BaseGeometry:
        """A geometry in this frame's metres as WGS84 (lon, lat)."""
        _check_geometry_metric(geom, name="geometry")
        return _apply(self._inverse, geom)

    def point_to_local(self, lat: float, lon: float) -> tuple[float, float]:
        """(x east, y north) metres of a WGS84 point."""
        check_latlon(lat, lon)
        x, y = self._forward.transform(lon, lat)
        return float(x), float(y)

    def point_to_wgs84(self, x: float, y: float) -> tuple[float, float]:
        """(lat, lon) degrees of a point in this frame."""
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
        if not (numbers and math.isfinite(x) and math.isfinite(y)):
            raise PlanningError(
                f"point: x/y must be finite metres, got {x!r}, {y!r}",
                where=(x, y),
                code="plan.geodesy.point_x_y_finite",
                params={"x": repr(x), "y": repr(y)},
            )
        lon, lat = self._inverse.transform(x, y)
        return float(lat), float(lon)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic (WGS84 ellipsoid) distance in metres."""
    check_latlon(lat1, lon1, name="from")
    check_latlon(lat2, lon2, name="to")
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist)


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial geodesic bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    check_latlon(lat1, lon1, name="from")
    check_latlon(lat2, lon2, name="to")
    az, _, _ = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(az) % 360.0


def geometry_from_geojson(obj: dict[str, Any]) -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry (or Feature) dict in (lon, lat), validated."""
    if not isinstance(obj, dict):
        raise PlanningError(
            f"GeoJSON must be an object, got {type(obj).__name__}",
            code="plan.geodesy.geojson_object",
            params={"name": type(obj).__name__},
        )
    if obj.get("type") == "Feature":
        geometry = obj.get("geometry")
        if geometry is None:
            raise PlanningError(
                "GeoJSON Feature has no geometry", code="plan.geodesy.geojson_feature_has_geometry"
            )
        return geometry_from_geojson(geometry)
    kind = obj.get("type")
    if kind not in {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }:
        raise PlanningError(
            f"GeoJSON type {kind!r} is not a geometry",
            code="plan.geodesy.geojson_type_geometry",
            params={"kind": repr(kind)},
        )
    try:
        geom = shape(obj)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise PlanningError(
            f"GeoJSON {kind} is malformed: {exc}",
            code="plan.geodesy.geojson_malformed",
            params={"kind": kind, "exc": exc},
        ) from exc
    _check_geometry_lonlat(geom, name=f"GeoJSON {kind}")
    if not geom.is_valid:
        raise PlanningError(
            f"GeoJSON {kind} is invalid: {explain_validity(geom)}",
            code="plan.geodesy.geojson_invalid",
            params={"kind": kind, "explain_validity": explain_validity(geom)},
        )
    return geom


def _listify(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_listify(v) for v in value]
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    return value


def geometry_to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """A JSON-ready GeoJSON geometry dict (lists, not tuples) of a WGS84 (lon, lat) geometry."""
    _check_geometry_lonlat(geom, name="geometry")
    return _listify(dict(mapping(geom)))
