"""What a simulated camera sees on the ground: zones, roads and markers (WGS84), plus a street grid.

A world comes from a GeoJSON FeatureCollection (``load_world``): Polygon features are zones (properties
``name`` and ``kind``: patrol, no_fly, event), LineStrings are roads (``name``, ``width_m``), Points are
markers (``name``). Without explicit roads the district gets a procedural street grid anchored at
``grid_origin``, so every camera of a fleet draws the same streets at the same places.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class WorldZone:
    name: str
    kind: str
    ring: tuple[LatLon, ...]


@dataclass(frozen=True, slots=True)
class WorldRoad:
    name: str
    points: tuple[LatLon, ...]
    width_m: float = 12.0


@dataclass(frozen=True, slots=True)
class WorldMarker:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, kw_only=True)
class CameraWorld:
    """The ground a camera renders; an empty world still has the street grid."""

    zones: tuple[WorldZone, ...] = ()
    roads: tuple[WorldRoad, ...] = ()
    markers: tuple[WorldMarker, ...] = ()
    grid_origin: LatLon = (39.82, 109.98)
    street_spacing_m: float = 180.0
    avenue_every: int = 5  # every n-th street is a wide avenue

    def __post_init__(self) -> None:
        if self.street_spacing_m < 20:
            raise ValueError(f"street_spacing_m must be >= 20, got {self.street_spacing_m}")
        if self.avenue_every < 1:
            raise ValueError(f"avenue_every must be >= 1, got {self.avenue_every}")


def _latlon_ring(coords: list[Any], where: str) -> tuple[LatLon, ...]:
    try:
        ring = tuple((float(lat), float(lon)) for lon, lat, *_ in coords)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: coordinates must be [lon, lat] pairs") from None
    for lat, lon in ring:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (math.isfinite(lat) and math.isfinite(lon)):
            raise ValueError(f"{where}: position ({lat}, {lon}) is out of range")
    return ring


def world_from_geojson(data: dict[str, Any], *, grid_origin: LatLon | None = None) -> CameraWorld:
    """A world from a GeoJSON FeatureCollection (see the module doc); ValueError naming a bad feature."""
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise ValueError("a camera world must be a GeoJSON FeatureCollection")
    zones: list[WorldZone] = []
    roads: list[WorldRoad] = []
    markers: list[WorldMarker] = []
    for i, feature in enumerate(data["features"]):
        where = f"feature {i}"
        geometry = (feature or {}).get("geometry") or {}
        props = (feature or {}).get("properties") or {}
        name = str(props.get("name", f"#{i}"))
        kind = geometry.get("type")
        coords: Any = geometry.get("coordinates")
        if not isinstance(coords, list):
            raise ValueError(f"{where}: geometry has no coordinates")
        if kind == "Polygon":
            zones.append(WorldZone(name, str(props.get("kind", "patrol")), _latlon_ring(coords[0], where)))
        elif kind == "LineString":
            roads.append(WorldRoad(name, _latlon_ring(coords, where), float(props.get("width_m", 12.0))))
        elif kind == "Point":
            ((lat, lon),) = _latlon_ring([coords], where)
            markers.append(WorldMarker(name, lat, lon))
        else:
            raise ValueError(f"{where}: unsupported geometry {kind!r} (Polygon, LineString or Point)")
    origin = grid_origin
    if origin is None:
        points = [p for z in zones for p in z.ring] or [(m.lat, m.lon) for m in markers]
        if points:
            origin = (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
    return CameraWorld(
        zones=tuple(zones),
        roads=tuple(roads),
        markers=tuple(markers),
        grid_origin=origin or (39.82, 109.98),
    )


def load_world(path: Path) -> CameraWorld:
    """Read a world file (GeoJSON FeatureCollection)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"camera world {path}: {err}") from None
    return world_from_geojson(data)
