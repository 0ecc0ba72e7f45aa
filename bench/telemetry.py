"""Live telemetry benchmark: V simulated vehicles -> the service -> C websocket clients (and the MQTT broker).

    python -m bench.telemetry --vehicles 50 --clients 50 --seconds 20 [--batch] [--rate-hz 10] --json PATH

Three processes, so the service's CPU figure is its own: ``python -m sim`` (the vehicles, streaming
MAVLink at 10 Hz), the service (``create_app`` under uvicorn, SKYWARDEN_TELEMETRY_HZ=10, with the MQTT
bridge when a broker is reachable), and this process, which is the client side: C websocket clients
subscribed to everything at ``--rate-hz`` (one message per frame, or ``--batch`` frames) plus one MQTT
subscriber counting what the bridge publishes.

End-to-end latency (``latency_ms_*``) is the client's receive wall time minus the vehicle's send time:
``vehicle_time_unix``, the SYSTEM_TIME the simulator sends right after each position, so the UDP hop, MAVSDK
parsing and the sample's wait for the link's poll are counted. Without it (a vehicle that sends no wall
clock) it falls back to ``received_at`` and ``latency_basis`` says so. ``link_to_client_ms_*`` is the part
from the link publishing the snapshot (``received_at``) to the client. All processes share this machine's
clock. Rates and latencies count the snapshots *sent* inside the window that arrived within 2 s after it.
``machine_load_1m``, ``bench_loop_lag_ms_p99`` and ``service_loop_lag_ms_p99`` show how much other work on
the machine delayed the processes: on a shared 2-core box they explain most of the latency tail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HOME = (39.82, 109.98)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_udp_base(count: int) -> int:
    """A base port with ``count`` consecutive free UDP ports (the vehicles' links)."""
    for base in range(20000, 60000, 500):
        socks = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free UDP ports")


def _broker_up(host: str = "127.0.0.1", port: int = 1883) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# ------------------------------------------------------------------------------------------ service side
async def _measure_lag(lags_ms: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(0.01)
        lags_ms.append((loop.time() - t0 - 0.01) * 1000.0)


def serve(port: int) -> None:
    """Run the service (``create_app``, settings from the environment) with the MQTT bridge until SIGTERM."""
    import uvicorn

    from api.app import create_app
    from api.mqtt_bridge import MqttBridge, MqttBridgeConfig
    from api.settings import Settings

    settings = Settings()
    app = create_app(settings)
    inner = app.router.lifespan_context

    class _NoIncidents:
        async def submit(self, incident: Any) -> int:
            raise RuntimeError("the benchmark takes no incidents")

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        lags_ms: list[float] = []
        lag_task = asyncio.create_task(_measure_lag(lags_ms), name="bench-loop-lag")
        try:
            async with inner(app_) as state:
                runtime = getattr(app_.state, "runtime", None)
                bridge_needed = settings.mqtt_url and getattr(app_.state, "mqtt_bridge", None) is None
                if bridge_needed and runtime is not None:
                    # Until the composition root wires the bridge itself.
                    config = MqttBridgeConfig.from_settings(settings)
                    assert config is not None
                    config = dataclasses.replace(
                        config, client_id=os.environ.get("SKYWARDEN_MQTT_CLIENT_ID", "bench")
                    )
                    async with MqttBridge(config, runtime.hub, _NoIncidents()) as bridge:
                        app_.state.mqtt_bridge = bridge
                        yield state
                else:
                    yield state
        finally:
            lag_task.cancel()
            lag_path = os.environ.get("SKYWARDEN_BENCH_LAG_FILE")
            if lag_path:
                await asyncio.to_thread(Path(lag_path).write_text, json.dumps(lags_ms[-20000:]))

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ------------------------------------------------------------------------------------------- client side
@dataclass
class ClientStats:
    counts: dict[int, int] = field(default_factory=dict)  # vehicle -> snapshots in the window
    first_last: dict[int, tuple[float, float]] = field(default_factory=dict)  # vehicle -> send times

    def hz(self, vehicle_id: int, duration_s: float) -> float:
        """Snapshots per second of one vehicle: from the spacing of their send times (no +-1 count error)."""
        n = self.counts.get(vehicle_id, 0)
        first, last = self.first_last.get(vehicle_id, (0.0, 0.0))
        if n < 3 or last - first < duration_s / 2:
            return n / duration_s
        return (n - 1) / (last - first)

    events: int = 0
    resyncs: int = 0


@dataclass
class Window:
    start: float = 0.0  # wall times; 0 = not measuring yet
    end: float = 0.0

    def open(self, now: float) -> bool:
        return self.start > 0 and self.start <= now and (self.end == 0 or now < self.end)


_SNAPSHOT_HEAD = '{"type":"snapshot","vehicle_id":'
_BATCH_HEAD = '{"type":"batch","messages":['
_GRACE_S = 2.0  # after the window, how long snapshots sent inside it may still arrive


def _snapshot_head(raw: str) -> tuple[int, float, float | None] | None:
    """(vehicle_id, received_at, vehicle_time_unix) read off the head of a snapshot frame without json.loads.

    The client side of the benchmark shares two cores with the service; parsing 25k frames/s in full would
    make it the bottleneck. Relies on ``snapshot_to_dict``'s key order; anything else goes to json.loads.
    """
    if not raw.startswith(_SNAPSHOT_HEAD):
        return None
    head = raw[:200].split(",", 4)
    try:
        vid = int(head[1].partition(":")[2])
        received_at = float(head[2].partition(":")[2])
        vt = head[3].partition(":")[2]
        if not head[2].startswith('"received_at"') or not head[3].startswith('"vehicle_time_unix"'):
            return None
    except (IndexError, ValueError):
        return None
    return vid, received_at, None if vt == "null" else float(vt)


async def _client(
    url: str,
    token: str,
    rate_hz: float,
    batch: bool,
    window: Window,
    stats: ClientStats,
    latencies_ms: list[float],
    link_ms: list[float],
    basis: list[str],
) -> None:
    """One websocket client; counts snapshots *sent* inside the window (received up to the grace after it)."""
    from websockets.asyncio.client import connect

    subscribe = {"type": "subscribe", "vehicles": None, "kinds": None, "rate_hz": rate_hz, "batch": batch}
    counts = stats.counts
    first_last = stats.first_last

    def record(now: float, vid: int, received_at: float, vehicle_time: float | None) -> None:
        sent = received_at if vehicle_time is None else vehicle_time
        if window.start <= sent and (not window.end or sent < window.end):
            if not basis:
                basis.append("received_at" if vehicle_time is None else "vehicle_time_unix")
            latencies_ms.append((now - sent) * 1000.0)
            link_ms.append((now - received_at) * 1000.0)
            counts[vid] = counts.get(vid, 0) + 1
            span = first_last.get(vid)
            first_last[vid] = (sent, sent) if span is None else (span[0], max(span[1], sent))

    async with connect(
        url, additional_headers=_bearer(token), compression=None, max_queue=None, open_timeout=30
    ) as ws:
        await ws.send(json.dumps(subscribe))
        loads = json.loads
        async for raw in ws:
            now = time.time()
            if not window.start:
                continue
            if window.end and now >= window.end + _GRACE_S:
                return
            assert isinstance(raw, str)
            head = _snapshot_head(raw)
            if head is not None:
                record(now, *head)
                continue
            if raw.startswith(_BATCH_HEAD):
                # Cut the frame at each snapshot's head instead of parsing ~60 kB of JSON per frame.
                for piece in raw.split(_SNAPSHOT_HEAD)[1:]:
                    head = _snapshot_head(_SNAPSHOT_HEAD + piece[:200])
                    if head is not None:
                        record(now, *head)
                stats.events += raw.count('{"type":"event",')
                stats.resyncs += raw.count('{"type":"resync",')
                continue
            frame = loads(raw)
            for msg in frame["messages"] if frame["type"] == "batch" else (frame,):
                kind = msg["type"]
                if kind == "snapshot":
                    record(now, msg["vehicle_id"], msg["received_at"], msg.get("vehicle_time_unix"))
                elif kind == "event":
                    stats.events += 1
                elif kind == "resync":
                    stats.resyncs += 1


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _wait_for_vehicles(url: str, token: str, vehicles: int, timeout_s: float) -> float:
    """Until snapshots of ``vehicles`` linked-up vehicles have been seen; returns the seconds it took."""
    from websockets.asyncio.client import connect

    t0 = time.monotonic()
    seen: set[int] = set()
    async with (
        asyncio.timeout(timeout_s),
        connect(url, additional_headers=_bearer(token), compression=None) as ws,
    ):
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "snapshot" and msg["link_up"] and msg["lat"] is not None:
                seen.add(msg["vehicle_id"])
                if len(seen) >= vehicles:
                    return time.monotonic() - t0
    raise RuntimeError("websocket closed while waiting for vehicles")


async def _mqtt_counter(
    port: int, prefix: str, window: Window, counter: list[int], ready: asyncio.Event
) -> None:
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-{prefix}") as client:
        await client.subscribe(f"{prefix}/#")
        ready.set()
        async for _message in client.messages:
            now = time.time()
            if window.open(now):
                counter[0] += 1
            elif window.end and now >= window.end:
                return


async def _loop_lag(window: Window, lags_ms: list[float]) -> None:
    """How late this process's own event loop wakes up: CPU contention on the machine shows up here."""
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(0.01)
        if window.open(time.time()):
            lags_ms.append((loop.time() - t0 - 0.01) * 1000.0)
        elif window.end:
            return


class _CpuMeter:
    """Average cores used and peak RSS of one process over the window."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self._t0 = 0.0
        self._cpu0 = 0.0

    def _cpu(self) -> float:
        # Include children: uvicorn runs in-process, but be safe if a reloader forks.
        t = self.proc.cpu_times()
        return t.user + t.system

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = self._cpu()

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)

    def cores(self) -> float:
        return (self._cpu() - self._cpu0) / max(1e-9, time.monotonic() - self._t0)


def _issue_token(database_url: str) -> str:
    from mission.auth import service as auth
    from mission.auth.roles import Role
    from mission.db import make_engine, session_scope

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            return auth.issue_token(
                session=session, name="bench", role=Role.observer, expires_in_s=3600
            ).token
    finally:
        engine.dispose()


def _seed(database_url: str, vehicles: int, base_port: int) -> None:
    from mission import scenario
    from mission.db import make_engine, session_scope

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            scenario.seed(session=session, vehicle_count=vehicles, base_port=base_port)
    finally:
        engine.dispose()


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode} before it answered")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the service did not answer {url} within {timeout_s} s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pct(values: list[float], q: int) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the service and the sim, measure from this process, stop both; returns the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="skywarden-bench-"))
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    http_port = _free_port()
    udp_base = _free_udp_base(args.vehicles)
    prefix = f"skywarden-bench-{os.getpid()}"
    mqtt = not args.no_mqtt and _broker_up(port=args.mqtt_port)
    env = dict(
        os.environ,
        SKYWARDEN_DATABASE_URL=database_url,
        SKYWARDEN_TELEMETRY_HZ=str(args.vehicle_hz),
        SKYWARDEN_SIM_BASE_PORT=str(udp_base),
        SKYWARDEN_MQTT_TOPIC_PREFIX=prefix,
        SKYWARDEN_MQTT_CLIENT_ID=prefix,
        SKYWARDEN_BENCH_LAG_FILE=str(workdir / "service_lag.json"),
    )
    if mqtt:
        env["SKYWARDEN_MQTT_URL"] = f"mqtt://127.0.0.1:{args.mqtt_port}"
    else:
        env.pop("SKYWARDEN_MQTT_URL", None)
    log_path = workdir / "service.log"
    service: subprocess.Popen[bytes] | None = None
    sim: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "wb") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "bench.telemetry", "--serve", str(http_port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"http://127.0.0.1:{http_port}/api/v1/health", 60, service)
        _seed(database_url, args.vehicles, udp_base)
        token = _issue_token(database_url)
        sim = subprocess.Popen(
            [
                sys.executable, "-m", "sim",
                "--count", str(args.vehicles),
                "--base-port", str(udp_base),
                "--speed", "1",
                "--home", f"{HOME[0]},{HOME[1]}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"ws://127.0.0.1:{http_port}/ws"  # the token goes in a header: the service refuses it in URLs
        figures: dict[str, Any] = asyncio.run(
            _measure(
                args, url=url, token=token, prefix=prefix, mqtt=mqtt, service_pid=service.pid, sim_pid=sim.pid
            )
        )
        _stop(sim)
        _stop(service)
        with contextlib.suppress(OSError, ValueError):
            # The service's own loop lag over its last ~200 s: high values mean it was starved of CPU.
            lags = json.loads((workdir / "service_lag.json").read_text())
            figures["service_loop_lag_ms_p99"] = _pct(lags[-int(args.seconds * 100) :], 99)
        return figures
    finally:
        _stop(sim)
        _stop(service)
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _measure(
    args: argparse.Namespace,
    *,
    url: str,
    token: str,
    prefix: str,
    mqtt: bool,
    service_pid: int,
    sim_pid: int,
) -> dict[str, Any]:
    connect_s = await _wait_for_vehicles(url, token, args.vehicles, timeout_s=120)
    window = Window()
    latencies_ms: list[float] = []
    link_ms: list[float] = []
    basis: list[str] = []
    stats = [ClientStats() for _ in range(args.clients)]
    mqtt_count = [0]
    tasks: list[asyncio.Task[None]] = []
    mqtt_ready = asyncio.Event()
    if mqtt:
        tasks.append(
            asyncio.create_task(_mqtt_counter(args.mqtt_port, prefix, window, mqtt_count, mqtt_ready))
        )
        await asyncio.wait_for(mqtt_ready.wait(), 10)
    for i in range(args.clients):
        tasks.append(
            asyncio.create_task(
                _client(url, token, args.rate_hz, args.batch, window, stats[i], latencies_ms, link_ms, basis),
                name=f"client-{i}",
            )
        )
    lags_ms: list[float] = []
    tasks.append(asyncio.create_task(_loop_lag(window, lags_ms), name="loop-lag"))
    await asyncio.sleep(args.warmup)
    load_before = os.getloadavg()
    meters = {
        "service": _CpuMeter(service_pid),
        "sim": _CpuMeter(sim_pid),
        "bench": _CpuMeter(os.getpid()),
    }
    for m in meters.values():
        m.start()
    window.start = time.time()
    t_end = time.monotonic() + args.seconds
    while time.monotonic() < t_end:
        for m in meters.values():
            m.sample()
        await asyncio.sleep(0.5)
    window.end = time.time()
    cores = {name: round(m.cores(), 3) for name, m in meters.items()}
    await asyncio.sleep(_GRACE_S + 0.2)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    duration_s = window.end - window.start
    per_client_vehicle_hz = [[s.hz(v, duration_s) for v in range(1, args.vehicles + 1)] for s in stats]
    flat = [hz for row in per_client_vehicle_hz for hz in row]
    return {
        "vehicles": args.vehicles,
        "clients": args.clients,
        "seconds": round(duration_s, 2),
        "vehicle_hz": args.vehicle_hz,
        "client_rate_hz": args.rate_hz,
        "client_batch": args.batch,
        "latency_basis": basis[0] if basis else None,
        "latency_ms_p50": _pct(latencies_ms, 50),
        "latency_ms_p90": _pct(latencies_ms, 90),
        "latency_ms_p99": _pct(latencies_ms, 99),
        "latency_ms_max": round(max(latencies_ms), 2) if latencies_ms else None,
        "link_to_client_ms_p50": _pct(link_ms, 50),
        "link_to_client_ms_p99": _pct(link_ms, 99),
        "link_to_client_ms_max": round(max(link_ms), 2) if link_ms else None,
        "snapshots_received": len(latencies_ms),
        "snapshots_per_s": round(len(latencies_ms) / duration_s, 1),
        "min_client_hz": round(min(flat), 2) if flat else 0.0,
        "mean_client_hz": round(statistics.fmean(flat), 2) if flat else 0.0,
        "resyncs": sum(s.resyncs for s in stats),
        "cpu_util": cores["service"],
        "rss_mb": round(meters["service"].peak_rss / 2**20, 1),
        "sim_cpu_util": cores["sim"],
        "bench_client_cpu_util": cores["bench"],
        "machine_cpus": psutil.cpu_count(),
        "machine_load_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine_load_1_5_15m_at_start": [round(x, 2) for x in load_before],
        "bench_loop_lag_ms_p99": _pct(lags_ms, 99),
        "mqtt": mqtt,
        "mqtt_msgs_per_s": round(mqtt_count[0] / duration_s, 1),
        "vehicles_connected_s": round(connect_s, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the clients connect")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="each client's subscription rate")
    parser.add_argument(
        "--batch", action=argparse.BooleanOptionalAction, default=False, help="clients ask for batched frames"
    )
    parser.add_argument("--vehicle-hz", type=float, default=10.0, help="the service's telemetry rate")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--no-mqtt", action="store_true", help="run without the MQTT bridge")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (service log, database)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.vehicles < 1 or args.clients < 1 or args.seconds <= 0:
        parser.error("--vehicles and --clients must be >= 1 and --seconds > 0")
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
