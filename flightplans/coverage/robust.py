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
    raise PlanningError(
        f"geometry {op} failed even on a 1 cm grid; simplify the area and try again",
        code="plan.robust.geometry_failed_even_cm",
        params={"op": op},
    )


def _valid_runs(xy: np.ndarray, radius_m: float, quad_segs: int) -> list[BaseGeometry]:
    """Buffers of runs of a path, each run halved until its buffer is valid (a single leg's always is)."""
    piece = shapely.linestrings(xy).buffer(radius_m, quad_segs=quad_segs)
    if piece.is_valid or len(xy) <= 2:
        return [piece]
    mid = len(xy) // 2
    return _valid_runs(xy[: mid + 1], radius_m, quad_segs) + _valid_runs(xy[mid:], radius_m, quad_segs)


def swept(path: BaseGeometry, radius_m: float, *, quad_segs: int = 6) -> BaseGeometry:
    """Everything within ``radius_m`` of a path (or paths), as a valid polygon.

    GEOS can return an invalid, wrong-sized buffer for a path that crosses itself. Then the path is
    buffered in halves, a half that still fails in halves again, and the few pieces merged (one union of
    a handful of pieces costs far less than of one piece per leg). Fewer ``quad_segs`` give a cheaper,
    slightly smaller polygon (round caps and joins cut by chords).

    >>> from shapely.geometry import LineString
    >>> round(swept(LineString([(0, 0), (10, 0)]), 1.0).area, 1)
    23.1
    """
    # GEOS divides by zero inside a buffer on near-degenerate legs (a leg of ~1e-7 m, three collinear points);
    # numpy reports that floating-point flag as a RuntimeWarning. The result is checked for validity below.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _swept(path, radius_m, quad_segs)


def _swept(path: BaseGeometry, radius_m: float, quad_segs: int) -> BaseGeometry:
    cover = path.buffer(radius_m, quad_segs=quad_segs)
    if cover.is_valid:
        return cover
    pieces = []
    for line in shapely.get_parts(path):
        xy = shapely.get_coordinates(line)
        if len(xy) < 2:
            pieces.append(shapely.points(xy[0]).buffer(radius_m, quad_segs=quad_segs))
            continue
        pieces += _valid_runs(xy, radius_m, quad_segs)
    return shapely.union_all(np.asarray(pieces, dtype=object), grid_size=1e-6)
