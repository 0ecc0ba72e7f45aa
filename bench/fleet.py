"""Fleet benchmark: one LinkManager flying N simulated vehicles; what does the service process cost?

    python -m bench.fleet --vehicles 50 --speed 5 --json /tmp/fleet50.json
    python -m bench.fleet --vehicles 500 --instances 2    # the fleet split over 2 link processes

With ``--instances K`` the vehicles are split into K contiguous shares, each linked and flown by its own
process (as K service instances would own them); ``cpu_util``/``rss_mb``/``threads_peak`` are then the
busiest instance's, and ``per_instance`` lists each. Vehicle i has the simulator's sysid (1, 2, ... skipping
MAVSDK's 245 and 255, repeating past 253 on other ports: the LinkManager puts a repeated sysid in another
MAVSDK instance).

Starts ``python -m sim`` as a separate process (so its CPU is not ours; ``--px4-rates`` makes the vehicles
stream as PX4 SITL does, 50 Hz position), links every vehicle to one LinkManager in this process, flies
each a short mission (takeoff, a leg out, a payload action, a second leg) and reports:
vehicles, connected, missions_completed, wall_s, cpu_util (this process's average cores, sim excluded),
rss_mb (its peak), telemetry_hz (snapshots per second received per vehicle), plus the simulator's own use.
The goal: 50 vehicles all complete at speed 5 with the service under 1 core and under 300 MB.

    python -m bench.fleet --px4 5 --speed 2 --json bench/results/fleet-px4-5.json

flies the same missions on N real PX4 SITL vehicles (``sim/px4sitl``, at most 10 on one machine) and then on
N sim/ vehicles streaming at PX4 rates, and writes ``{"px4": {...}, "sim": {...}}`` with the keys above for
each (``sim_cpu_util``/``sim_rss_mb`` are the vehicles' own use: all PX4 processes summed, or the simulator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench._proc import ProcessMeter, ProcessUsage
from flightplans.items import MissionItem, SetActuator, Takeoff, Waypoint
from mission.errors import LinkError
from mission.link import LinkManager, MavsdkVehicleLink
from mission.link.manager import MAX_SHARDS, SYSIDS_PER_SHARD
from sim.fleet import MAX_VEHICLES as SIM_MAX_VEHICLES
from sim.fleet import sysid_for

HOME = (39.82, 109.98, 1100.0)
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class VehicleRun:
    """One vehicle's outcome."""

    sysid: int
    connected_s: float | None = None
    mission_s: float | None = None
    snapshots: int = 0  # link-up snapshots received
    first_snapshot_at: float | None = None
    last_snapshot_at: float | None = None
    error: str | None = None

    @property
    def snapshot_hz(self) -> float | None:
        """Link-up snapshots per second while this vehicle was connected."""
        if self.first_snapshot_at is None or self.last_snapshot_at is None or self.snapshots < 2:
            return None
        span = self.last_snapshot_at - self.first_snapshot_at
        return (self.snapshots - 1) / span if span > 0 else None


@dataclass
class FleetResult:
    """What the benchmark writes as JSON."""

    vehicles: int
    speed: float
    stream_rates: str
    hold_s: float
    connected: int
    missions_completed: int
    wall_s: float
    connect_s: float
    cpu_util: float
    cpu_s: float
    rss_mb: float
    telemetry_hz: float
    telemetry_hz_target: float
    threads_peak: int
    sim_cpu_util: float
    sim_rss_mb: float
    mission_s_p50: float | None
    mission_s_max: float | None
    instances: int = 1
    mavsdk_instances: int = 1  # per link process (the busiest)
    per_instance: list[dict[str, float]] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)


def patrol(index: int, count: int) -> list[MissionItem]:
    """A short mission fanned out by vehicle index, so the vehicles do not share airspace."""
    bearing = 2 * math.pi * index / max(count, 1)
    alt = 20.0 + (index % 5) * 5.0

    def at(dist_m: float, turn: float = 0.0) -> tuple[float, float]:
        north = dist_m * math.cos(bearing + turn)
        east = dist_m * math.sin(bearing + turn)
        lat = HOME[0] + math.degrees(north / 6371000.0)
        lon = HOME[1] + math.degrees(east / (6371000.0 * math.cos(math.radians(HOME[0]))))
        return lat, lon

    out, side = at(150.0), at(180.0, 0.3)
    return [
        Takeoff(alt_m=alt),
        Waypoint(lat=out[0], lon=out[1], alt_m=alt),
        SetActuator(index=1, value=1.0),
        Waypoint(lat=side[0], lon=side[1], alt_m=alt),
    ]


