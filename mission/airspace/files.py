"""Zones as files and zone surgery: GeoJSON and KML export/import, split along a line, merge into one.

Both file formats carry every field of a zone, so an export imported again changes nothing: GeoJSON as a
FeatureCollection (a circle is a Point feature with ``radius_m``), KML as Placemarks with ExtendedData
(a circle is its 64-corner polygon with ``center_lon``, ``center_lat`` and ``radius_m`` data, so other
tools draw it and we read the circle back). Import creates a zone per feature, or replaces the zone of that
name.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from shapely.geometry import LineString, Polygon
from shapely.ops import split, unary_union
from sqlmodel import Session, col, select

from mission.airspace import service as airspace
from mission.airspace.models import CircleShape, PolygonShape, Zone, ZoneCreate, ZoneKind, ZoneRead
from mission.errors import BadRequest

KML_NS = "http://www.opengis.net/kml/2.2"
_FIELDS = ("kind", "floor_m", "ceiling_m", "active_from", "active_until", "description")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _properties(zone: ZoneRead) -> dict[str, Any]:
    return {
        "name": zone.name,
        "kind": zone.kind.value,
        "floor_m": zone.floor_m,
        "ceiling_m": zone.ceiling_m,
        "active_from": _iso(zone.active_from),
        "active_until": _iso(zone.active_until),
        "description": zone.description,
    }


def to_geojson(zones: Sequence[ZoneRead]) -> dict[str, Any]:
    """Every zone as a GeoJSON FeatureCollection."""
    features = []
    for z in zones:
        props = _properties(z)
        if isinstance(z.shape, CircleShape):
            geometry: dict[str, Any] = {"type": "Point", "coordinates": list(z.shape.center)}
            props["radius_m"] = z.shape.radius_m
        else:
            geometry = {
                "type": "Polygon",
                "coordinates": [[list(p) for p in ring] for ring in z.shape.coordinates],
            }
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def to_kml(zones: Sequence[ZoneRead]) -> str:
    """Every zone as a KML document."""
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    doc = ET.SubElement(root, f"{{{KML_NS}}}Document")
    ET.SubElement(doc, f"{{{KML_NS}}}name").text = "skywarden zones"
    for z in zones:
        mark = ET.SubElement(doc, f"{{{KML_NS}}}Placemark")
        ET.SubElement(mark, f"{{{KML_NS}}}name").text = z.name
        data = ET.SubElement(mark, f"{{{KML_NS}}}ExtendedData")
        props = _properties(z)
        if isinstance(z.shape, CircleShape):
            props |= {
                "center_lon": z.shape.center[0],
                "center_lat": z.shape.center[1],
                "radius_m": z.shape.radius_m,
            }
        for key, value in props.items():
            if key == "name" or value is None:
                continue
            item = ET.SubElement(data, f"{{{KML_NS}}}Data", name=key)
            ET.SubElement(item, f"{{{KML_NS}}}value").text = str(value)
        poly = ET.SubElement(mark, f"{{{KML_NS}}}Polygon")
        geom = airspace.shape_geometry(z.shape)
        rings = [("outerBoundaryIs", list(geom.exterior.coords))]
        rings += [("innerBoundaryIs", list(hole.coords)) for hole in geom.interiors]
        for tag, coords in rings:
            ring = ET.SubElement(ET.SubElement(poly, f"{{{KML_NS}}}{tag}"), f"{{{KML_NS}}}LinearRing")
            ET.SubElement(ring, f"{{{KML_NS}}}coordinates").text = " ".join(
                f"{lon:.7f},{lat:.7f},0" for lon, lat in coords
            )
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _zone(props: dict[str, Any], shape: dict[str, Any], where: str) -> ZoneCreate:
    fields = {k: props[k] for k in _FIELDS if props.get(k) not in (None, "")}
    fields.setdefault("kind", ZoneKind.no_fly.value)
    try:
        return ZoneCreate(name=str(props.get("name") or "").strip() or where, shape=shape, **fields)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(
            f"{where}: {loc}: {first['msg']}",
            code="zone.import_failed",
            params={"reason": f"{where}: {loc}: {first['msg']}"},
        ) from None


def from_geojson(text: str) -> list[ZoneCreate]:
    """The zones of a GeoJSON FeatureCollection (or one Feature); BadRequest names what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadRequest(f"not JSON: {err}", code="zone.import_failed", params={"reason": str(err)}) from None
    features = (
        doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else [doc]
    )
    out = []
    for i, feature in enumerate(features or []):
        where = f"feature {i + 1}"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise BadRequest(
                f"{where}: no geometry", code="zone.import_failed", params={"reason": f"{where}: no geometry"}
            )
        geom, props = feature["geometry"], dict(feature.get("properties") or {})
        if geom.get("type") == "Point" and props.get("radius_m") is not None:
            shape = {"type": "Circle", "center": geom.get("coordinates"), "radius_m": props["radius_m"]}
        elif geom.get("type") == "Polygon":
            shape = {"type": "Polygon", "coordinates": geom.get("coordinates")}
        else:
            reason = f"{where}: a {geom.get('type')} is not a zone (Polygon, or Point with radius_m)"
            raise BadRequest(reason, code="zone.import_failed", params={"reason": reason})
        out.append(_zone(props, shape, where))
    if not out:
        raise BadRequest("the file has no zones", code="zone.import_failed", params={"reason": "no zones"})
    return out


