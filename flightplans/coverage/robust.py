"""Overlay and buffer calls that survive GEOS's rare topology failures instead of raising tracebacks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
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
    """Everything within ``radius_m`` of a path (or paths), as a valid polygon.

    GEOS can return an invalid, too large buffer for a path that crosses itself; then the path is
    buffered leg by leg and the legs' buffers are merged (slower, but right).
    """
    cover = path.buffer(radius_m, quad_segs=6)
    if cover.is_valid:
        return cover
    legs = []
    for line in shapely.get_parts(path):
        xy = shapely.get_coordinates(line)
        if len(xy) == 1:
            legs.append(shapely.points(xy[0]))
        else:
            legs.extend(shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1)))
    return shapely.union_all(shapely.buffer(np.asarray(legs), radius_m, quad_segs=6), grid_size=1e-6)
