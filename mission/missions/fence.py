"""Where a vehicle stands against the geofence its mission uploaded: the service's reading of a breach.

PX4 reports a breach only as "Failsafe activated" and a mode change (GF_ACTION: hold by default, return,
land), predicting the crossing and stopping at or just past the edge. So the service judges a mode change
it did not command against the fence it uploaded: a vehicle that stopped near or beyond the edge did so
for the fence.

    >>> from flightplans.items import FenceCircle, Geofence
    >>> fence = Geofence(shapes=(FenceCircle(lat=39.82, lon=109.98, radius_m=100.0, inclusion=True),))
    >>> round(edge_m(fence, lat=39.82, lon=109.98))
    -100
"""

from __future__ import annotations

from shapely.geometry import Point, Polygon

from flightplans.geodesy import LocalFrame
from flightplans.items import FenceCircle, FencePolygon, Geofence

# A vehicle that changed mode on its own closer than this to the edge (or beyond it) did so for the fence:
# PX4's breach prediction stops it up to its braking distance before the edge.
NEAR_EDGE_M = 30.0


def edge_m(fence: Geofence, *, lat: float, lon: float) -> float | None:
    """How far (lat, lon) is beyond the fence's nearest edge: positive outside, negative inside; None if
    the fence has no shapes."""
    frame = LocalFrame(lat, lon)
    here = Point(0.0, 0.0)
    inside_by: list[float] = []  # inclusion shapes: signed distance, negative inside
    beyond: list[float] = []  # exclusion shapes: positive inside the no-fly shape
    for shape in fence.shapes:
        if isinstance(shape, FenceCircle):
            cx, cy = frame.point_to_local(shape.lat, shape.lon)
            signed = here.distance(Point(cx, cy)) - shape.radius_m
        elif isinstance(shape, FencePolygon):
            poly = Polygon([frame.point_to_local(plat, plon) for plat, plon in shape.points])
            d = poly.exterior.distance(here)
            signed = -d if poly.contains(here) else d
        else:  # pragma: no cover - the two shapes MAVLink knows
            continue
        (inside_by if shape.inclusion else beyond).append(signed if shape.inclusion else -signed)
    found: list[float] = []
    if inside_by:
        found.append(min(inside_by))  # inside any inclusion area is inside
    found += beyond
    return max(found) if found else None


def breach_note(fence: Geofence | None, *, lat: float | None, lon: float | None) -> str | None:
    """``"at its geofence (12 m beyond the edge)"`` near or beyond the edge; None elsewhere."""
    if fence is None or lat is None or lon is None:
        return None
    edge = edge_m(fence, lat=lat, lon=lon)
    if edge is None or edge < -NEAR_EDGE_M:
        return None
    where = f"{edge:.0f} m beyond the edge" if edge >= 0 else f"{-edge:.0f} m inside the edge"
    return f"at its geofence ({where})"