def from_kml(text: str) -> list[ZoneCreate]:
    """The zones of a KML document (Placemarks with a Polygon)."""
    try:
        root = ET.fromstring(text)  # an admin's own file; ElementTree resolves no external entities
    except ET.ParseError as err:
        raise BadRequest(f"not KML: {err}", code="zone.import_failed", params={"reason": str(err)}) from None
    ns = {"k": KML_NS}
    out = []
    for i, mark in enumerate(root.iter(f"{{{KML_NS}}}Placemark")):
        where = f"placemark {i + 1}"
        props: dict[str, Any] = {"name": (mark.findtext("k:name", default="", namespaces=ns) or "").strip()}
        for item in mark.iter(f"{{{KML_NS}}}Data"):
            props[item.get("name", "")] = item.findtext("k:value", default="", namespaces=ns)
        if props.get("radius_m") and props.get("center_lon") and props.get("center_lat"):
            shape: dict[str, Any] = {
                "type": "Circle",
                "center": [float(props["center_lon"]), float(props["center_lat"])],
                "radius_m": float(props["radius_m"]),
            }
        else:
            rings = []
            for tag in ("outerBoundaryIs", "innerBoundaryIs"):
                for coords in mark.iterfind(f".//k:{tag}/k:LinearRing/k:coordinates", ns):
                    points = [c.split(",") for c in (coords.text or "").split()]
                    rings.append([[float(p[0]), float(p[1])] for p in points if len(p) >= 2])
            if not rings:
                continue  # a point or a line: not a zone
            shape = {"type": "Polygon", "coordinates": rings}
        out.append(_zone(props, shape, where))
    if not out:
        raise BadRequest("the file has no zones", code="zone.import_failed", params={"reason": "no zones"})
    return out


def import_zones(*, session: Session, zones: Sequence[ZoneCreate]) -> tuple[list[ZoneRead], list[ZoneRead]]:
    """Create each zone, or replace the zone of that name: (created, replaced)."""
    created, replaced = [], []
    for data in zones:
        row = session.exec(select(Zone).where(col(Zone.name) == data.name)).first()
        if row is None:
            created.append(airspace.create_zone(session=session, data=data))
        else:
            assert row.id is not None
            replaced.append(airspace.replace_zone(session=session, zone_id=row.id, data=data))
    return created, replaced


