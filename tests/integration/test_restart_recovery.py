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
from tests.support.px4 import start_fleet
from tests.support.vehicles import PX4, SIM, cruise_m_s, speed_for, wall_s

pytestmark = pytest.mark.timeout(max(90.0, wall_s(speed_for(PX4), 500.0, slack_s=90.0)))

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


def _route(scale: float) -> dict[str, Any]:
    """ROUTE shrunk (or grown) by ``scale`` about home, so a slower vehicle flies a shorter one."""
    lat0, lon0 = HOME
    points = [[lon0 + (lon - lon0) * scale, lat0 + (lat - lat0) * scale] for lon, lat in ROUTE["coordinates"]]
    return {"type": "LineString", "coordinates": points}


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.http_port = _free_tcp_port()
        self.sim_port = free_udp_ports(1)
        self.fleet_file = tmp_path / "fleet.json"
        self.write_fleet(port=self.sim_port, sysid=1)
        self.px4: Any = None
        self.env = {
            **os.environ,
            "SKYWARDEN_FLEET_FILE": str(self.fleet_file),
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

    def write_fleet(self, *, port: int, sysid: int) -> None:
        vehicle = {
            "name": "drone-1",
            "connection_url": f"udpin://0.0.0.0:{port}",
            "sysid": sysid,
            "home_lat": HOME[0],
            "home_lon": HOME[1],
            "home_alt_m": 1100.0,
        }
        self.fleet_file.write_text(json.dumps({"vehicles": [vehicle]}))

    async def start_vehicle(self, kind: str) -> None:
        """sim/ as its own process, or a fresh PX4 SITL at home (stopped by ``stop_all``)."""
        if kind == SIM:
            self.start_sim()
            return
        self.px4 = await start_fleet(
            1, workdir=self.log_dir / "px4", homes=[(HOME[0], HOME[1], 1100.0)], speed=speed_for(PX4)
        )
        (px4,) = self.px4.instances
        self.write_fleet(port=px4.port, sysid=px4.sysid)

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

    async def stop_vehicles(self) -> None:
        if self.px4 is not None:
            await self.px4.stop()

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


async def test_kill_9_mid_mission_then_restart_finishes_and_records_once(tmp_path, vehicle_kind):
    """``kill -9`` of ``skywarden serve`` mid-mission, on sim/ and on PX4: the restart picks the flight up."""
    procs = Processes(tmp_path)
    speed = speed_for(vehicle_kind, SPEED)
    # PX4 flies 5 m/s at 4x, sim/ 10 m/s at 20x: a shorter route keeps the PX4 run small, still mid-flight
    # when the service is back.
    scale = 1.0 if vehicle_kind == SIM else 0.3
    length_m = 2200.0 * scale
    try:
        await procs.start_vehicle(vehicle_kind)
        token = procs.token("pilot")
        procs.start_service()
        base = f"http://127.0.0.1:{procs.http_port}/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            pilot = {"Authorization": f"Bearer {token}"}

            async def healthy() -> bool:
                return (await http.get("/health")).status_code == 200

            await _until(healthy, 30, "the service to start", procs)
            plan = {"kind": "route", "geometry": _route(scale), "params": {"alt_m": 40}}
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

            flight_s = 40 / 1.5 + length_m / cruise_m_s(vehicle_kind) + 40 / 0.7
            await _until(progressed, wall_s(speed, flight_s / 2), "the vehicle to fly a few items", procs)
            procs.kill_service()  # mid-mission, no shutdown of any kind
            procs.start_service()
            await _until(healthy, 30, "the service to restart", procs)
            back = (await http.get(f"/missions/{mid}", headers=pilot)).json()
            assert back["state"] == "active", back  # its true state: the vehicle is still flying it

            async def completed() -> dict | None:
                m = (await http.get(f"/missions/{mid}", headers=pilot)).json()
                return m if m["state"] == "completed" else None

            mission = await _until(
                completed,
                wall_s(speed, flight_s, slack_s=30),
                "the mission to complete after the restart",
                procs,
            )
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
        await procs.stop_vehicles()
