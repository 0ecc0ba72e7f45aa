"""Shared strategies and helpers for the flightplans tests (all geometry in metres unless named lonlat)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import Point, Polygon, box

coord = st.floats(-2000, 2000, allow_nan=False, allow_infinity=False)


@st.composite
def zones(draw: st.DrawFn) -> Polygon:
    """A convex no-fly zone: a rotated rectangle, a circle or a random convex polygon."""
    cx, cy = draw(coord), draw(coord)
    kind = draw(st.sampled_from(["box", "circle", "hull"]))
    if kind == "box":
        w, h = draw(st.floats(20, 400)), draw(st.floats(20, 400))
        return affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), draw(st.floats(0, 90)))
    if kind == "circle":
        return Point(cx, cy).buffer(draw(st.floats(10, 250)), quad_segs=draw(st.integers(2, 8)))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi), min_size=3, max_size=9, unique=True)))
    radius = draw(st.floats(30, 250))
    pts = [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in angles]
    hull = Polygon(pts).convex_hull
    if not isinstance(hull, Polygon) or hull.area < 100:
        return Point(cx, cy).buffer(radius / 2)
    return hull


@st.composite
def star_polygons(draw: st.DrawFn) -> Polygon:
    """A simple (possibly concave) star-shaped polygon around the origin, 100..1500 m across."""
    n = draw(st.integers(3, 12))
    # Vertices at least 0.05 rad apart: an operating area, not a zero-width spike.
    slots = sorted(draw(st.lists(st.integers(0, 125), min_size=n, max_size=n, unique=True)))
    angles = np.array(slots) * 0.05 + draw(st.floats(0, 0.05))
    radii = np.array(draw(st.lists(st.floats(50, 750), min_size=n, max_size=n)))
    poly = Polygon(np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]))
    if not poly.is_valid or poly.area < 1000:
        return box(-300, -200, 300, 200)
    return poly


def visit_gaps_s(loop_length_m: float, offsets_m: list[float], speed_m_s: float, samples: int = 64) -> float:
    """Worst time between two drones passing the same point of a loop, simulated from their start offsets.

    Drone k starts at arc length offsets_m[k] at t=0 and flies the loop forever at speed_m_s: it passes arc
    length s at t = ((s - offset) mod L) / v + j * L / v.
    """
    period = loop_length_m / speed_m_s
    worst = 0.0
    for s in np.linspace(0.0, loop_length_m, samples, endpoint=False):
        times = sorted(((s - o) % loop_length_m) / speed_m_s for o in offsets_m)
        gaps = np.diff([*times, times[0] + period])
        worst = max(worst, float(gaps.max()))
    return worst
