"""kill -9 the service mid-mission, start it again: the mission finishes and is recorded completed once.

Everything runs as separate processes, as in production: the simulator (`python -m sim`) and the service
(`skywarden serve`, its vehicle from a fleet file) on a SQLite file; the test talks to it over HTTP only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_missions_support import HOME, free_udp_ports

pytestmark = pytest.mark.timeout(90)

SPEED = 20.0
# ~2.2 km with the way home: the vehicle is still flying its mission when the restarted service returns.
ROUTE = {
    "type": "LineString",
    "coordinates": [[109.9810, 39.8200], [109.9860, 39.8230], [109.9900, 39.8260], [109.9830, 39.8240]],
}


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _skywarden() -> list[str]:
    exe = shutil.which("skywarden", path=str(Path(sys.executable).parent))
    assert exe, "the skywarden console script is not installed in the venv"
    return [exe]


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.http_port = _free_tcp_port()
        self.sim_port = free_udp_ports(1)
        fleet = tmp_path / "fleet.json"
        vehicle = {
            "name": "drone-1",
            "connection_url": f"udpin://0.0.0.0:{self.sim_port}",
            "sysid": 1,
            "home_lat": HOME[0],
            "home_lon": HOME[1],
            "home_alt_m": 1100.0,
        }
        fleet.write_text(json.dumps({"vehicles": [vehicle]}))
        self.env = {
            **os.environ,
            "SKYWARDEN_FLEET_FILE": str(fleet),
            "SKYWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'skywarden.db'}",
            "SKYWARDEN_REGISTRY_POLL_S": "0.5",
            "SKYWARDEN_TELEMETRY_HZ": "10",
        }
        self.log_dir = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.files: list[Any] = []
        self.service: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        out = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop_all
        self.files.append(out)
        proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_sim(self) -> None:
        home = f"{HOME[0]},{HOME[1]},1100"
        argv = [sys.executable, "-m", "sim", "--count", "1", "--base-port", str(self.sim_port)]
        self.spawn([*argv, "--speed", str(SPEED), "--home", home], "sim")

    def token(self, role: str) -> str:
        out = subprocess.run(
            [*_skywarden(), "token", "create", "--role", role, "--name", f"{role}-1"],
            env=self.env,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return out.stdout.decode().strip().splitlines()[-1]

    def start_service(self) -> None:
        self.starts += 1
        argv = [*_skywarden(), "serve", "--port", str(self.http_port), "--log-level", "warning"]
        self.service = self.spawn(argv, f"service-{self.starts}")

    def kill_service(self) -> None:
        assert self.service is not None
        self.service.send_signal(signal.SIGKILL)
        self.service.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for out in self.files:
            out.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.log_dir.glob("*.log")
        )


async def _until(fn, timeout_s: float, what: str, procs: Processes):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
            if last:
                return last
        except httpx.TransportError as err:
            last = err
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{procs.logs()}")


async def test_kill_9_mid_mission_then_restart_finishes_and_records_once(tmp_path):
    procs = Processes(tmp_path)
    try:
        procs.start_sim()
        token = procs.token("pilot")
        procs.start_service()
        base = f"http://127.0.0.1:{procs.http_port}/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            pilot = {"Authorization": f"Bearer {token}"}

            async def healthy() -> bool:
                return (await http.get("/health")).status_code == 200

            await _until(healthy, 30, "the service to start", procs)
            plan = {"kind": "route", "geometry": ROUTE, "params": {"alt_m": 40}}
            r = await http.post(
                "/missions", json={"name": "night route", "vehicle_id": 1, "plan": plan}, headers=pilot
            )
            assert r.status_code == 201, r.text
            mid = r.json()["id"]
            assert (await http.post(f"/missions/{mid}/validate", headers=pilot)).status_code == 200

            async def launched() -> bool:
                r = await http.post(f"/missions/{mid}/launch", headers=pilot)
                if r.status_code == 409 and r.json()["error"]["code"] == "vehicle_unavailable":
                    return False  # not connected yet
                assert r.status_code == 200, r.text
                return r.json()["state"] == "active"

            await _until(launched, 30, "the launch", procs)

            async def progressed() -> bool:
                m = (await http.get(f"/missions/{mid}", headers=pilot)).json()
                return m["progress_current"] >= 3

            await _until(progressed, 20, "the vehicle to fly a few items", procs)
            procs.kill_service()  # mid-mission, no shutdown of any kind
            procs.start_service()
            await _until(healthy, 30, "the service to restart", procs)
            back = (await http.get(f"/missions/{mid}", headers=pilot)).json()
            assert back["state"] == "active", back  # its true state: the vehicle is still flying it

            async def completed() -> dict | None:
                m = (await http.get(f"/missions/{mid}", headers=pilot)).json()
                return m if m["state"] == "completed" else None

            mission = await _until(completed, 45, "the mission to complete after the restart", procs)
            events = (await http.get(f"/missions/{mid}/events", headers=pilot)).json()["items"]
            to_states = [e["to_state"] for e in events]
            assert to_states.count("completed") == 1
            assert to_states.count("active") == 1  # the restart did not start it again
            assert to_states[-2:] == ["returning", "completed"]
            assert mission["progress_total"] == len(mission["items"])
            await asyncio.sleep(1.5)  # nothing more arrives later
            again = (await http.get(f"/missions/{mid}/events", headers=pilot)).json()["items"]
            assert len(again) == len(events)
    finally:
        procs.stop_all()
