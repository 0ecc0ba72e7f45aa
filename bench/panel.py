"""Panel load and map frame rate with N simulated vehicles, in headless Chromium (Playwright).

    python -m bench.panel --vehicles 50 --json bench/results/panel-50.json

Starts ``skywarden serve`` (video off, SQLite) on loopback with the demo district's N drones, flown by an
in-process sim fleet (``sim.SimFleet``) the benchmark steers directly, signs in once, then:

- first meaningful paint: a fresh load of the panel with the session cookie, from navigation start
  (``performance.timeOrigin``) to the first frame painted after the map shows every vehicle's marker and
  the zones (a requestAnimationFrame probe installed before the page's own scripts run); median of
  ``--loads`` loads, each also reporting the browser's first-contentful-paint entry;
- map frame rate while all N vehicles move: every simulated vehicle is armed, climbs and orbits near its dock
  (set on the sim's autopilot, so the service only watches them over MAVLink: commanding 50 drones through
  the API takes minutes on this machine), then frames are counted with requestAnimationFrame for
  ``--seconds``, in one-second windows; the lowest window and the mean are reported, with the long tasks
  (PerformanceObserver "longtask") seen meanwhile.

Writes JSON with: vehicles, moving, first_meaningful_paint_s, first_contentful_paint_s, map_fps_min,
map_fps_mean, long_tasks, machine_load_1m. Goals (issue 15): paint < 1.5 s and fps > 30 with 50 vehicles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sim import SimFleet
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    Service,
    _free_tcp_port,
    _free_udp_base,
    _wait_ready,
)

PROBE = """
(() => {
  const want = %d;
  window.__panelBench = { fmp: null };
  const check = () => {
    const markers = document.querySelectorAll('.veh-icon').length;
    const zones = document.querySelectorAll('.zone-label').length;
    if (markers >= want && zones > 0) {
      requestAnimationFrame(() => { window.__panelBench.fmp = performance.now(); });
      return;
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""

FPS = """async (seconds) => {
  const windows = [];
  let longTasks = 0;
  const obs = new PerformanceObserver((list) => { longTasks += list.getEntries().length; });
  try { obs.observe({ type: 'longtask', buffered: false }); } catch (e) { }
  for (let w = 0; w < seconds; w++) {
    const frames = await new Promise((resolve) => {
      let n = 0;
      const start = performance.now();
      const tick = (now) => {
        n += 1;
        if (now - start < 1000) requestAnimationFrame(tick);
        else resolve((n * 1000) / (now - start));
      };
      requestAnimationFrame(tick);
    });
    windows.push(frames);
  }
  obs.disconnect();
  return { windows, longTasks };
}"""

MOVING = """() => [...document.querySelectorAll('.veh-icon')].filter((e) => e.dataset.inAir === '1').length"""
POSITIONS = """() => Object.fromEntries([...document.querySelectorAll('.veh-icon')]
  .map((e) => [e.dataset.vehicleId, e.dataset.lat + ',' + e.dataset.lon]))"""


def _serve(workdir: Path, vehicles: int, speed: float) -> tuple[subprocess.Popen[bytes], Service, int]:
    """The service on a seeded SQLite database; the vehicles' first UDP port is returned for the sim."""
    from bench.telemetry import _seed

    port = _free_tcp_port()
    udp_base = _free_udp_base(vehicles)
    db_url = f"sqlite:///{workdir / 'skywarden.db'}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKYWARDEN_DATABASE_URL": db_url,
        "SKYWARDEN_SIM_SPEED": str(speed),
        "SKYWARDEN_SIM_BASE_PORT": str(udp_base),
        "SKYWARDEN_TILE_URL": "",
        "SKYWARDEN_VIDEO_ENABLED": "false",
    }
    subprocess.run([sys.executable, "-m", "api.cli", "db", "upgrade"], cwd=workdir, env=env, check=True)
    _seed(db_url, vehicles, udp_base)
    log = (workdir / "serve.log").open("wb")
    argv = [
        sys.executable,
        "-m",
        "api.cli",
        "serve",
        "--port",
        str(port),
        "--demo-login",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(
        argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    svc = Service(url=f"http://127.0.0.1:{port}", passwords={"admin": "admin"})
    _wait_ready(svc, proc, workdir, timeout_s=90)
    return proc, svc, udp_base


class SimThread:
    """A sim fleet on its own asyncio loop in a thread; ``call`` runs a function on that loop."""

    def __init__(self, *, count: int, base_port: int, speed: float) -> None:
        from mission import scenario

        homes = [
            (v.home_lat, v.home_lon, v.home_alt_m)
            for v in scenario.demo_vehicles(count=count, base_port=base_port)
        ]
        self.loop = asyncio.new_event_loop()
        self.fleet = SimFleet(count=count, base_port=base_port, speed=speed, homes=homes)
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fleet.start(), self.loop).result(timeout=60)

    def call(self, fn: Callable[[], object]) -> object:
        async def run() -> object:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fleet.close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _fly_all(sim: SimThread) -> None:
    """Every vehicle armed, climbing to 30-50 m, then orbiting a point next to its dock at 8 m/s."""

    def takeoff() -> None:
        for k, v in enumerate(sim.fleet.vehicles):
            ap = v.autopilot
            ap.arm(force=True)
            ap.takeoff(alt_amsl_m=ap.home_amsl_m + 30 + (k % 5) * 5)

    def orbit() -> int:
        flying = 0
        for k, v in enumerate(sim.fleet.vehicles):
            ap = v.autopilot
            lat, lon = ap.latlon()
            out = ap.orbit(
                lat=lat + 0.0008 * math.cos(k),
                lon=lon + 0.001 * math.sin(k),
                amsl_m=None,
                radius_m=80.0 if k % 2 else -80.0,
                speed_m_s=8.0,
            )
            flying += out.result == 0
        return flying

    sim.call(takeoff)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sim.call(lambda: all(v.autopilot.alt_rel_m > 20 for v in sim.fleet.vehicles)):
            break
        time.sleep(0.5)
    flying = sim.call(orbit)
    print(f"  {flying} vehicles orbiting")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vehicles", type=int, default=50)
    ap.add_argument("--speed", type=float, default=5.0, help="sim speed factor")
    ap.add_argument("--loads", type=int, default=3, help="page loads for the paint figure")
    ap.add_argument("--seconds", type=int, default=10, help="seconds of frame counting")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the service and the browser on SIGTERM as on Ctrl-C
    return _run(args, Path(tempfile.mkdtemp(prefix="bench-panel-")))


def _run(args: argparse.Namespace, workdir: Path) -> int:
    from playwright.sync_api import sync_playwright

    proc, svc, udp_base = _serve(workdir, args.vehicles, args.speed)
    sim = SimThread(count=args.vehicles, base_port=udp_base, speed=args.speed)
    result: dict[str, object] = {"vehicles": args.vehicles}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.add_init_script(PROBE % args.vehicles)
            page = context.new_page()
            page.goto(svc.url + "/")
            page.fill("#login-user", "admin")
            page.fill("#login-pass", "admin")
            page.click("#login-submit")
            page.wait_for_function(
                "() => window.__panelBench && window.__panelBench.fmp !== null", timeout=60_000
            )
            paints, fcps = [], []
            for _ in range(args.loads):
                page.reload()
                page.wait_for_function(
                    "() => window.__panelBench && window.__panelBench.fmp !== null", timeout=60_000
                )
                paints.append(page.evaluate("window.__panelBench.fmp") / 1000.0)
                fcp = page.evaluate(
                    "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"
                )
                if fcp is not None:
                    fcps.append(fcp / 1000.0)
            result["first_meaningful_paint_s"] = round(statistics.median(paints), 3)
            result["first_contentful_paint_s"] = round(statistics.median(fcps), 3) if fcps else None
            loads = [round(p, 3) for p in paints]
            print(f"first meaningful paint: {result['first_meaningful_paint_s']} s (loads: {loads})")

            # The service brings home a drone it finds flying with nothing supervising it (once per drone):
            # let it, then send them all up and around again.
            _fly_all(sim)
            time.sleep(6)
            _fly_all(sim)
            page.wait_for_function(f"() => ({MOVING})() >= {args.vehicles}", timeout=120_000)
            before = page.evaluate(POSITIONS)
            fps = page.evaluate(FPS, args.seconds)
            after = page.evaluate(POSITIONS)
            moved = sum(1 for k, v in after.items() if before.get(k) != v)
            result["moving"] = moved
            result["map_fps_min"] = round(min(fps["windows"]), 1)
            result["map_fps_mean"] = round(statistics.mean(fps["windows"]), 1)
            result["long_tasks"] = fps["longTasks"]
            print(
                f"map while {moved} vehicles move: {result['map_fps_mean']} fps mean,"
                f" {result['map_fps_min']} fps in the slowest second, {fps['longTasks']} long tasks"
            )
            browser.close()
    finally:
        result["machine_load_1m"] = round(os.getloadavg()[0], 2)
        sim.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    print(json.dumps(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