async def _count_snapshots(link: MavsdkVehicleLink, run: VehicleRun) -> None:
    async for snap in link.snapshots():
        if not snap.link_up:
            continue
        now = time.monotonic()
        if run.first_snapshot_at is None:
            run.first_snapshot_at = now
        run.last_snapshot_at = now
        run.snapshots += 1


async def _fly(
    link: MavsdkVehicleLink, run: VehicleRun, items: list[MissionItem], *, t0: float, timeout_s: float
) -> None:
    try:
        await link.wait_ready(timeout_s=timeout_s)
        run.connected_s = time.monotonic() - t0
        started = time.monotonic()
        await link.upload_mission(items)
        # As the service does: MISSION while disarmed first (a PX4 that refuses it for a while after an upload
        # would otherwise disarm itself on the ground, COM_DISARM_PRFLT, while we retry), then arm (PX4 drops
        # to HOLD on arming) and select MISSION again to take off.
        await link.start_mission()
        await link.arm()
        await link.start_mission()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            snap = link.latest
            if snap is not None and snap.mission.finished and snap.mission.total == len(items):
                run.mission_s = time.monotonic() - started
                return
            await asyncio.sleep(0.2)
        run.error = f"mission not finished within {timeout_s:.0f} s (last: {link.latest})"
    except LinkError as err:
        run.error = str(err)


# `python -m sim` has no stream-rate option; this runs the same entry point with PX4 SITL's offboard-link
# rates (MAVLINK.md: position ~50 Hz, attitude ~100 Hz), still as a separate process.
_PX4_RATES_SIM = """
import asyncio, sys
from sim.__main__ import parse_home, run_fleet
from sim.config import DEFAULT_STREAM_HZ, SimConfig
rates = {**DEFAULT_STREAM_HZ, "GLOBAL_POSITION_INT": 50.0, "ATTITUDE": 100.0, "LOCAL_POSITION_NED": 30.0}
count, base, speed, home = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), parse_home(sys.argv[4])
config = SimConfig(stream_hz=rates, tick_hz=100.0)
asyncio.run(run_fleet(count=count, base_port=base, speed=speed, home=home, config=config))
"""


