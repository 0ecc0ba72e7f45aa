"""Benchmark areas around the deployment at 39.82 N 109.98 E, in a local metric frame (x east, y north).

Shapes are drawn to look like the real thing (fields, a stadium precinct, a district of blocks, a canal
corridor, a rural zone with villages), not surveyed. ``Case.wgs84()`` gives the same area in lon/lat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    kind: str = "other"  # the goal it is held to: "district", "venue", "convex" or "other"

    def wgs84(self) -> Polygon:
        """The area in WGS84 (lon, lat), centred on the deployment."""
        return LocalFrame(DEPLOYMENT_LAT, DEPLOYMENT_LON).to_wgs84(self.area)


def _rect(cx: float, cy: float, w: float, h: float, angle_deg: float = 0.0) -> Polygon:
    return affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle_deg, origin=(cx, cy))


def _with_holes(shell: Polygon, holes: list[Polygon]) -> Polygon:
    return Polygon(shell.exterior.coords, [h.exterior.coords for h in holes])


def rectangle() -> Case:
    """A 900 m x 560 m field aligned with the road grid."""
    return Case("rectangle", _rect(0, 0, 900, 560, 12.0), 30.0, "field, 0.50 km^2", "convex")


def convex() -> Case:
    """An irregular convex pasture."""
    shell = Polygon([(-520, -310), (140, -420), (610, -120), (560, 330), (-40, 470), (-480, 260)])
    return Case("convex polygon", shell, 30.0, "pasture, 0.77 km^2", "convex")


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
    return Case(
        "venue with holes", _with_holes(shell, [bowl, car_park, hotel]), 25.0, "stadium, 0.98 km^2", "venue"
    )


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
    return Case("city district", _with_holes(shell, buildings), 30.0, "12 buildings, 1.26 km^2", "district")


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


def _blocks(seed: int, *, block_w: tuple[float, float], block_h: tuple[float, float]) -> list[Polygon]:
    """4 x 3 building blocks on a street grid: sizes, positions, corners and headings jittered."""
    rng = np.random.default_rng(seed)
    blocks = []
    for i in range(4):
        for j in range(3):
            cx = -600 + 1200 * (i + 0.5) / 4 + rng.uniform(-25, 25)
            cy = -500 + 1000 * (j + 0.5) / 3 + rng.uniform(-25, 25)
            w, h = rng.uniform(*block_w), rng.uniform(*block_h)
            jit = rng.uniform(-0.12, 0.12, 4) * min(w, h)
            block = Polygon(
                [
                    (cx - w / 2 + jit[0], cy - h / 2),
                    (cx + w / 2, cy - h / 2 + jit[1]),
                    (cx + w / 2 + jit[2], cy + h / 2),
                    (cx - w / 2, cy + h / 2 + jit[3]),
                ]
            )
            blocks.append(affinity.rotate(block, rng.uniform(-4, 4), origin=(cx, cy)))
    return blocks


_DISTRICT_SHELL = Polygon([(-600, -500), (600, -515), (615, 490), (-590, 505)])


def dense_district() -> Case:
    """1.2 x 1.0 km of street grid with 12 large irregular building blocks (no-fly), 60 m swath."""
    area = _with_holes(_DISTRICT_SHELL, _blocks(1, block_w=(150, 220), block_h=(110, 160)))
    return Case("dense district", area, 60.0, "12 blocks 150-220 m, 0.92 km^2", "district")


def block_grid() -> Case:
    """The same street grid with smaller, more scattered blocks and wider streets, 60 m swath."""
    area = _with_holes(_DISTRICT_SHELL, _blocks(0, block_w=(110, 180), block_h=(80, 130)))
    return Case("block grid", area, 60.0, "12 blocks 110-180 m, 1.04 km^2", "district")


def _elliptical_venue(
    name: str, bowl: tuple[float, float], circles: list[tuple[float, float, float]]
) -> Case:
    shell = affinity.rotate(
        affinity.scale(Point(0, 0).buffer(1.0, quad_segs=16), 400, 250), 10, origin=(0, 0)
    )
    stadium = affinity.scale(Point(0, 0).buffer(1.0, quad_segs=12), *bowl)
    holes = [affinity.rotate(stadium, 10, origin=(0, 0))]
    holes += [Point(x, y).buffer(r, quad_segs=8) for x, y, r in circles]
    return Case(name, _with_holes(shell, holes), 60.0, "800 x 500 m ellipse around a stadium", "venue")


def elliptical_venue() -> Case:
    """An 800 x 500 m event zone around a 320 x 250 m stadium, a helipad and a substation no-fly."""
    return _elliptical_venue("elliptical venue", (160, 125), [(-250, 110, 35), (240, -120, 30)])


def elliptical_venue_small_bowl() -> Case:
    """The same zone around a 300 x 220 m stadium with larger no-fly circles."""
    return _elliptical_venue("venue, small bowl", (150, 110), [(-250, 110, 45), (240, -120, 40)])


def convex_hexagon() -> Case:
    """An irregular convex hexagon of about 0.9 km^2, 60 m swath."""
    shell = Polygon([(-560, -180), (-130, -560), (470, -430), (610, 90), (190, 520), (-420, 380)])
    return Case("convex hexagon", shell, 60.0, "0.90 km^2", "convex")


def convex_kite() -> Case:
    """A convex pentagon whose edges meet at awkward angles, 60 m swath."""
    shell = Polygon([(-610, -95), (-35, -520), (540, -260), (330, 440), (-250, 360)])
    return Case("convex kite", shell, 60.0, "0.70 km^2", "convex")


def slanted_trapezoid() -> Case:
    """A trapezoid with 67 and 75 degree sides, turned 37 degrees off the grid, 40 m swath."""
    shell = Polygon([(0, 0), (1300, 0), (1040, 620), (190, 700)])
    return Case("slanted trapezoid", affinity.rotate(shell, 37, origin=(0, 0)), 40.0, "0.71 km^2", "convex")


def clipped_by_circle() -> Case:
    """A patrol zone with a hospital helipad's no-fly circle (190 m) cut out of its north edge."""
    shell = _rect(0, 0, 1000, 700, 8)
    area = shell.difference(Point(120, 360).buffer(190, quad_segs=12))
    return Case("zone clipped by a circle", area, 40.0, "0.64 km^2", "other")


def clipped_at_corner() -> Case:
    """A patrol zone whose north-east corner is taken by a prison's no-fly rectangle."""
    shell = Polygon([(-550, -420), (620, -380), (560, 450), (-500, 400)])
    area = shell.difference(_rect(560, 430, 420, 300, -12))
    return Case("zone clipped at a corner", area, 40.0, "0.89 km^2", "other")


def all_cases() -> list[Case]:
    """Every benchmark case: the first eight as they always were, then the harder ones."""
    return [
        rectangle(),
        convex(),
        l_shape(),
        u_shape(),
        venue(),
        city_district(),
        corridor(),
        rural_zone(),
        dense_district(),
        block_grid(),
        elliptical_venue(),
        elliptical_venue_small_bowl(),
        convex_hexagon(),
        convex_kite(),
        slanted_trapezoid(),
        clipped_by_circle(),
        clipped_at_corner(),
    ]


if __name__ == "__main__":
    for case in all_cases():
        print(
            f"{case.name:18s} {case.area.area / 1e6:6.2f} km^2  holes={len(case.area.interiors)}  {case.note}"
        )
