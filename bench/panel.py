"""Panel load and map frame rate with N simulated vehicles, in headless Chromium (Playwright).

    python -m bench.panel --vehicles 50 --json bench/results/panel-50.json

Starts ``skywarden serve --sim N`` (video off) on loopback, signs in once, then:

- first meaningful paint: a fresh load of the panel with the session cookie, from navigation start
  (``performance.timeOrigin``) to the first frame painted after the map shows every vehicle's marker and
  the zones (a requestAnimationFrame probe installed before the page's own scripts run); median of
  ``--loads`` loads, each also reporting the browser's first-contentful-paint entry;
- map frame rate while all N vehicles move: every vehicle takes off and orbits its dock (through the
  command API, as a pilot would), then frames are counted with requestAnimationFrame for ``--seconds``,
  in one-second windows; the lowest window and the mean are reported, with the long tasks
  (PerformanceObserver "longtask") seen meanwhile.

Writes JSON with: vehicles, moving, first_meaningful_paint_s, first_contentful_paint_s, map_fps_min,
map_fps_mean, long_tasks, machine_load_1m. Goals (issue 15): paint < 1.5 s and fps > 30 with 50 vehicles.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def _serve(workdir: Path, vehicles: int, speed: float) -> tuple[subprocess.Popen[bytes], Service]:
    port = _free_tcp_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKYWARDEN_DATABASE_URL": f"sqlite:///{workdir / 'skywarden.db'}",
        "SKYWARDEN_SIM_SPEED": str(speed),
        "SKYWARDEN_SIM_BASE_PORT": str(_free_udp_base(vehicles)),
        "SKYWARDEN_TILE_URL": "",
        "SKYWARDEN_VIDEO_ENABLED": "false",
    }
    log = (workdir / "serve.log").open("wb")
    argv = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--sim", str(vehicles)]
    argv += ["--demo-login", "--log-level", "warning"]
    proc = subprocess.Popen(
        argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    svc = Service(url=f"http://127.0.0.1:{port}", passwords={"admin": "admin"})
    _wait_ready(svc, proc, workdir, timeout_s=90)
    return proc, svc


def _call(svc: Service, method: str, path: str, body: object | None, token: str) -> tuple[int, object]:
    """One REST call with a long timeout (a command returns once the vehicle has taken it)."""
    req = urllib.request.Request(
        f"{svc.url}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=90) as res:
            raw = res.read()
            return res.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (TimeoutError, urllib.error.URLError) as err:
        return 0, str(err)


def _fly_all(svc: Service, token: str, vehicles: list[dict]) -> None:  # type: ignore[type-arg]
    """Every vehicle takes off and orbits a point next to its dock (through the command API)."""

    def one(v: dict) -> None:  # type: ignore[type-arg]
        vid = v["id"]
        _call(svc, "POST", f"/vehicles/{vid}/control", None, token)
        status, body = _call(
            svc, "POST", f"/vehicles/{vid}/commands", {"command": "takeoff", "params": {"alt_m": 30}}, token
        )
        if status != 200:
            print(f"  takeoff {vid}: {status} {body}", file=sys.stderr)

    with ThreadPoolExecutor(1) as pool:  # one pilot at a time (SQLite takes one writer)
        list(pool.map(one, vehicles))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, sup = svc.api("GET", "/flights/supervision", token=token)
        if status == 200 and isinstance(sup, list) and sum(1 for s in sup if s["in_air"]) >= len(vehicles):
            break
        time.sleep(1)

    def orbit(v: dict) -> None:  # type: ignore[type-arg]
        k = v["id"]
        lat = v["home_lat"] + 0.0012 * math.cos(k)
        lon = v["home_lon"] + 0.0015 * math.sin(k)
        params = {
            "lat": lat,
            "lon": lon,
            "alt_m": 30 + (k % 5) * 5,
            "radius_m": 80,
            "speed_m_s": 8,
            "clockwise": k % 2 == 0,
        }
        status, body = _call(
            svc, "POST", f"/vehicles/{k}/commands", {"command": "orbit", "params": params}, token
        )
        if status != 200:
            print(f"  orbit {k}: {status} {body}", file=sys.stderr)

    with ThreadPoolExecutor(1) as pool:  # one pilot at a time (SQLite takes one writer)
        list(pool.map(orbit, vehicles))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vehicles", type=int, default=50)
    ap.add_argument("--speed", type=float, default=5.0, help="sim speed factor")
    ap.add_argument("--loads", type=int, default=3, help="page loads for the paint figure")
    ap.add_argument("--seconds", type=int, default=10, help="seconds of frame counting")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="bench-panel-"))
    proc, svc = _serve(workdir, args.vehicles, args.speed)
    result: dict[str, object] = {"vehicles": args.vehicles}
    try:
        token = svc.login("admin")
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

            status, vehicles = svc.api("GET", "/vehicles?limit=200", token=token)
            assert status == 200 and isinstance(vehicles, dict)
            _fly_all(svc, token, vehicles["items"])
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
