"""A cordon's plan: rings around the scene, stations (road crossings or evenly spaced, clear of no-fly
zones) and the min-max assignment of the fleet to them over true ETAs (docked and airborne, with energy to
hold and return), with every unmanned station and why. Pure over the fleet's states and the airspace."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shapely.geometry import LineString, Polygon

from flightplans.cordon import (
    DroppedStation,
    Station,
    cordon_radii,
    greedy_assignment,
    minmax_assignment,
    place_stations,
)
from flightplans.geodesy import LocalFrame
from mission.dispatch.ranking import CandidateEstimate, DispatchRequest, VehicleState, estimate
from mission.safety.routing import Airspace

DEFAULT_STATIONS = (4, 6, 8)  # evenly spaced stations per ring when no road layer is loaded


@dataclass(frozen=True, slots=True)
class StationPlan:
    """A station with its position, look direction, the drone assigned (if any) and its estimate."""

    station: Station
    lat: float
    lon: float
    vehicle_id: int | None
    eta_s: float | None
    route_latlon: tuple[tuple[float, float], ...]
    reason: str  # why unmanned ("" when a drone is assigned)


@dataclass(frozen=True, slots=True)
class CordonPlan:
    radii_m: tuple[float, ...]
    stations: tuple[StationPlan, ...]
    dropped: tuple[DroppedStation, ...]
    last_eta_s: float  # the latest planned arrival (the time to the last station manned, planned)


def plan_cordon(
    *,
    lat: float,
    lon: float,
    radii_m: Sequence[float] | None,
    flee_speed_m_s: float,
    elapsed_s: float,
    stations_per_ring: Sequence[int] | None,
    roads_latlon: Callable[[LocalFrame], list[LineString]] | None,
    nofly_lonlat: Sequence[Polygon],
    states: Sequence[VehicleState],
    airspace: Airspace,
    hold_s: float,
    alt_m: float,
    clearance_m: float,
    policy: str = "minmax",
    min_hold_s: float | None = None,
) -> CordonPlan:
    """Rings, stations and who mans each (``policy`` "minmax", or "greedy" for the baseline).

    A drone must reach its station with energy to hold ``hold_s`` and return with its reserve; with
    ``min_hold_s`` (stations are relieved on battery) one that can hold at least that long is fit too,
    as the dispatch ranking judges a rotated overwatch.
    """
    frame = LocalFrame(lat, lon)
    radii = tuple(radii_m) if radii_m else cordon_radii(flee_speed_m_s=flee_speed_m_s, elapsed_s=elapsed_s)
    roads = roads_latlon(frame) if roads_latlon is not None else []
    nofly = [frame.to_local(z) for z in nofly_lonlat]
    counts = list(stations_per_ring or DEFAULT_STATIONS)
    stations: list[Station] = []
    dropped: list[DroppedStation] = []
    for ring, radius in enumerate(radii):
        placed, lost = place_stations(
            (0.0, 0.0),
            radius,
            roads=roads,
            count=counts[min(ring, len(counts) - 1)],
            ring=ring,
            nofly=nofly,
            clearance_m=clearance_m,
        )
        stations += placed
        dropped += lost
    where = [frame.point_to_wgs84(s.x, s.y) for s in stations]
    fleet = list(states)
    estimates: list[list[CandidateEstimate]] = [
        [
            estimate(
                v,
                DispatchRequest(
                    lat=p[0], lon=p[1], overhead_s=hold_s, alt_m=alt_m, min_overhead_s=min_hold_s
                ),
                airspace=airspace,
            )
            for p in where
        ]
        for v in fleet
    ]
    eta = [[e.eta_s if e.feasible else math.inf for e in row] for row in estimates]
    # With fewer drones than stations the inner rings come first: the stations to man are the first
    # ``len(fleet)`` in ring order, and both policies man that same set.
    manned_set = len(fleet)
    eta = [[t if j < manned_set else math.inf for j, t in enumerate(row)] for row in eta]
    assign = minmax_assignment if policy == "minmax" else greedy_assignment
    matching, last = assign(eta) if fleet and stations else ({}, 0.0)
    by_station = {j: i for i, j in matching.items()}
    out = []
    for j, s in enumerate(stations):
        i = by_station.get(j)
        if i is not None:
            e = estimates[i][j]
            out.append(StationPlan(s, *where[j], fleet[i].vehicle_id, e.eta_s, e.route_latlon, ""))
            continue
        reachable = [fleet[k].name for k in range(len(fleet)) if math.isfinite(eta[k][j])]
        if not fleet:
            reason = "no drone available"
        elif j >= manned_set:
            reason = f"no drone left: {len(fleet)} usable for {len(stations)} stations (inner rings first)"
        elif reachable:
            reason = f"no drone left: {len(fleet)} usable for {len(stations)} stations"
        elif fleet:
            why = "; ".join(sorted({estimates[k][j].reason for k in range(len(fleet))}))[:200]
            reason = f"no drone can reach it and hold with energy to return ({why})"
        else:
            reason = "no drone available"
        out.append(StationPlan(s, *where[j], None, None, (), reason))
    return CordonPlan(radii, tuple(out), tuple(dropped), last)
