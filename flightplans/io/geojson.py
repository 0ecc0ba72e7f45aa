"""GeoJSON FeatureCollections (WGS84, lon/lat) of plans, missions, zones and areas, and reading them back.

Each feature carries a ``role`` property: "path", "waypoint", "nofly", "area", "fence" or "rally".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame, geometry_from_geojson, geometry_to_geojson
from flightplans.items import (
    FenceCircle,
    FencePolygon,
    Geofence,
    Land,
    LoiterTime,
    MissionItem,
    RallyPoint,
    Waypoint,
)
from flightplans.safety import NoFlyZone


@dataclass(frozen=True, slots=True)
class GeoFeature:
    """One feature read from GeoJSON: its role, WGS84 (lon, lat) geometry and other properties."""

    role: str
    geometry: BaseGeometry
    properties: dict[str, Any]


def _feature(geometry: BaseGeometry, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry_to_geojson(geometry), "properties": properties}


def _zone_features(
    frame: LocalFrame, nofly: Sequence[NoFlyZone | Polygon], area: Polygon | None
) -> list[dict[str, Any]]:
    features = []
    for i, zone in enumerate(nofly):
        z = zone if isinstance(zone, NoFlyZone) else NoFlyZone(zone)
        props: dict[str, Any] = {"role": "nofly", "index": i, "name": z.name, "floor_m": z.floor_m}
        # JSON has no infinity: an unbounded ceiling is left out.
        if z.ceiling_m != float("inf"):
            props["ceiling_m"] = z.ceiling_m
        features.append(_feature(frame.to_wgs84(z.polygon), **props))
    if area is not None:
        features.append(_feature(frame.to_wgs84(area), role="area"))
    return features


def plan_to_geojson(
    plan: Any,
    *,
    frame: LocalFrame,
    nofly: Sequence[NoFlyZone | Polygon] = (),
    area: Polygon | None = None,
) -> dict[str, Any]:
    """A FeatureCollection of a metric plan's path and waypoints, its no-fly zones and operating area.

    ``plan`` is any pattern, sweep or drone loop: something with ``.path`` and ``.waypoints`` in metres.
    """
    path = getattr(plan, "path", None)
    waypoints = getattr(plan, "waypoints", None)
    if not isinstance(path, BaseGeometry) or waypoints is None:
        raise PlanningError(
            f"expected a plan with .path and .waypoints, got {type(plan).__name__}",
            code="plan.geojson.expected_plan_path_waypoints",
            params={"name": type(plan).__name__},
        )
    path_props: dict[str, Any] = {"role": "path"}
    for key in ("length_m", "turns", "flight_time_s"):
        if hasattr(plan, key):
            path_props[key] = getattr(plan, key)
    features = [_feature(frame.to_wgs84(path), **path_props)]
    for i, (x, y) in enumerate(waypoints):
        lat, lon = frame.point_to_wgs84(x, y)
        features.append(_feature(Point(lon, lat), role="waypoint", index=i))
    features.extend(_zone_features(frame, nofly, area))
    return {"type": "FeatureCollection", "features": features}


def mission_to_geojson(
    items: Sequence[MissionItem],
    *,
    geofence: Geofence | None = None,
    rally: Sequence[RallyPoint] = (),
) -> dict[str, Any]:
    """A FeatureCollection of compiled mission items (path through the positional items, one point
    per item with its index and kind), the geofence shapes and rally points."""
    features = []
    line: list[tuple[float, float]] = []
    for i, item in enumerate(items):
        if isinstance(item, Waypoint | LoiterTime | Land):
            line.append((item.lon, item.lat))
            props: dict[str, Any] = {"role": "waypoint", "index": i, "kind": item.kind}
            if not isinstance(item, Land):
                props["alt_m"] = item.alt_m
            features.append(_feature(Point(item.lon, item.lat), **props))
    if len(line) >= 2:
        features.insert(0, _feature(LineString(line), role="path"))
    for i, shape in enumerate(geofence.shapes if geofence is not None else ()):
        if isinstance(shape, FencePolygon):
            ring = [(lon, lat) for lat, lon in shape.points]
            features.append(_feature(Polygon(ring), role="fence", index=i, inclusion=shape.inclusion))
        elif isinstance(shape, FenceCircle):
            features.append(
                _feature(
                    Point(shape.lon, shape.lat),
                    role="fence",
                    index=i,
                    inclusion=shape.inclusion,
                    radius_m=shape.radius_m,
                )
            )
    for i, point in enumerate(rally):
        features.append(_feature(Point(point.lon, point.lat), role="rally", index=i, alt_m=point.alt_m))
    return {"type": "FeatureCollection", "features": features}


def features_from_geojson(doc: dict[str, Any]) -> tuple[GeoFeature, ...]:
    """The features of a FeatureCollection (or a single Feature), geometries validated (lon, lat)."""
    if not isinstance(doc, dict):
        raise PlanningError(
            f"GeoJSON must be an object, got {type(doc).__name__}",
            code="plan.geojson.geojson_object",
            params={"name": type(doc).__name__},
        )
    raw_features: Any
    if doc.get("type") == "Feature":
        raw_features = [doc]
    elif doc.get("type") == "FeatureCollection":
        raw_features = doc.get("features")
        if not isinstance(raw_features, list):
            raise PlanningError(
                "GeoJSON FeatureCollection has no 'features' list",
                code="plan.geojson.geojson_featurecollection_has_features",
            )
    else:
        raise PlanningError(
            f"expected a GeoJSON FeatureCollection or Feature, got type {doc.get('type')!r}",
            code="plan.geojson.expected_geojson_featurecollection_feature",
            params={"get": repr(doc.get("type"))},
        )
    out = []
    for i, raw in enumerate(raw_features):
        if not isinstance(raw, dict) or raw.get("type") != "Feature":
            raise PlanningError(
                f"GeoJSON features[{i}] is not a Feature",
                code="plan.geojson.geojson_features_feature",
                params={"i": i},
            )
        try:
            geometry = geometry_from_geojson(raw)
        except PlanningError as exc:
            raise PlanningError(
                f"GeoJSON features[{i}]: {exc}",
                code="plan.geojson.geojson_features",
                params={"i": i, "exc": exc},
            ) from exc
        props = dict(raw.get("properties") or {})
        out.append(GeoFeature(role=str(props.pop("role", "")), geometry=geometry, properties=props))
    return tuple(out)


def nofly_from_geojson(doc: dict[str, Any], *, frame: LocalFrame) -> tuple[NoFlyZone, ...]:
    """No-fly zones (metres, in ``frame``) from the polygons with role "nofly" (or no role) in GeoJSON.

    ``floor_m`` / ``ceiling_m`` / ``name`` properties are honoured when present.
    """
    zones = []
    for i, feature in enumerate(features_from_geojson(doc)):
        if feature.role not in {"", "nofly"} or not isinstance(feature.geometry, Polygon):
            continue
        props = feature.properties
        try:
            floor = float(props.get("floor_m", 0.0))
            ceiling = float(props.get("ceiling_m", float("inf")))
        except (TypeError, ValueError) as exc:
            raise PlanningError(
                f"GeoJSON features[{i}]: floor_m/ceiling_m must be numbers",
                code="plan.geojson.geojson_features_floor_m",
                params={"i": i},
            ) from exc
        zones.append(NoFlyZone(frame.to_local(feature.geometry), floor, ceiling, str(props.get("name", ""))))
    return tuple(zones)