def start_sim(
    *, count: int, base_port: int, speed: float, px4_rates: bool = False
) -> subprocess.Popen[bytes]:
    """The simulator as a separate process, in its own session (so it can be stopped as a whole)."""
    home = ",".join(str(v) for v in HOME)
    if px4_rates:
        cmd = [sys.executable, "-c", _PX4_RATES_SIM, str(count), str(base_port), str(speed), home]
    else:
        cmd = [sys.executable, "-m", "sim", "--count", str(count), "--base-port", str(base_port)]
        cmd += ["--speed", str(speed), "--home", home]
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def stop_sim(proc: subprocess.Popen[bytes]) -> str:
    """SIGINT, then SIGKILL after 10 s; returns the tail of its stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return err[-2000:]


class _Meters:
    """Several processes measured as one (PX4 runs one process per vehicle)."""

    def __init__(self, pids: Sequence[int]) -> None:
        self._meters = [ProcessMeter(pid).start() for pid in pids]

    def stop(self) -> tuple[float, float]:
        """(cores busy on average, peak RSS in MB), summed over the processes."""
        usages = [m.stop() for m in self._meters]
        return sum(u.cpu_util for u in usages), sum(u.rss_peak_mb for u in usages)


async def run_px4(
    *,
    vehicles: int,
    speed: float,
    telemetry_hz: float,
    timeout_s: float,
    executor_workers: int,
    hold_s: float,
) -> FleetResult:
    """Fly ``vehicles`` real PX4 SITL instances (all at HOME, missions fanned out) and measure the service."""
    import tempfile

    from sim.px4sitl import start_px4

    workdir = tempfile.mkdtemp(prefix="bench-fleet-px4-")
    async with start_px4(vehicles, homes=[HOME] * vehicles, workdir=workdir, speed=speed) as px4:
        return await run(
            vehicles=vehicles,
            speed=speed,
            base_port=0,
            telemetry_hz=telemetry_hz,
            timeout_s=timeout_s,
            executor_workers=executor_workers,
            hold_s=hold_s,
            px4=[(p.sysid, p.url, p.pid) for p in px4],
        )


async def run(
    *,
    vehicles: int,
    speed: float,
    base_port: int,
    telemetry_hz: float,
    timeout_s: float,
    executor_workers: int,
    px4_rates: bool = False,
    hold_s: float = 0.0,
    px4: Sequence[tuple[int, str, int]] = (),
    share: tuple[int, int] | None = None,
) -> FleetResult:
    """Fly the fleet once and measure.

    With ``px4`` ((sysid, url, pid) each) fly those real PX4 instances instead of sim/; with ``share=(first,
    end)`` link only those vehicles of a simulator another process runs (``--instances``).
    """
    first, end = share or (0, len(px4) or vehicles)
    indices = range(first, end)
    targets = list(px4) or [(sysid_for(i), f"udpin://0.0.0.0:{base_port + i}", 0) for i in indices]
    runs = [VehicleRun(sysid=sysid) for sysid, _, _ in targets]
    async with LinkManager(executor_workers=executor_workers, telemetry_hz=telemetry_hz) as links:
        flown = [await links.add_vehicle(sysid=sysid, url=url) for sysid, url, _ in targets]
        counters = [
            asyncio.create_task(_count_snapshots(link, r), name=f"bench:snapshots:{r.sysid}")
            for link, r in zip(flown, runs, strict=True)
        ]
        meter = ProcessMeter().start()
        sim = (
            None
            if px4 or share
            else start_sim(count=vehicles, base_port=base_port, speed=speed, px4_rates=px4_rates)
        )
        sim_meter = _Meters([pid for _, _, pid in px4] if px4 else [sim.pid] if sim is not None else [])
        t0 = time.monotonic()
        sim_err = ""
        try:
            await asyncio.gather(
                *(
                    _fly(link, r, patrol(i, vehicles), t0=t0, timeout_s=timeout_s)
                    for i, link, r in zip(indices, flown, runs, strict=True)
                )
            )
            # steady state: every vehicle hovering at its last waypoint, telemetry still flowing
            await asyncio.sleep(hold_s)
        finally:
            usage: ProcessUsage = meter.stop()
            sim_cpu, sim_rss = sim_meter.stop()
            for task in counters:
                task.cancel()
            await asyncio.gather(*counters, return_exceptions=True)
            if sim is not None:
                sim_err = stop_sim(sim)
        wall = time.monotonic() - t0
        mavsdk_instances = links.shard_count
    if sim is not None and sim.returncode not in (0, -signal.SIGINT) and sim_err:
        print(f"sim exited {sim.returncode}: {sim_err}", file=sys.stderr)
    done = sorted(r.mission_s for r in runs if r.mission_s is not None)
    rates = [hz for r in runs if (hz := r.snapshot_hz) is not None]
    connect = [r.connected_s for r in runs if r.connected_s is not None]
    return FleetResult(
        vehicles=len(runs),
        mavsdk_instances=mavsdk_instances,
        speed=speed,
        hold_s=hold_s,
        stream_rates="px4 sitl (real PX4 v1.17 SIH)"
        if px4
        else "px4 (position 50 Hz, attitude 100 Hz)"
        if px4_rates
        else "sim defaults (position 10 Hz)",
        connected=len(connect),
        missions_completed=len(done),
        wall_s=round(wall, 2),
        connect_s=round(max(connect), 2) if connect else math.nan,
        cpu_util=round(usage.cpu_util, 3),
        cpu_s=round(usage.cpu_s, 2),
        rss_mb=round(usage.rss_peak_mb, 1),
        telemetry_hz=round(sum(rates) / len(rates), 2) if rates else 0.0,
        telemetry_hz_target=telemetry_hz,
        threads_peak=usage.threads_peak,
        sim_cpu_util=round(sim_cpu, 3),
        sim_rss_mb=round(sim_rss, 1),
        mission_s_p50=round(done[len(done) // 2], 2) if done else None,
        mission_s_max=round(done[-1], 2) if done else None,
        errors={i: r.error for i, r in zip(indices, runs, strict=True) if r.error},
    )


def run_instances(
    *, instances: int, vehicles: int, speed: float, base_port: int, argv: list[str]
) -> FleetResult:
    """K link processes, each owning a contiguous share of the fleet, and one simulator; merged figures."""
    shares = [(vehicles * k // instances, vehicles * (k + 1) // instances) for k in range(instances)]
    outs = [Path(f"/tmp/bench-fleet-{base_port}-{k}.json") for k in range(instances)]
    children = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.fleet", *argv, "--base-port", str(base_port)),
                *("--share", f"{lo}:{hi}", "--json", str(out), "--quiet"),
            ],
            cwd=REPO_ROOT,
        )
        for (lo, hi), out in zip(shares, outs, strict=True)
    ]
    # As in one process: every link listens before the first vehicle sends.
    deadline = time.monotonic() + 60
    while not _all_bound(base_port, vehicles) and time.monotonic() < deadline:
        time.sleep(0.2)
    sim = start_sim(count=vehicles, base_port=base_port, speed=speed)
    sim_meter = ProcessMeter(sim.pid).start()
    t0 = time.monotonic()
    try:
        codes = [child.wait() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        sim_usage = sim_meter.stop()
        stop_sim(sim)
    wall = time.monotonic() - t0
    parts = []
    for (lo, hi), out, code in zip(shares, outs, codes, strict=True):
        if not out.exists():
            raise RuntimeError(f"instance for vehicles {lo}..{hi - 1} wrote no result (exit {code})")
        parts.append(json.loads(out.read_text()))
        out.unlink()
    busiest = max(parts, key=lambda p: p["cpu_util"])
    p50s = sorted(p["mission_s_p50"] for p in parts if p["mission_s_p50"] is not None)
    maxes = [p["mission_s_max"] for p in parts if p["mission_s_max"] is not None]
    connects = [p["connect_s"] for p in parts if p["connect_s"] == p["connect_s"]]
    return FleetResult(
        vehicles=vehicles,
        speed=speed,
        hold_s=busiest["hold_s"],
        stream_rates=busiest["stream_rates"],
        connected=sum(p["connected"] for p in parts),
        missions_completed=sum(p["missions_completed"] for p in parts),
        wall_s=round(wall, 2),
        connect_s=max(connects) if connects else math.nan,
        cpu_util=busiest["cpu_util"],
        cpu_s=busiest["cpu_s"],
        rss_mb=max(p["rss_mb"] for p in parts),
        telemetry_hz=round(sum(p["telemetry_hz"] * p["vehicles"] for p in parts) / vehicles, 2),
        telemetry_hz_target=busiest["telemetry_hz_target"],
        threads_peak=max(p["threads_peak"] for p in parts),
        sim_cpu_util=round(sim_usage.cpu_util, 3),
        sim_rss_mb=round(sim_usage.rss_peak_mb, 1),
        mission_s_p50=p50s[len(p50s) // 2] if p50s else None,
        mission_s_max=max(maxes) if maxes else None,
        instances=instances,
        mavsdk_instances=max(p["mavsdk_instances"] for p in parts),
        per_instance=[
            {
                k: p[k]
                for k in ("vehicles", "connected", "missions_completed", "cpu_util", "rss_mb", "threads_peak")
            }
            for p in parts
        ],
        errors={int(k): v for p in parts for k, v in p["errors"].items()},
    )


def print_table(result: FleetResult) -> None:
    """One row per figure, aligned."""
    rows = [(k, v) for k, v in asdict(result).items() if k != "errors"]
    width = max(len(k) for k, _ in rows)
    print(f"{'fleet benchmark':<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for sysid, err in sorted(result.errors.items())[:10]:
        print(f"  vehicle {sysid}: {err}")
    if len(result.errors) > 10:
        print(f"  ... and {len(result.errors) - 10} more errors")


def _all_bound(base: int, count: int) -> bool:
    """Whether some process listens on every UDP port base..base+count-1."""
    import socket

    for port in range(base, base + count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            continue
        finally:
            s.close()
        return False
    return True


def _free_base(count: int) -> int:
    import socket

    for base in range(30000, 60000 - count, 997):
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError(f"no {count} consecutive free UDP ports")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--speed", type=float, default=5.0, help="simulator speed factor")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--base-port", type=int, default=None, help="first UDP port (default: a free range)")
    parser.add_argument("--telemetry-hz", type=float, default=10.0)
    parser.add_argument("--timeout-s", type=float, default=120.0, help="per vehicle: connect, and fly")
    parser.add_argument("--executor-workers", type=int, default=64)
    parser.add_argument(
        "--hold-s", type=float, default=0.0, help="keep measuring this long after the missions"
    )
    parser.add_argument(
        "--px4-rates",
        action="store_true",
        help="vehicles stream at PX4 SITL rates (position 50 Hz) not sim's",
    )
    parser.add_argument(
        "--px4",
        type=int,
        default=0,
        metavar="N",
        help="fly N real PX4 SITL vehicles (1..10), then N sim/ vehicles at PX4 rates next to them",
    )
    parser.add_argument("--instances", type=int, default=1, help="link processes sharing the fleet")
    parser.add_argument("--share", default=None, help=argparse.SUPPRESS)  # FIRST:END, for --instances
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.px4:
        if not 1 <= args.px4 <= 10:
            parser.error(f"--px4 must be 1..10 (PX4 instance numbers 0..9), got {args.px4}")
        if args.instances != 1:
            parser.error("--px4 is for one instance")
        return _main_px4(args)
    if not 1 <= args.instances <= 16:
        parser.error(f"--instances must be 1..16, got {args.instances}")
    # One process links at most MAX_SHARDS MAVSDK instances of SYSIDS_PER_SHARD vehicles each.
    ceiling = min(SIM_MAX_VEHICLES, MAX_SHARDS * SYSIDS_PER_SHARD * args.instances)
    if not 1 <= args.vehicles <= ceiling:
        parser.error(
            f"--vehicles must be 1..{ceiling} (with --instances {args.instances}), got {args.vehicles}"
        )
    if args.instances > 1 and args.px4_rates:
        parser.error("--px4-rates is for one instance")
    base = args.base_port or _free_base(args.vehicles)
    if args.instances > 1:
        forwarded = ["--vehicles", str(args.vehicles), "--speed", str(args.speed)]
        forwarded += ["--telemetry-hz", str(args.telemetry_hz), "--timeout-s", str(args.timeout_s)]
        forwarded += ["--executor-workers", str(args.executor_workers), "--hold-s", str(args.hold_s)]
        result = run_instances(
            instances=args.instances, vehicles=args.vehicles, speed=args.speed, base_port=base, argv=forwarded
        )
    else:
        share = None
        if args.share:
            lo, hi = (int(x) for x in args.share.split(":"))
            share = (lo, hi)
        result = asyncio.run(
            run(
                vehicles=args.vehicles,
                speed=args.speed,
                base_port=base,
                telemetry_hz=args.telemetry_hz,
                timeout_s=args.timeout_s,
                executor_workers=args.executor_workers,
                px4_rates=args.px4_rates,
                hold_s=args.hold_s,
                share=share,
            )
        )
    if not args.quiet:
        print_table(result)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
        if not args.quiet:
            print(f"wrote {args.json}")
    return 0 if result.missions_completed == result.vehicles else 1


def _main_px4(args: argparse.Namespace) -> int:
    common = {
        "vehicles": args.px4,
        "speed": args.speed,
        "telemetry_hz": args.telemetry_hz,
        "timeout_s": args.timeout_s,
        "executor_workers": args.executor_workers,
        "hold_s": args.hold_s,
    }
    load = os.getloadavg()
    px4 = asyncio.run(run_px4(**common))
    print(f"== {args.px4} PX4 SITL vehicles (load average at start {load[0]:.2f})")
    print_table(px4)
    sim = asyncio.run(run(base_port=args.base_port or _free_base(args.px4), px4_rates=True, **common))
    print(f"== {args.px4} sim/ vehicles at PX4 stream rates")
    print_table(sim)
    if args.json:
        payload = {"px4": asdict(px4), "sim": asdict(sim), "load_avg_1m_at_start": round(load[0], 2)}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    done = px4.missions_completed == px4.vehicles and sim.missions_completed == sim.vehicles
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