def _polygon_shape(poly: Polygon) -> dict[str, Any]:
    poly = poly.simplify(0.0)
    rings = [list(poly.exterior.coords)] + [list(h.coords) for h in poly.interiors]
    return {
        "type": "Polygon",
        "coordinates": [[[round(x, 7), round(y, 7)] for x, y in ring] for ring in rings],
    }


def _data(zone: ZoneRead, *, name: str, shape: dict[str, Any]) -> ZoneCreate:
    return ZoneCreate(
        name=name,
        kind=zone.kind,
        shape=shape,  # type: ignore[arg-type]
        floor_m=zone.floor_m,
        ceiling_m=zone.ceiling_m,
        active_from=zone.active_from,
        active_until=zone.active_until,
        description=zone.description,
    )


def split_zone(*, session: Session, zone_id: int, line: Sequence[Sequence[float]]) -> list[ZoneRead]:
    """Cut a zone in two (or more) along a line of [lon, lat]; the first part keeps the zone's id."""
    zone = airspace.get_zone(session=session, zone_id=zone_id)
    geom = airspace.shape_geometry(zone.shape)
    cutter = LineString([(float(p[0]), float(p[1])) for p in line])
    parts = [g for g in split(geom, cutter).geoms if isinstance(g, Polygon) and g.area > 0]
    if len(parts) < 2:
        raise BadRequest(
            f"the line does not cut zone {zone.name!r} in two (it must cross it from side to side)",
            code="zone.split_failed",
        )
    parts.sort(key=lambda p: -p.area)
    out = [
        airspace.replace_zone(
            session=session,
            zone_id=zone_id,
            data=_data(zone, name=f"{zone.name} (1)", shape=_polygon_shape(parts[0])),
        )
    ]
    for n, part in enumerate(parts[1:], start=2):
        out.append(
            airspace.create_zone(
                session=session, data=_data(zone, name=f"{zone.name} ({n})", shape=_polygon_shape(part))
            )
        )
    return out


def merge_zones(*, session: Session, zone_ids: Sequence[int]) -> ZoneRead:
    """Join zones of one kind that touch or overlap into the first one (the lowest id); the others go.

    The merged zone keeps the widest band (lowest floor, highest ceiling) and the widest time window.
    """
    zones = sorted((airspace.get_zone(session=session, zone_id=i) for i in set(zone_ids)), key=lambda z: z.id)
    if len(zones) < 2:
        raise BadRequest(
            "pick two or more zones to merge", code="zone.merge_failed", params={"reason": "one zone"}
        )
    kinds = {z.kind for z in zones}
    if len(kinds) > 1:
        reason = f"they are of different kinds ({', '.join(sorted(k.value for k in kinds))})"
        raise BadRequest(f"cannot merge: {reason}", code="zone.merge_failed", params={"reason": reason})
    union = unary_union([airspace.shape_geometry(z.shape) for z in zones])
    if not isinstance(union, Polygon):
        reason = "they neither touch nor overlap"
        raise BadRequest(f"cannot merge: {reason}", code="zone.merge_failed", params={"reason": reason})
    first = zones[0]
    froms = [z.active_from for z in zones]
    untils = [z.active_until for z in zones]
    data = ZoneCreate(
        name=first.name,
        kind=first.kind,
        shape=_polygon_shape(union),  # type: ignore[arg-type]
        floor_m=min(z.floor_m for z in zones),
        ceiling_m=max(z.ceiling_m for z in zones),
        active_from=None if None in froms else min(f for f in froms if f is not None),
        active_until=None if None in untils else max(u for u in untils if u is not None),
        description=first.description,
    )
    for z in zones[1:]:
        airspace.delete_zone(session=session, zone_id=z.id)
    return airspace.replace_zone(session=session, zone_id=first.id, data=data)


__all__ = [
    "PolygonShape",
    "from_geojson",
    "from_kml",
    "import_zones",
    "merge_zones",
    "split_zone",
    "to_geojson",
    "to_kml",
]
