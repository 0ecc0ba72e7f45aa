"""The demo district's origin and metre offsets from it (equirectangular: exact enough over a few km)."""

from __future__ import annotations

import math

HOME = (39.8200, 109.9800, 1100.0)  # lat, lon, alt AMSL
EARTH_M = 6371000.0


def offset(north_m: float, east_m: float, *, origin: tuple[float, ...] = HOME) -> tuple[float, float]:
    """The (lat, lon) ``north_m``/``east_m`` metres from ``origin``."""
    lat = origin[0] + math.degrees(north_m / EARTH_M)
    lon = origin[1] + math.degrees(east_m / (EARTH_M * math.cos(math.radians(origin[0]))))
    return lat, lon


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dn = math.radians(lat2 - lat1) * EARTH_M
    de = math.radians(lon2 - lon1) * EARTH_M * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dn, de)
