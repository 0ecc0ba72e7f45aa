"""The sweep planner on WGS84 areas: project to a local metric frame, plan there, bring the path back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shapely.geometry import LineString, Polygon

from flightplans.coverage.plan import SweepPlan, sweep
from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame


@dataclass(frozen=True, slots=True)
class SweepPlanWgs84:
    """A sweep plan in WGS84: ``path`` and ``waypoints`` in (lon, lat); metrics as in ``local`` (metres)."""

    path: LineString
    waypoints: tuple[tuple[float, float], ...]
    length_m: float
    turns: int
    coverage: float
    flight_time_s: float
    angle_deg: float
    cells: int
    swaths: int
    swath_m: float
    frame: LocalFrame
    local: SweepPlan


def sweep_wgs84(
    area_lonlat: Polygon,
    *,
    swath_m: float,
    start_latlon: tuple[float, float] | None = None,
    **options: Any,
) -> SweepPlanWgs84:
    """Plan a sweep over a WGS84 (lon, lat) polygon; holes are no-fly zones. Options as for ``sweep``.

    ``angle_deg`` stays in the local frame: counter-clockwise from east.

    >>> from shapely.geometry import box
    >>> plan = sweep_wgs84(box(109.98, 39.82, 109.985, 39.823), swath_m=40)
    >>> plan.coverage > 0.99, 109.98 < plan.waypoints[0][0] < 109.985
    (True, True)
    """
    if not isinstance(area_lonlat, Polygon):
        raise PlanningError(
            f"area must be a shapely Polygon in (lon, lat), got {type(area_lonlat).__name__}",
            code="plan.wgs84.area_shapely_polygon_lon",
            params={"name": type(area_lonlat).__name__},
        )
    frame = LocalFrame.for_geometry(area_lonlat)
    local_area = frame.to_local(area_lonlat)
    start = None
    if start_latlon is not None:
        if len(start_latlon) != 2:
            raise PlanningError(
                f"start_latlon must be (lat, lon), got {start_latlon!r}",
                code="plan.wgs84.start_latlon_lat_lon",
                params={"start_latlon": repr(start_latlon)},
            )
        start = frame.point_to_local(*start_latlon)
    plan = sweep(local_area, swath_m=swath_m, start=start, **options)
    path = frame.to_wgs84(plan.path)
    assert isinstance(path, LineString)
    return SweepPlanWgs84(
        path=path,
        waypoints=tuple((float(x), float(y)) for x, y in path.coords),
        length_m=plan.length_m,
        turns=plan.turns,
        coverage=plan.coverage,
        flight_time_s=plan.flight_time_s,
        angle_deg=plan.angle_deg,
        cells=plan.cells,
        swaths=plan.swaths,
        swath_m=plan.swath_m,
        frame=frame,
        local=plan,
    )
