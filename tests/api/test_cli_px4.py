"""``skywarden serve --px4 N``: real PX4 SITL vehicles started, registered, served and stopped with it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.sync.client import connect as ws_connect

from sim.px4sitl import missing_reason
from tests.api.test_cli import ROOT, _free_port, cli_env

__all__ = ["cli_env"]  # the fixture, shared with test_cli

pytestmark = [
    pytest.mark.px4,
    pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
]


def _px4_processes(root: psutil.Process) -> list[psutil.Process]:
    out = []
    for child in root.children(recursive=True):
        try:
            if any("px4" in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.timeout(150)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_serve_px4_serves_a_real_px4_and_stops_it(
    cli_env: dict[str, str], tmp_path: Path, stop: signal.Signals
) -> None:
    port = _free_port()
    env = {**cli_env, "SKYWARDEN_REGISTRY_POLL_S": "0.5", "SKYWARDEN_SIM_SPEED": "2", "TMPDIR": str(tmp_path)}
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--px4", "1", "--log-level", "info"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    px4: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, Path(log.name).read_text()
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.3)
        output = Path(log.name).read_text()
        started = re.search(r"PX4 SITL instance (\d+): sysid (\d+) on (\S+),", output)
        assert started, output
        index, sysid, url = int(started[1]), int(started[2]), started[3].rstrip(",")
        assert sysid == index + 1 and url == f"udpin://0.0.0.0:{14540 + index}"
        px4 = _px4_processes(psutil.Process(proc.pid))
        assert px4, f"no PX4 process under the service: {output}"
        password = re.search(r"created user 'admin' with password: (\S+)", output)
        assert password, output
        login = httpx.post(f"{base}/api/v1/auth/login", json={"username": "admin", "password": password[1]})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        vehicles = httpx.get(f"{base}/api/v1/vehicles", headers=headers).json()["items"]
        mine = [v for v in vehicles if v["sysid"] == sysid]
        assert [v["connection_url"] for v in mine] == [url], vehicles
        assert mine[0]["dock"] == "Workstation Riverside"  # the first demo dock
        # End to end: the PX4 streams telemetry to the service's websocket, from its dock.
        deadline = time.monotonic() + 60
        snapshot: dict[str, object] = {}
        with ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
            ws.send(json.dumps({"type": "auth", "token": login.json()["token"]}))
            while True:
                assert time.monotonic() < deadline, f"no PX4 telemetry on /ws; last: {snapshot}"
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "snapshot" and message["vehicle_id"] == mine[0]["id"]:
                    snapshot = message
                    if message.get("lat") is not None:
                        break
        assert abs(float(snapshot["lat"]) - mine[0]["home_lat"]) < 1e-4, snapshot  # type: ignore[arg-type]
        assert abs(float(snapshot["lon"]) - mine[0]["home_lon"]) < 1e-4, snapshot  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, Path(log.name).read_text()
    _gone, alive = psutil.wait_procs(px4, timeout=15)
    assert alive == [], f"PX4 outlived the service: {[p.cmdline() for p in alive]}"
