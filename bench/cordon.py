"""Cordon benchmark: 20 random serious incidents in the demo district, the 7 docks, min-max assignment
against a nearest-drone-per-station greedy baseline over the same stations and the same ETAs.

    python -m bench.cordon --json bench/results/cordon.json

Each incident gets the three rings of the flee model (2.5 m/s for a random 60-240 s since the incident),
stations where the synthetic demo road grid (mission/cordons/demo_roads.geojson) crosses them, clear of the
demo no-fly zones; ``--per-dock`` drones per dock, docked, full. ETAs are the dispatch ranking's (take-off,
climb, the route around the no-fly zones, energy to hold the station ``--hold-s`` and return with the
reserve; as the runner relieves stations on battery, a drone that can hold at least ``--min-hold-s`` is fit,
as CordonConfig.min_hold_s). With fewer drones than stations the inner rings' stations are the ones manned,
by both policies alike.

``--airborne K``: K of the drones (spread over the docks) are on patrol when the incident comes, each at a
random point of the district at the patrol altitude with a random charge (``--patrol-pct``, 60-95 % by
default): a serious incident's cordon takes patrol drones too (CordonRunner.takes_patrols; the patrol is
backfilled). Both policies see the same fleet, patrol drones included; drones under the runner's
``spare_min_pct`` are left out of both.

The min-max assignment is an exact bottleneck assignment (tests/flightplans/test_cordon.py checks it
against brute force): on these ETAs no assignment that mans as many stations has an earlier last arrival.

Writes ``first_station_s_p50``, ``all_stations_s_p50``, ``all_stations_s_p90``, ``stations_manned_share``
and the same with the prefix ``greedy_``; ``improvement_all_stations_p50`` = 1 - ours / greedy (goal 0.2).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from shapely.geometry import Point

from flightplans.cordon import road_lines
from flightplans.geodesy import LocalFrame
from mission.airspace.service import shape_geometry
from mission.cordons.planner import plan_cordon
from mission.cordons.runner import CordonConfig
from mission.dispatch.energy import Performance
from mission.dispatch.ranking import Activity, VehicleState
from mission.safety.routing import Airspace, NoFlyZone
from mission.safety.rules import route_clearance_m
from mission.scenario import DOCKS, NO_FLY_ZONES

ROADS = Path(__file__).resolve().parent.parent / "mission" / "cordons" / "demo_roads.geojson"
DISTRICT = (109.925, 110.035, 39.788, 39.852)  # west, east, south, north: incidents fall inside
CLEARANCE_M = 20.0
ALT_M = 40.0
PATROL_ALT_M = 60.0


def fleet(per_dock: int) -> list[VehicleState]:
    """``per_dock`` drones on each dock, docked with a full pack (the demo fleet's performance)."""
    perf = Performance(cruise_speed_m_s=12.0, battery_wh=250.0)
    return [
        VehicleState(
            vehicle_id=i + 1,
            name=f"uav-{i + 1}",
            lat=d.lat,
            lon=d.lon,
            alt_rel_m=0.0,
            activity=Activity.DOCKED,
            battery_pct=100.0,
            home_lat=d.lat,
            home_lon=d.lon,
            perf=perf,
        )
        for i, d in enumerate(d for d in DOCKS for _ in range(per_dock))
    ]


def with_patrols(
    states: list[VehicleState],
    airborne: int,
    rng: random.Random,
    pct: tuple[float, float],
    zones: list[Any],
) -> list[VehicleState]:
    """``airborne`` of ``states`` (spread over the docks) on patrol now: somewhere in the district clear of
    the no-fly zones, at the patrol altitude, with a random charge; the rest as they are."""
    if airborne <= 0:
        return states
    picked = {round(k * len(states) / airborne) for k in range(airborne)}
    out = []
    for i, s in enumerate(states):
        if i in picked:
            lon, lat = rng.uniform(DISTRICT[0], DISTRICT[1]), rng.uniform(DISTRICT[2], DISTRICT[3])
            while any(z.buffer(0.003).contains(Point(lon, lat)) for z in zones):
                lon, lat = rng.uniform(DISTRICT[0], DISTRICT[1]), rng.uniform(DISTRICT[2], DISTRICT[3])
            s = replace(
                s,
                lat=lat,
                lon=lon,
                alt_rel_m=PATROL_ALT_M,
                activity=Activity.PATROL,
                battery_pct=rng.uniform(*pct),
            )
        out.append(s)
    return out


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run(
    *,
    incidents: int,
    seed: int,
    hold_s: float,
    per_dock: int,
    min_hold_s: float | None,
    airborne: int = 0,
    patrol_pct: tuple[float, float] = (60.0, 95.0),
) -> dict[str, Any]:
    rng = random.Random(seed)
    zones = [shape_geometry(z.shape) for z in NO_FLY_ZONES]
    layer = json.loads(ROADS.read_text(encoding="utf-8"))
    states = fleet(per_dock)
    out: dict[str, dict[str, list[float]]] = {
        p: {"first": [], "all": [], "manned": [], "total": [], "last": []}
        for p in ("minmax", "greedy", "docked")
    }
    plan_s: list[float] = []
    etas_of: dict[str, list[list[float]]] = {"minmax": [], "docked": []}  # per incident, sorted
    cases: list[tuple[float, float, float]] = []
    while len(cases) < incidents:
        lon, lat = rng.uniform(DISTRICT[0], DISTRICT[1]), rng.uniform(DISTRICT[2], DISTRICT[3])
        if any(z.buffer(0.003).contains(Point(lon, lat)) for z in zones):
            continue
        cases.append((lat, lon, rng.uniform(60.0, 240.0)))
    spare_min = CordonConfig().spare_min_pct
    for lat, lon, elapsed in cases:
        now = [
            s for s in with_patrols(states, airborne, rng, patrol_pct, zones) if s.battery_pct >= spare_min
        ]
        space = Airspace(
            LocalFrame(lat, lon),
            [NoFlyZone(z.name, shape_geometry(z.shape)) for z in NO_FLY_ZONES],
            margin_m=route_clearance_m(CLEARANCE_M),
        )
        # "docked": min-max without the patrol drones (what a cordon that does not take them gets).
        for policy in ("minmax", "greedy", "docked") if airborne else ("minmax", "greedy"):
            t0 = time.perf_counter()
            plan = plan_cordon(
                lat=lat,
                lon=lon,
                radii_m=None,
                flee_speed_m_s=2.5,
                elapsed_s=elapsed,
                stations_per_ring=None,
                roads_latlon=lambda frame: road_lines(layer, to_local=frame.point_to_local),
                nofly_lonlat=zones,
                states=[s for s in now if s.activity is not Activity.PATROL] if policy == "docked" else now,
                airspace=space,
                hold_s=hold_s,
                min_hold_s=min_hold_s,
                alt_m=ALT_M,
                clearance_m=CLEARANCE_M,
                policy="minmax" if policy == "docked" else policy,
            )
            if policy == "minmax":
                plan_s.append(time.perf_counter() - t0)
            etas = [s.eta_s for s in plan.stations if s.eta_s is not None]
            r = out[policy]
            if policy in etas_of:
                etas_of[policy].append(sorted(etas))
            if etas:
                r["first"].append(min(etas))
                r["all"].append(max(etas))
            r["manned"].append(len(etas))
            r["last"].append(max(etas) if etas else float("nan"))
            r["total"].append(len(plan.stations) + len(plan.dropped))

    def figures(policy: str, prefix: str) -> dict[str, Any]:
        r = out[policy]
        return {
            f"{prefix}first_station_s_p50": percentile(r["first"], 50),
            f"{prefix}all_stations_s_p50": percentile(r["all"], 50),
            f"{prefix}all_stations_s_p90": percentile(r["all"], 90),
            f"{prefix}stations_manned_share": sum(r["manned"]) / max(1, sum(r["total"])),
        }

    ours, base = figures("minmax", ""), figures("greedy", "greedy_")
    improvement = (
        1.0 - ours["all_stations_s_p50"] / base["greedy_all_stations_s_p50"]
        if ours["all_stations_s_p50"] and base["greedy_all_stations_s_p50"]
        else None
    )
    same = [
        (a, b)
        for a, b, na, nb in zip(
            out["minmax"]["last"],
            out["greedy"]["last"],
            out["minmax"]["manned"],
            out["greedy"]["manned"],
            strict=True,
        )
        if na == nb and na > 0
    ]
    return {
        **ours,
        **base,
        **(figures("docked", "without_patrols_") if airborne else {}),
        # Taking patrols mans more stations: the time until as many are manned as without them.
        **(
            {
                "with_patrols_as_many_s_p50": percentile(
                    [
                        ours_[len(d) - 1]
                        for ours_, d in zip(etas_of["minmax"], etas_of["docked"], strict=True)
                        if d and len(ours_) >= len(d)
                    ],
                    50,
                )
            }
            if airborne
            else {}
        ),
        # Where both man as many stations: the time to the last one, ours and the greedy one's.
        "same_count_incidents": len(same),
        "same_count_all_stations_s_p50": percentile([a for a, _ in same], 50),
        "same_count_greedy_all_stations_s_p50": percentile([b for _, b in same], 50),
        "improvement_all_stations_p50": improvement,
        "incidents": incidents,
        "seed": seed,
        "hold_s": hold_s,
        "min_hold_s": min_hold_s,
        "drones": len(states),
        "airborne": airborne,
        "stations_mean": statistics.mean(out["minmax"]["total"]),
        "plan_s_p50": percentile(plan_s, 50),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--hold-s", type=float, default=900.0)
    parser.add_argument(
        "--min-hold-s",
        type=float,
        default=CordonConfig().min_hold_s,
        help="a drone able to hold this long is fit (a relief takes over); 0 = must hold --hold-s",
    )
    parser.add_argument("--per-dock", type=int, default=2, help="drones on each of the 7 docks")
    parser.add_argument(
        "--airborne", type=int, default=0, help="drones on patrol (airborne) when the incident comes"
    )
    parser.add_argument(
        "--patrol-pct", type=float, nargs=2, default=(60.0, 95.0), help="patrol drones' charge range"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(
        incidents=args.incidents,
        seed=args.seed,
        hold_s=args.hold_s,
        per_dock=args.per_dock,
        min_hold_s=args.min_hold_s or None,
        airborne=args.airborne,
        patrol_pct=tuple(args.patrol_pct),
    )
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
