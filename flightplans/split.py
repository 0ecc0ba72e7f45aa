"""Split one area among k drones: parallel strips along the sweep direction, balanced by flight time.

The cuts run parallel to the sweep lines and fall halfway between two of them, so every drone flies whole
swaths of the same grid and no swath is flown twice. Each strip is swept on its own; the cuts start at
quantiles of an estimated time per line and then move, a few lines at a time, until the slowest drone
cannot be made faster by shifting a cut to a neighbour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import shapely
import shapely.errors
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Polygon, box
from shapely.ops import nearest_points

from flightplans.coverage.freespace import FreeSpace
from flightplans.coverage.plan import (
    _MITRE,
    _Frame,
    _free_region,
    _Knobs,
    _turns,
    _uncovered,
    flyable,
    sweep,
)
from flightplans.coverage.robust import overlay, swept
from flightplans.coverage.swaths import line_intervals, line_positions
from flightplans.errors import PlanningError
from flightplans.validate import check_positive, validate_area

MAX_DRONES = 50


@dataclass(frozen=True, slots=True)
class Sector:
    """One drone's share: its strip of the area and the sweep over it (metres)."""

    drone: int
    area: Polygon | MultiPolygon
    path: LineString
    waypoints: tuple[tuple[float, float], ...]
    length_m: float
    turns: int
    flight_time_s: float
    coverage: float
    swaths: int


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """Sectors for k drones. ``imbalance`` is the slowest drone's flight time over the fastest's (>= 1)."""

    sectors: tuple[Sector, ...]
    flight_times_s: tuple[float, ...]
    imbalance: float
    angle_deg: float
    coverage: float


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise PlanningError(
            f"k (number of drones) must be a whole number, got {k!r}",
            code="plan.split.k_number_drones_whole",
            params={"k": repr(k)},
        )
    if not 1 <= int(k) <= MAX_DRONES:
        raise PlanningError(
            f"k (number of drones) must be between 1 and {MAX_DRONES}, got {k}",
            code="plan.split.k_number_drones_between",
            params={"MAX_DRONES": MAX_DRONES, "k": k},
        )
    return int(k)


