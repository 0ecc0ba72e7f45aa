"""Flat-earth conversion between WGS84 and a local north/east frame around home (fine for patrol ranges)."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_378_137.0


@dataclass(frozen=True)
class LocalFrame:
    """A tangent plane at `origin_lat`/`origin_lon`; north/east in metres."""

    origin_lat: float
    origin_lon: float

    @property
    def _m_per_deg_lat(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M

    @property
    def _m_per_deg_lon(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(self.origin_lat))

    def to_ne(self, lat: float, lon: float) -> tuple[float, float]:
        """Degrees to (north_m, east_m)."""
        return (
            (lat - self.origin_lat) * self._m_per_deg_lat,
            (lon - self.origin_lon) * self._m_per_deg_lon,
        )

    def to_latlon(self, north_m: float, east_m: float) -> tuple[float, float]:
        """(north_m, east_m) to degrees."""
        return (
            self.origin_lat + north_m / self._m_per_deg_lat,
            self.origin_lon + east_m / self._m_per_deg_lon,
        )


def point_in_polygon(north_m: float, east_m: float, polygon: tuple[tuple[float, float], ...]) -> bool:
    """Ray casting on (north, east) vertices."""
    inside = False
    n = len(polygon)
    j = n - 1
    for i in range(n):
        ni, ei = polygon[i]
        nj, ej = polygon[j]
        if (ei > east_m) != (ej > east_m):
            n_cross = ni + (east_m - ei) * (nj - ni) / (ej - ei)
            if north_m < n_cross:
                inside = not inside
        j = i
    return inside
