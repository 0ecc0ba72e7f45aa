"""`python -m sim --count N --base-port 14540 --speed K --home LAT,LON[,ALT]`: run until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from sim.config import SimConfig
from sim.fleet import SimFleet

DEFAULT_HOME = (47.397742, 8.545594, 488.0)


def parse_home(text: str) -> tuple[float, float, float]:
    """'LAT,LON[,ALT_AMSL]' to a tuple; ALT defaults to 0."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"--home must be LAT,LON or LAT,LON,ALT_AMSL, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--home has a non-number in {text!r}") from None
    lat, lon = values[0], values[1]
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"--home lat/lon out of range in {text!r}")
    return lat, lon, values[2] if len(values) == 3 else 0.0


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m sim", description="PX4-like MAVLink multicopter fleet")
    parser.add_argument("--count", type=int, default=1, help="number of vehicles (sysid 1..N)")
    parser.add_argument("--base-port", type=int, default=14540, help="vehicle i sends to HOST:BASE_PORT+i")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    parser.add_argument(
        "--home",
        type=parse_home,
        action="append",
        default=None,
        help="LAT,LON[,ALT_AMSL]; once for the whole fleet, or once per vehicle (e.g. each at its dock)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="where the vehicles send MAVLink")
    parser.add_argument("--seed", type=int, default=None, help="random seed for packet loss")
    return parser


async def run_fleet(
    *,
    count: int,
    base_port: int = 14540,
    speed: float = 1.0,
    home: tuple[float, float, float] = DEFAULT_HOME,
    host: str = "127.0.0.1",
    config: SimConfig | None = None,
    stop: asyncio.Event | None = None,
    homes: Sequence[tuple[float, float, float]] | None = None,
) -> None:
    """Run a fleet until `stop` is set or SIGINT/SIGTERM arrives; prints one line per vehicle when up."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: the caller stops us through `stop`
    try:
        async with SimFleet(
            count=count, base_port=base_port, speed=speed, home=home, host=host, config=config, homes=homes
        ) as fleet:
            for i, v in enumerate(fleet.vehicles):
                at = homes[i] if homes else home
                print(
                    f"sim vehicle sysid={v.sysid} udp {host}:{v.port} from local port {v.local_port} "
                    f"home={at[0]:.7f},{at[1]:.7f},{at[2]:.1f} speed={speed:g}",
                    flush=True,
                )
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    given = args.home or [DEFAULT_HOME]
    if len(given) not in (1, args.count):
        parser.error(f"--home given {len(given)} times for {args.count} vehicles: once, or once per vehicle")
    try:
        config = SimConfig(random_seed=args.seed)
        asyncio.run(
            run_fleet(
                count=args.count,
                base_port=args.base_port,
                speed=args.speed,
                home=given[0],
                homes=given if len(given) > 1 else None,
                host=args.host,
                config=config,
            )
        )
    except (ValueError, OSError) as exc:
        print(f"sim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
