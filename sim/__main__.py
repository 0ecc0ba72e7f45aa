"""`python -m sim --count N --base-port P --speed K --home LAT,LON[,ALT] [--camera]`: run until stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sim.camera import CameraConfig, load_world
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
    parser.add_argument(
        "--count",
        type=int,
        default=1,
        help="number of vehicles (sysid 1..N, skipping 245; past 253 they repeat)",
    )
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
    parser.add_argument(
        "--gcs-base-port",
        type=int,
        action="append",
        default=[],
        metavar="P",
        help="another ground station: vehicle i also streams to HOST:P+i (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for packet loss")
    cam = parser.add_argument_group(
        "camera", "a MAVLink camera + gimbal per vehicle, streaming RTSP (sim/camera)"
    )
    cam.add_argument("--camera", action="store_true", help="give every vehicle a camera")
    cam.add_argument(
        "--camera-size", type=parse_size, default=(640, 360), help="WIDTHxHEIGHT (default 640x360)"
    )
    cam.add_argument("--camera-fps", type=float, default=15.0, help="frames per second (default 15)")
    cam.add_argument("--camera-codec", choices=("h264", "h265"), default="h264")
    cam.add_argument("--camera-bitrate", type=int, default=800_000, help="bits per second (default 800000)")
    cam.add_argument(
        "--camera-host", default="127.0.0.1", help="address the RTSP servers listen on and announce"
    )
    cam.add_argument(
        "--camera-port-base", type=int, default=None, help="vehicle i serves RTSP on BASE+i (default: any)"
    )
    cam.add_argument(
        "--camera-world", type=Path, default=None, help="GeoJSON of zones, roads and markers to draw"
    )
    return parser


def parse_size(text: str) -> tuple[int, int]:
    """'WIDTHxHEIGHT' to a tuple."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--camera-size must be WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def camera_config(args: argparse.Namespace) -> CameraConfig | None:
    """The camera of every vehicle from the CLI flags, or None without --camera."""
    if not args.camera:
        return None
    return CameraConfig(
        width=args.camera_size[0],
        height=args.camera_size[1],
        fps=args.camera_fps,
        codec=args.camera_codec,
        bitrate_bps=args.camera_bitrate,
        rtsp_host=args.camera_host,
        rtsp_port_base=args.camera_port_base,
        world=load_world(args.camera_world) if args.camera_world else None,
    )


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
                    f"home={at[0]:.7f},{at[1]:.7f},{at[2]:.1f} speed={speed:g}"
                    + (f" camera={v.camera.url}" if v.camera is not None else ""),
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
        config = SimConfig(
            random_seed=args.seed,
            camera=camera_config(args),
            extra_gcs_base_ports=tuple(args.gcs_base_port),
        )
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
