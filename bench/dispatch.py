"""Dispatch benchmark: a city scenario flown in the simulator, our policy against the nearest-dock baseline.

    python -m bench.dispatch --incidents 20 --json /tmp/dispatch.json

The demo district (mission.scenario): a dock at each of the seven police workstations with ``--per-dock``
vehicles, the no-fly zones, one vehicle per dock already out on a patrol loop, then ``--incidents`` incidents
at seeded random points, one every ``--interval-s`` simulated seconds. Each incident is dispatched
(auto-launch) by the service's Dispatcher over real MAVSDK links to a ``python -m sim``-like child process
running at ``--speed``. The same scenario is flown twice: with our first-arrival policy and with the baseline
(the nearest docked vehicle). Writes:

- ``incidents``; ``takeoff_ack_s_p50``/``_p95``: request -> take-off acked by the vehicle, wall seconds;
- ``on_scene_s_p50``/``_p90``: request -> on scene, simulated seconds (wall x speed);
- ``baseline_on_scene_s_p50``, ``improvement`` = 1 - ours / baseline (goals: >= 0.15, take-off p95 <= 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shapely.geometry import Point

REPO_ROOT = Path(__file__).resolve().parent.parent
# The demo fleet's packs (mission.scenario: 250 Wh); the sim draws ~220 W at 10 m/s, so an hour is safe.
BATTERY_WH = 250.0
ENDURANCE_S = 3600.0


@dataclass
class PolicyRun:
    """One policy's flight of the scenario."""

    policy: str
    takeoff_ack_s: list[float] = field(default_factory=list)
    loop_stall_ms_max: float = 0.0
    loop_stall_ms_p99: float = 0.0
    on_scene_s: list[float] = field(default_factory=list)  # simulated seconds, incidents that got there
    unserved: int = 0
    chosen_airborne: int = 0
    explanations: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Interpolated percentile where unserved incidents (inf) rank last; None when it falls among them."""
    data = sorted(values)
    if not data:
        return None
    k = (len(data) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    a, b = data[lo], data[hi]
    if math.isinf(b) and hi != lo:
        return None
    if math.isinf(a):
        return None
    return a + (b - a) * (k - lo)


# -- the simulator, in its own process so its CPU does not slow the service's event loop ------------------


def serve_sim(spec: dict[str, Any]) -> None:
    """Child process: vehicles on their docks until stdin closes or SIGTERM."""
    from sim import SimConfig, SimFleet, SimVehicle

    async def main() -> None:
        docks = spec["docks"]
        fleet = SimFleet(
            count=len(docks), base_port=spec["base_port"], speed=spec["speed"], home=tuple(docks[0])
        )
        config = SimConfig(battery_capacity_wh=BATTERY_WH)
        fleet.vehicles = [
            SimVehicle(
                index=i,
                sysid=i + 1,
                host="127.0.0.1",
                port=spec["base_port"] + i,
                home=tuple(dock),
                speed=spec["speed"],
                config=config,
                rng=random.Random(i),
            )
            for i, dock in enumerate(docks)
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with fleet:
            print("ready", flush=True)
            await stop.wait()

    asyncio.run(main())


def start_sim(
    docks: list[tuple[float, float, float]], *, base_port: int, speed: float
) -> subprocess.Popen[str]:
    spec = json.dumps({"docks": docks, "base_port": base_port, "speed": speed})
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.dispatch", "--serve-sim", spec],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc


def stop_sim(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_udp_base(count: int) -> int:
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


# -- the scenario -------------------------------------------------------------------------------------------


def incident_points(count: int, *, seed: int) -> list[tuple[float, float]]:
    """Seeded random points in the district, clear of the no-fly zones by 200 m."""
    from flightplans.geodesy import LocalFrame
    from mission.airspace.service import shape_geometry
    from mission.scenario import CENTER_LAT, CENTER_LON, NO_FLY_ZONES

    frame = LocalFrame(CENTER_LAT, CENTER_LON)
    blocked = [frame.to_local(shape_geometry(z.shape)).buffer(200) for z in NO_FLY_ZONES]
    rng = random.Random(seed)
    out: list[tuple[float, float]] = []
    while len(out) < count:
        x, y = rng.uniform(-4500, 4500), rng.uniform(-3600, 3600)
        if any(b.contains(Point(x, y)) for b in blocked):
            continue
        out.append(frame.point_to_wgs84(x, y))
    return out


def zone_patrol(zone_name: str, *, inset_m: float) -> dict[str, Any]:
    """A patrol zone of the district shrunk by ``inset_m``, as a GeoJSON polygon for a perimeter patrol."""
    from shapely.geometry import mapping

    from flightplans.geodesy import LocalFrame
    from mission.airspace.service import shape_geometry
    from mission.scenario import PATROL_ZONES

    zone = next(z for z in PATROL_ZONES if z.name == zone_name)
    poly = shape_geometry(zone.shape)
    frame = LocalFrame.for_geometry(poly)
    inner = frame.to_wgs84(frame.to_local(poly).buffer(-inset_m, join_style="mitre"))
    geo = mapping(inner)
    return {"type": "Polygon", "coordinates": [[list(c) for c in ring] for ring in geo["coordinates"]]}


def patrol_loop(lat: float, lon: float) -> dict[str, Any]:
    """A 1.2 x 0.8 km loop around a dock, as a GeoJSON polygon for a perimeter patrol."""
    dlat, dlon = 400 / 111_320.0, 600 / (111_320.0 * math.cos(math.radians(lat)))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


async def fly_policy(policy: str, args: argparse.Namespace, points: list[tuple[float, float]]) -> PolicyRun:
    """Fly the whole scenario once with ``policy``."""
    from sqlmodel import Session, col, select

    from api import migrations
    from api.settings import Settings
    from mission.airspace import service as airspace
    from mission.db import make_engine, session_scope
    from mission.errors import SkywardenError
    from mission.fleet import service as fleet_service
    from mission.fleet.models import Capability, VehicleCreate
    from mission.incidents.models import Incident, IncidentCreate, IncidentSource, IncidentState
    from mission.missions.models import MissionCreate, PlanSpec
    from mission.patrols.models import Patrol, RunStatus
    from mission.patrols.scheduler import claim, finish_run
    from mission.runtime import Runtime
    from mission.safety.gate import Asker
    from mission.scenario import DOCKS, HOME_ALT_M, NO_FLY_ZONES

    run = PolicyRun(policy)
    docks = [(d.lat, d.lon, HOME_ALT_M) for d in DOCKS for _ in range(args.per_dock)]
    base = free_udp_base(len(docks))
    workdir = tempfile.mkdtemp(prefix="bench-dispatch-")
    url = f"sqlite:///{workdir}/skywarden.db"
    engine = make_engine(url)
    migrations.upgrade(engine)
    with session_scope(engine) as session:
        for zone in NO_FLY_ZONES:
            airspace.create_zone(session=session, data=zone)
        for i, (lat, lon, alt) in enumerate(docks):
            fleet_service.create(
                session=session,
                data=VehicleCreate(
                    name=f"drone-{i + 1}",
                    connection_url=f"udpin://0.0.0.0:{base + i}",
                    sysid=i + 1,
                    home_lat=lat,
                    home_lon=lon,
                    home_alt_m=alt,
                    dock=DOCKS[i // args.per_dock].name,
                    capabilities=[Capability.camera],
                    cruise_speed_m_s=10.0,
                    endurance_s=ENDURANCE_S,
                    battery_wh=BATTERY_WH,
                ),
            )
    sim = start_sim(docks, base_port=base, speed=args.speed)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        registry_poll_s=1.0,
        sim_speed=args.speed,
        dispatch_policy=policy,
        dispatch_relief_margin_s=60.0,
        dispatch_auto_launch=True,
        dispatch_auto_launch_max_priority=5,
    )
    asker = Asker("bench", "pilot")
    try:
        async with Runtime(settings=settings, engine=engine) as runtime:
            for i in range(len(docks)):
                link = await runtime.fleet.wait_link(i + 1, timeout_s=30)
                await link.wait_ready(timeout_s=30)
            # Patrols in progress: the first vehicle of each dock patrols the zone the dock serves (or, where
            # that loop meets a no-fly zone and the safety gate refuses it, a loop round its dock).
            for k, dock in enumerate(DOCKS):
                vid = k * args.per_dock + 1
                mission = None
                for geometry in (zone_patrol(dock.zone, inset_m=700.0), patrol_loop(dock.lat, dock.lon)):
                    plan = PlanSpec(
                        kind="perimeter", geometry=geometry, params={"alt_m": 60.0, "inset_m": 0.0}
                    )
                    try:
                        mission = runtime.missions.create(
                            data=MissionCreate(name=f"patrol {dock.name}", vehicle_id=vid, plan=plan),
                            asker=asker,
                        )
                        assert mission.id is not None
                        runtime.missions.validate(mission_id=mission.id, asker=asker)
                        break
                    except SkywardenError:
                        continue
                assert mission is not None and mission.id is not None
                with session_scope(engine) as session:
                    patrol = Patrol(name=f"loop {dock.name}", plan=plan.model_dump(), cron="0 0 1 1 *")
                    session.add(patrol)
                    session.flush()
                    patrol_id = patrol.id
                assert patrol_id is not None
                run_id = claim(engine=engine, patrol_id=patrol_id, scheduled_for=_now(), at=_now())
                assert run_id is not None
                await runtime.missions.launch(mission_id=mission.id, asker=asker)
                finish_run(
                    engine=engine,
                    run_id=run_id,
                    status=RunStatus.LAUNCHED,
                    vehicle_id=vid,
                    mission_id=mission.id,
                    at=_now(),
                )
            await asyncio.sleep(120.0 / args.speed)  # two simulated minutes out on patrol
            dispatcher = runtime.dispatcher
            runtime.loop.reset()  # the loop's stalls while incidents are dispatched and flown
            ids = []
            for lat, lon in points:
                data = IncidentCreate(
                    lat=lat, lon=lon, kind="bench", priority=2, overhead_s=args.overhead_s, alt_m=60.0
                )
                ids.append(await dispatcher.create(data=data, actor="bench", channel=IncidentSource.API))
                await asyncio.sleep(args.interval_s / args.speed)
            deadline = time.monotonic() + args.drain_s
            while time.monotonic() < deadline:
                with Session(engine) as session:
                    waiting = session.exec(
                        select(Incident)
                        .where(col(Incident.id).in_(ids))
                        .where(
                            col(Incident.state).in_(
                                [IncidentState.ASSIGNED.value, IncidentState.EN_ROUTE.value]
                            )
                        )
                    ).all()
                if not waiting:
                    break
                await asyncio.sleep(0.5)
            run.takeoff_ack_s = list(dispatcher.takeoff_ack_s)
            run.loop_stall_ms_max = runtime.loop.worst_ms
            run.loop_stall_ms_p99 = runtime.loop.p99_ms()
            with Session(engine) as session:
                for inc in session.exec(
                    select(Incident).where(col(Incident.id).in_(ids)).order_by(col(Incident.id))
                ).all():
                    if inc.on_scene_at is None:
                        run.unserved += 1
                        run.on_scene_s.append(math.inf)  # counts against the policy, not dropped
                        continue
                    run.on_scene_s.append((inc.on_scene_at - inc.created_at).total_seconds() * args.speed)
                    decision = inc.decision or {}
                    chosen = next(
                        (
                            c
                            for c in decision.get("candidates", [])
                            if c.get("vehicle_id") == decision.get("chosen_vehicle_id")
                        ),
                        None,
                    )
                    if chosen is not None and chosen.get("activity") != "docked":
                        run.chosen_airborne += 1
                    run.explanations.append(decision.get("explanation", ""))
    finally:
        stop_sim(sim)
        engine.dispose()
        if not args.keep_db:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"{policy}: database kept at {workdir}/skywarden.db", file=sys.stderr)
    return run


def _now() -> datetime:
    from mission.audit.clock import utcnow

    return utcnow()


def summarize(ours: PolicyRun, baseline: PolicyRun, *, incidents: int, speed: float) -> dict[str, Any]:
    """The JSON the benchmark writes."""
    p50 = percentile(ours.on_scene_s, 50)
    pairs = [
        (a, b)
        for a, b in zip(ours.on_scene_s, baseline.on_scene_s, strict=False)
        if math.isfinite(a) and math.isfinite(b)
    ]
    base50 = percentile(baseline.on_scene_s, 50)
    return {
        "incidents": incidents,
        "speed": speed,
        "takeoff_ack_s_p50": percentile(ours.takeoff_ack_s, 50),
        "takeoff_ack_s_p95": percentile(ours.takeoff_ack_s, 95),
        "on_scene_s_p50": p50,
        "on_scene_s_p90": percentile(ours.on_scene_s, 90),
        "baseline_on_scene_s_p50": base50,
        "baseline_on_scene_s_p90": percentile(baseline.on_scene_s, 90),
        "improvement": (1.0 - p50 / base50) if p50 is not None and base50 else None,
        # The same comparison over only the incidents both policies reached (pairs in incident order).
        "both_served": len(pairs),
        "on_scene_s_p50_both_served": percentile([a for a, _ in pairs], 50),
        "baseline_on_scene_s_p50_both_served": percentile([b for _, b in pairs], 50),
        "served": sum(1 for v in ours.on_scene_s if math.isfinite(v)),
        "baseline_served": sum(1 for v in baseline.on_scene_s if math.isfinite(v)),
        "unserved": ours.unserved,
        "baseline_unserved": baseline.unserved,
        "served_by_airborne": ours.chosen_airborne,
        "takeoffs": len(ours.takeoff_ack_s),
        "baseline_takeoff_ack_s_p95": percentile(baseline.takeoff_ack_s, 95),
        # The service's event loop while dispatching (our policy's run): worst and p99 lateness.
        "loop_stall_ms_max": round(ours.loop_stall_ms_max, 1),
        "loop_stall_ms_p99": round(ours.loop_stall_ms_p99, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "goals": {"takeoff_ack_s_p95_max": 1.0, "improvement_min": 0.15},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--speed", type=float, default=20.0, help="simulated seconds per wall second")
    parser.add_argument("--interval-s", type=float, default=60.0, help="simulated seconds between incidents")
    parser.add_argument("--overhead-s", type=float, default=60.0, help="simulated seconds overhead each")
    parser.add_argument("--per-dock", type=int, default=2, help="vehicles per dock")
    parser.add_argument(
        "--drain-s", type=float, default=60.0, help="wall seconds to wait for the last arrivals"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-db", action="store_true", help="keep each run's SQLite database to inspect")
    parser.add_argument("--serve-sim", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sim is not None:
        serve_sim(json.loads(args.serve_sim))
        return 0
    if args.incidents < 1:
        parser.error("--incidents must be at least 1")
    points = incident_points(args.incidents, seed=args.seed)
    ours = asyncio.run(fly_policy("first_arrival", args, points))
    baseline = asyncio.run(fly_policy("nearest_dock", args, points))
    result = summarize(ours, baseline, incidents=args.incidents, speed=args.speed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