class _Splitter:
    """Plans strips of the area between global sweep lines [lo, hi) and remembers what it planned."""

    def __init__(self, area: Polygon, *, swath_m: float, angle_deg: float, options: dict) -> None:
        self.area, self.w, self.options = area, swath_m, options
        c = area.centroid
        self.frame = _Frame(angle_deg, c.x, c.y)
        rot = shapely.transform(area, self.frame.to_rot)
        self.x_min, y_min, self.x_max, y_max = rot.bounds
        self.ys = line_positions(y_min, y_max, swath_m=swath_m)
        edges = []
        for ring in [rot.exterior, *rot.interiors]:
            xy = np.asarray(ring.coords)
            edges.append(np.column_stack([xy[:-1], xy[1:]]))
        rows = line_intervals(np.concatenate(edges), self.ys)
        speed, turn_s = options["speed_m_s"], options["turn_s"]
        # rough seconds per line: its length, plus a turn and a swath-long connector per piece
        self.line_s = np.array(
            [sum(b - a for a, b in row) / speed + len(row) * (2 * turn_s + swath_m / speed) for row in rows]
        )
        self.clearance = clearance = options.get("clearance_m") or min(2.0, swath_m / 8.0)
        knobs = _Knobs(swath_m, clearance, None, options["speed_m_s"], options["turn_s"], 0.99, 2)
        free = _free_region(area, knobs)  # the whole area must be one connected flying region
        self.free = FreeSpace(free, clearance_m=clearance)
        self._cache: dict[tuple[int, int], tuple[Polygon | MultiPolygon, list[tuple[float, float]], int]] = {}

    def strip(self, lo: int, hi: int) -> Polygon | MultiPolygon:
        """The area between the cuts before line ``lo`` and after line ``hi - 1``."""
        pad = 10 * self.w
        y0 = self.ys[lo] - self.w / 2 if lo > 0 else self.ys[0] - pad
        y1 = self.ys[hi - 1] + self.w / 2 if hi < len(self.ys) else self.ys[-1] + pad
        band = shapely.transform(box(self.x_min - pad, y0, self.x_max + pad, y1), self.frame.from_rot)
        geom = overlay("intersection", self.area, band)
        parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area > 0]
        return parts[0] if len(parts) == 1 else MultiPolygon(parts)

    def plan(self, lo: int, hi: int) -> tuple[Polygon | MultiPolygon, list[tuple[float, float]], int]:
        """Waypoints sweeping strip [lo, hi): each part swept alone, parts joined inside the whole area."""
        key = (lo, hi)
        if key in self._cache:
            return self._cache[key]
        geom = self.strip(lo, hi)
        pieces: list[tuple[list[tuple[float, float]], int]] = []
        for part in shapely.get_parts(geom):
            pieces += self._cover_part(part)
        wps: list[tuple[float, float]] = []
        swaths = 0
        while pieces:
            if wps:
                here = np.asarray(wps[-1])
                k = min(
                    range(len(pieces)),
                    key=lambda i: min(math.dist(here, pieces[i][0][0]), math.dist(here, pieces[i][0][-1])),
                )
                part_wps, n = pieces.pop(k)
                if math.dist(here, part_wps[-1]) < math.dist(here, part_wps[0]):
                    part_wps = part_wps[::-1]
                wps += self.free.path(wps[-1], part_wps[0])[1:-1]
            else:
                part_wps, n = pieces.pop(0)
            wps += part_wps
            swaths += n
        self._cache[key] = (geom, wps, swaths)
        return self._cache[key]

    def _cover_part(self, part: Polygon, *, depth: int = 0) -> list[tuple[list[tuple[float, float]], int]]:
        """Waypoint runs covering one piece of a strip: a sweep, or for a piece a strip cut into narrow
        bits, a sweep per bit, and a single visit for a bit smaller than a swath."""
        xy = np.asarray(part.minimum_rotated_rectangle.exterior.coords)
        size = float(np.hypot(*np.diff(xy[:3], axis=0).T).max()) if len(xy) >= 3 else 0.0
        if size < self.w or depth > 1:
            centre = part.centroid
            point = centre if self.free.region.covers(centre) else nearest_points(self.free.region, centre)[0]
            return [([(point.x, point.y)], 0)]
        try:
            plan = sweep(
                part,
                swath_m=self.w,
                angle_deg=self.frame.angle_deg,
                speed_m_s=self.options["speed_m_s"],
                turn_s=self.options["turn_s"],
                clearance_m=self.options["clearance_m"],
            )
            return [(list(plan.waypoints), plan.swaths)]
        except PlanningError:
            pass  # the cut left a neck too narrow to fly through: sweep each side of it alone
        out = []
        for bit in shapely.get_parts(flyable(part, self.clearance)):
            grown = overlay("intersection", bit.buffer(1.01 * self.clearance, **_MITRE), part)
            for piece in shapely.get_parts(grown):
                if isinstance(piece, Polygon) and piece.area > 0:
                    out += self._cover_part(piece, depth=depth + 1)
        return out

    def time_s(self, lo: int, hi: int) -> float:
        _, wps, _ = self.plan(lo, hi)
        if len(wps) < 2:
            return 0.0
        xy = np.asarray(wps)
        length = float(np.hypot(*np.diff(xy, axis=0).T).sum())
        return length / self.options["speed_m_s"] + _turns(xy) * self.options["turn_s"]


