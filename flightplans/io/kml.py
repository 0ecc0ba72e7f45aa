"""KML export (Google Earth, QGC's KML import) of plans and compiled missions."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any

from shapely.geometry import LineString, MultiLineString, Polygon
from shapely.geometry.base import BaseGeometry

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.items import FenceCircle, FencePolygon, Geofence, Land, LoiterTime, MissionItem, Waypoint
from flightplans.safety import NoFlyZone
from flightplans.validate import check_positive

KML_NS = "http://www.opengis.net/kml/2.2"


def _coords(lonlat: Iterable[Sequence[float]], alt_m: float) -> str:
    return " ".join(f"{lon:.8f},{lat:.8f},{alt_m:.2f}" for lon, lat, *_ in lonlat)


class _Doc:
    def __init__(self, name: str) -> None:
        self.root = ET.Element("kml", xmlns=KML_NS)
        self.doc = ET.SubElement(self.root, "Document")
        ET.SubElement(self.doc, "name").text = name
        for style, color, width, fill in (
            ("path", "ff00a5ff", "3", None),
            ("nofly", "ff0000ff", "2", "550000ff"),
            ("area", "ff00ff00", "2", "2200ff00"),
        ):
            element = ET.SubElement(self.doc, "Style", id=style)
            line = ET.SubElement(element, "LineStyle")
            ET.SubElement(line, "color").text = color
            ET.SubElement(line, "width").text = width
            if fill:
                poly = ET.SubElement(element, "PolyStyle")
                ET.SubElement(poly, "color").text = fill

    def folder(self, name: str) -> ET.Element:
        folder = ET.SubElement(self.doc, "Folder")
        ET.SubElement(folder, "name").text = name
        return folder

    @staticmethod
    def placemark(parent: ET.Element, name: str, style: str | None = None) -> ET.Element:
        mark = ET.SubElement(parent, "Placemark")
        ET.SubElement(mark, "name").text = name
        if style:
            ET.SubElement(mark, "styleUrl").text = f"#{style}"
        return mark

    @staticmethod
    def line(mark: ET.Element, lonlat: Iterable[Sequence[float]], alt_m: float) -> None:
        geom = ET.SubElement(mark, "LineString")
        ET.SubElement(geom, "altitudeMode").text = "relativeToGround"
        ET.SubElement(geom, "coordinates").text = _coords(lonlat, alt_m)

    @staticmethod
    def point(mark: ET.Element, lon: float, lat: float, alt_m: float) -> None:
        geom = ET.SubElement(mark, "Point")
        ET.SubElement(geom, "altitudeMode").text = "relativeToGround"
        ET.SubElement(geom, "coordinates").text = _coords([(lon, lat)], alt_m)

    @staticmethod
    def polygon(mark: ET.Element, poly_lonlat: Polygon) -> None:
        geom = ET.SubElement(mark, "Polygon")
        ET.SubElement(geom, "altitudeMode").text = "clampToGround"
        for tag, ring in (
            ("outerBoundaryIs", poly_lonlat.exterior),
            *(("innerBoundaryIs", r) for r in poly_lonlat.interiors),
        ):
            boundary = ET.SubElement(geom, tag)
            linear = ET.SubElement(boundary, "LinearRing")
            ET.SubElement(linear, "coordinates").text = _coords(ring.coords, 0.0)

    def text(self) -> str:
        ET.indent(self.root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(self.root, encoding="unicode") + "\n"


def _zones(doc: _Doc, frame: LocalFrame, nofly: Sequence[NoFlyZone | Polygon], area: Polygon | None) -> None:
    if nofly:
        folder = doc.folder("No-fly zones")
        for i, zone in enumerate(nofly):
            z = zone if isinstance(zone, NoFlyZone) else NoFlyZone(zone)
            mark = doc.placemark(folder, z.name or f"no-fly zone {i}", "nofly")
            doc.polygon(mark, frame.to_wgs84(z.polygon))
    if area is not None:
        mark = doc.placemark(doc.folder("Operating area"), "operating area", "area")
        doc.polygon(mark, frame.to_wgs84(area))


def plan_to_kml(
    plan: Any,
    *,
    frame: LocalFrame,
    alt_m: float,
    nofly: Sequence[NoFlyZone | Polygon] = (),
    area: Polygon | None = None,
    name: str = "skywarden plan",
) -> str:
    """KML text of a metric plan's path and waypoints at ``alt_m`` above ground, with zones and area."""
    path = getattr(plan, "path", None)
    waypoints = getattr(plan, "waypoints", None)
    if not isinstance(path, BaseGeometry) or waypoints is None:
        raise PlanningError(
            f"expected a plan with .path and .waypoints, got {type(plan).__name__}",
            code="plan.kml.expected_plan_path_waypoints",
            params={"name": type(plan).__name__},
        )
    alt = check_positive("alt_m", alt_m)
    doc = _Doc(name)
    lonlat = frame.to_wgs84(path)
    lines = list(lonlat.geoms) if isinstance(lonlat, MultiLineString) else [lonlat]
    for i, line in enumerate(lines):
        if not isinstance(line, LineString):
            raise PlanningError(
                f"plan path must be lines, got {line.geom_type}",
                code="plan.kml.plan_path_lines",
                params={"geom_type": line.geom_type},
            )
        doc.line(doc.placemark(doc.doc, "path" if len(lines) == 1 else f"path {i}", "path"), line.coords, alt)
    folder = doc.folder("Waypoints")
    for i, (x, y) in enumerate(waypoints):
        lat, lon = frame.point_to_wgs84(x, y)
        doc.point(doc.placemark(folder, f"WP {i}"), lon, lat, alt)
    _zones(doc, frame, nofly, area)
    return doc.text()


