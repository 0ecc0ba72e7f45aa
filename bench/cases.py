"""Benchmark areas around the deployment at 39.82 N 109.98 E, in a local metric frame (x east, y north).

Shapes are drawn to look like the real thing (fields, a stadium precinct, a district of blocks, a canal
corridor, a rural zone with villages), not surveyed. ``Case.wgs84()`` gives the same area in lon/lat.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box

from flightplans.geodesy import LocalFrame

DEPLOYMENT_LAT = 39.82
DEPLOYMENT_LON = 109.98


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark area: metric polygon (holes = no-fly zones) and the swath to sweep it with."""

    name: str
    area: Polygon
    swath_m: float
    note: str

    def wgs84(self) -> Polygon:
        """The area in WGS84 (lon, lat), centred on the deployment."""
        return LocalFrame(DEPLOYMENT_LAT, DEPLOYMENT_LON).to_wgs84(self.area)


def _rect(cx: float, cy: float, w: float, h: float, angle_deg: float = 0.0) -> Polygon:
    return affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle_deg, origin=(cx, cy))


def _with_holes(shell: Polygon, holes: list[Polygon]) -> Polygon:
    return Polygon(shell.exterior.coords, [h.exterior.coords for h in holes])


def rectangle() -> Case:
    """A 900 m x 560 m field aligned with the road grid."""
    return Case("rectangle", _rect(0, 0, 900, 560, 12.0), 30.0, "field, 0.50 km^2")


def convex() -> Case:
    """An irregular convex pasture."""
    shell = Polygon([(-520, -310), (140, -420), (610, -120), (560, 330), (-40, 470), (-480, 260)])
    return Case("convex polygon", shell, 30.0, "pasture, 0.77 km^2")


def l_shape() -> Case:
    """An L-shaped plot: two wings 380 m and 340 m wide."""
    shell = Polygon([(0, 0), (1000, 0), (1000, 380), (340, 380), (340, 900), (0, 900)])
    return Case("L shape", affinity.rotate(shell, -20, origin=(0, 0)), 30.0, "plot, 0.56 km^2")


def u_shape() -> Case:
    """A U-shaped campus around a courtyard open to the north."""
    shell = Polygon([(0, 0), (950, 0), (950, 760), (660, 760), (660, 300), (290, 300), (290, 760), (0, 760)])
    return Case("U shape", affinity.rotate(shell, 8, origin=(0, 0)), 30.0, "campus, 0.55 km^2")


def venue() -> Case:
    """A stadium precinct: the bowl, a multi-storey car park and a hotel tower are no-fly."""
    shell = Polygon([(-600, -420), (560, -460), (640, 380), (-80, 520), (-620, 300)])
    bowl = affinity.scale(Point(0, 0).buffer(1.0, quad_segs=12), 150, 115)
    bowl = affinity.rotate(bowl, 15, origin=(0, 0))
    car_park = _rect(380, -240, 160, 110, 5)
    hotel = _rect(-400, 200, 70, 70, 20)
    return Case("venue with holes", _with_holes(shell, [bowl, car_park, hotel]), 25.0, "stadium, 0.98 km^2")


def city_district() -> Case:
    """A district on a street grid rotated 15 degrees, with a dozen tall buildings as no-fly zones."""
    shell = Polygon([(-620, -500), (650, -540), (700, 480), (-100, 560), (-660, 420)])
    rng = [
        (-430, -330, 90, 60),
        (-180, -360, 120, 70),
        (120, -300, 80, 80),
        (420, -330, 140, 60),
        (-470, -40, 70, 110),
        (-210, 20, 100, 90),
        (80, -20, 150, 60),
        (380, 60, 90, 120),
        (-400, 280, 110, 70),
        (-100, 300, 80, 100),
        (200, 290, 130, 80),
        (500, 330, 70, 70),
    ]
    buildings = [_rect(x, y, w, h, 15) for x, y, w, h in rng]
    return Case("city district", _with_holes(shell, buildings), 30.0, "12 buildings, 1.26 km^2")


def corridor() -> Case:
    """A 150 m wide canal corridor that bends three times over about 4 km."""
    spine = [(0, 0), (1200, 150), (2000, 700), (3000, 650), (3700, 1100)]
    shell = LineString(spine).buffer(75, cap_style="flat", join_style="mitre")
    return Case("corridor", shell, 30.0, "canal, 0.60 km^2")


def rural_zone() -> Case:
    """About 20 km^2 of farmland with two villages and a quarry as no-fly zones."""
    shell = Polygon(
        [
            (-2600, -1900),
            (-200, -2150),
            (2400, -1800),
            (2650, 200),
            (2200, 1950),
            (0, 2100),
            (-2450, 1700),
            (-2750, 0),
        ]
    )
    village_a = Polygon([(-1500, -600), (-1100, -700), (-950, -300), (-1300, -150), (-1550, -300)])
    village_b = _rect(1200, 900, 420, 300, -10)
    quarry = affinity.scale(Point(300, -900).buffer(1.0, quad_segs=8), 260, 170)
    area = _with_holes(shell, [village_a, village_b, quarry])
    return Case("rural zone", area, 40.0, "farmland, ~20 km^2")


def all_cases() -> list[Case]:
    """Every benchmark case, smallest first."""
    return [rectangle(), convex(), l_shape(), u_shape(), venue(), city_district(), corridor(), rural_zone()]


if __name__ == "__main__":
    for case in all_cases():
        print(
            f"{case.name:18s} {case.area.area / 1e6:6.2f} km^2  holes={len(case.area.interiors)}  {case.note}"
        )