def split_area(
    area: Polygon,
    *,
    k: int,
    swath_m: float,
    angle_deg: float | None = None,
    speed_m_s: float = 10.0,
    turn_s: float = 3.0,
    clearance_m: float | None = None,
    max_rounds: int = 6,
) -> SplitPlan:
    """Divide ``area`` (metres; holes are no-fly zones) into ``k`` strips of balanced flight time.

    >>> from shapely.geometry import box
    >>> plan = split_area(box(0, 0, 900, 630), k=3, swath_m=30, angle_deg=0)
    >>> len(plan.sectors), plan.imbalance < 1.01, [s.swaths for s in plan.sectors]
    (3, True, [7, 7, 7])
    """
    n_drones = _check_k(k)
    w = check_positive("swath_m", swath_m)
    area = shapely.force_2d(validate_area(area, min_size_m=w))  # plans are flat; altitude comes later
    options = {"speed_m_s": speed_m_s, "turn_s": turn_s, "clearance_m": clearance_m}
    if angle_deg is None:
        angle_deg = sweep(
            area, swath_m=w, speed_m_s=speed_m_s, turn_s=turn_s, clearance_m=clearance_m
        ).angle_deg
    splitter = _Splitter(area, swath_m=w, angle_deg=float(angle_deg), options=options)
    n = len(splitter.ys)
    if n < n_drones:
        raise PlanningError(
            f"area is only {n} swath(s) across the sweep direction; "
            f"it cannot be split among {n_drones} drones",
            code="plan.split.area_only_swath_s",
            params={"n": n, "n_drones": n_drones},
        )
    # initial cuts at quantiles of the estimated time per line
    cum = np.concatenate([[0.0], np.cumsum(splitter.line_s)])
    cuts = [0]
    for j in range(1, n_drones):
        target = cum[-1] * j / n_drones
        c = int(np.argmin(np.abs(cum - target)))
        cuts.append(min(max(c, cuts[-1] + 1), n - (n_drones - j)))
    cuts.append(n)

    def times(cs: list[int]) -> list[float]:
        return [splitter.time_s(cs[i], cs[i + 1]) for i in range(n_drones)]

    current = times(cuts)
    for _ in range(max_rounds):
        moved = False
        for j in range(n_drones - 1):
            # move the cut between sectors j and j+1 toward the slower one while the pair's max drops
            lines_j, lines_k = cuts[j + 1] - cuts[j], cuts[j + 2] - cuts[j + 1]
            per_line = (current[j] + current[j + 1]) / max(lines_j + lines_k, 1)
            diff = current[j] - current[j + 1]
            step = round(diff / (2 * per_line)) if per_line > 0 else 0
            steps = []
            while step != 0:
                steps.append(step)
                step = int(step / 2)  # if the estimate overshoots, try smaller moves
            if diff != 0:
                steps.append(1 if diff > 0 else -1)
            for step in dict.fromkeys(steps):
                new_cut = min(max(cuts[j + 1] - step, cuts[j] + 1), cuts[j + 2] - 1)
                if new_cut == cuts[j + 1]:
                    continue
                trial = [*cuts[: j + 1], new_cut, *cuts[j + 2 :]]
                a, b = splitter.time_s(trial[j], trial[j + 1]), splitter.time_s(trial[j + 1], trial[j + 2])
                if max(a, b) < max(current[j], current[j + 1]) - 1e-6:
                    cuts, current[j], current[j + 1] = trial, a, b
                    moved = True
                    break
        if not moved:
            break

    sectors = []
    for i in range(n_drones):
        geom, wps, swaths = splitter.plan(cuts[i], cuts[i + 1])
        if len(wps) < 2:
            wps = wps * 2 if wps else [tuple(geom.representative_point().coords[0])] * 2
        path = LineString(wps)
        xy = np.asarray(wps)
        t = splitter.time_s(cuts[i], cuts[i + 1])
        sectors.append(
            Sector(
                drone=i,
                area=geom,
                path=path,
                waypoints=tuple((float(x), float(y)) for x, y in xy),
                length_m=float(path.length),
                turns=_turns(xy),
                flight_time_s=t,
                coverage=1.0 - _uncovered(geom, path, w).area / geom.area,
                swaths=swaths,
            )
        )
    flight = tuple(s.flight_time_s for s in sectors)
    return SplitPlan(
        sectors=tuple(sectors),
        flight_times_s=flight,
        imbalance=max(flight) / min(flight) if min(flight) > 0 else math.inf,
        angle_deg=float(angle_deg) % 180.0,
        coverage=_coverage(area, sectors, w),
    )


def _coverage(area: Polygon, sectors: list[Sector], swath_m: float) -> float:
    """Share of the whole area within half a swath of any drone's path."""
    seen = swept(MultiLineString([s.path for s in sectors]), swath_m / 2.0)
    return float(overlay("intersection", area, seen).area / area.area)