def mission_to_kml(
    items: Sequence[MissionItem],
    *,
    geofence: Geofence | None = None,
    name: str = "skywarden mission",
) -> str:
    """KML text of compiled mission items (path and one point per positional item) and the geofence."""
    doc = _Doc(name)
    positions = [
        (i, item.lon, item.lat, 0.0 if isinstance(item, Land) else item.alt_m)
        for i, item in enumerate(items)
        if isinstance(item, Waypoint | LoiterTime | Land)
    ]
    if len(positions) >= 2:
        mark = doc.placemark(doc.doc, "path", "path")
        geom = ET.SubElement(mark, "LineString")
        ET.SubElement(geom, "altitudeMode").text = "relativeToGround"
        ET.SubElement(geom, "coordinates").text = " ".join(
            f"{lon:.8f},{lat:.8f},{alt:.2f}" for _, lon, lat, alt in positions
        )
    folder = doc.folder("Mission items")
    for i, lon, lat, alt in positions:
        doc.point(doc.placemark(folder, f"item {i} ({items[i].kind})"), lon, lat, alt)
    shapes = geofence.shapes if geofence is not None else ()
    if shapes:
        fence = doc.folder("Geofence")
        for i, shape in enumerate(shapes):
            style = "area" if shape.inclusion else "nofly"
            label = f"{'inclusion' if shape.inclusion else 'exclusion'} {shape.kind} {i}"
            if isinstance(shape, FencePolygon):
                doc.polygon(
                    doc.placemark(fence, label, style), Polygon([(lon, lat) for lat, lon in shape.points])
                )
            elif isinstance(shape, FenceCircle):
                frame = LocalFrame(shape.lat, shape.lon)
                circle = frame.to_wgs84(_circle(shape.radius_m))
                doc.polygon(doc.placemark(fence, label, style), circle)
    return doc.text()


def _circle(radius_m: float) -> Polygon:
    points = 72
    return Polygon(
        [
            (radius_m * math.sin(2 * math.pi * k / points), radius_m * math.cos(2 * math.pi * k / points))
            for k in range(points)
        ]
    )
