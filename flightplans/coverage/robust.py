"""Overlay and buffer calls that survive GEOS's rare topology failures instead of raising tracebacks."""

from __future__ import annotations

from collections.abc import Callable

import shapely
import shapely.errors
from shapely.geometry.base import BaseGeometry

from flightplans.errors import PlanningError

_OPS: dict[str, Callable[..., BaseGeometry]] = {
    "difference": shapely.difference,
    "intersection": shapely.intersection,
    "union": shapely.union,
}


def overlay(op: str, a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    """``a <op> b`` snap-rounded to a 1 um grid; on a GEOS topology error, in floating point, then on 1 mm
    and 1 cm grids.

    Snap-rounding is not optional here: with floating precision, GEOS (3.14) has returned a wrong union
    of two polygons whose shared edge differed in the last digit, silently.

    >>> from shapely.geometry import box
    >>> overlay("difference", box(0, 0, 2, 2), box(1, 0, 2, 2)).area
    2.0
    """
    fn = _OPS[op]
    for grid in (1e-6, None):
        try:
            return fn(a, b, grid_size=grid)
        except shapely.errors.GEOSException:
            continue
    for grid in (1e-3, 1e-2):
        try:
            return fn(shapely.make_valid(a), shapely.make_valid(b), grid_size=grid)
        except shapely.errors.GEOSException:
            continue
    raise PlanningError(f"geometry {op} failed even on a 1 cm grid; simplify the area and try again")


def swept(path: BaseGeometry, radius_m: float) -> BaseGeometry:
    """Everything within ``radius_m`` of a path, as a valid polygon."""
    cover = path.buffer(radius_m, quad_segs=6)
    return cover if cover.is_valid else shapely.make_valid(cover)
