"""kill -9 of ``skywarden serve`` while it records: after the restart the same recording goes on as new
segments, the segment it was writing is hashed and chained in (marked recovered), the hash chain verifies,
and the time lost is in the manifest as a gap and an interruption, not hidden."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim import SimConfig, SimFleet
from tests.video.support import HOME, TEST_CAMERA, free_tcp_port, free_udp_base

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


class Serve:
    """``skywarden serve`` as its own process, on a SQLite file, its vehicle from a fleet file."""

    def __init__(self, tmp_path: Path, *, sim_port: int) -> None:
        self.port = free_tcp_port()
        self.tmp_path = tmp_path
        fleet = tmp_path / "fleet.json"
        vehicle = {
            "name": "drone-1",
            "connection_url": f"udpin://0.0.0.0:{sim_port}",
            "sysid": 1,
            "home_lat": HOME[0],
            "home_lon": HOME[1],
            "home_alt_m": HOME[2],
        }
        fleet.write_text(json.dumps({"vehicles": [vehicle]}))
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SKYWARDEN_FLEET_FILE": str(fleet),
            "SKYWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'skywarden.db'}",
            "SKYWARDEN_VIDEO_STORAGE_DIR": str(tmp_path / "video"),
            "SKYWARDEN_VIDEO_SEGMENT_S": "2",
            "SKYWARDEN_VIDEO_OPEN_TIMEOUT_S": "20",
            "SKYWARDEN_REGISTRY_POLL_S": "0.5",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.tmp_path / f"service-{self.starts}.log", "wb")  # noqa: SIM115 - the child owns it
        argv = [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill_9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def token(self, role: str) -> str:
        cli = [sys.executable, "-m", "api.cli", "token", "create", "--role", role, "--name", f"{role}-1"]
        out = subprocess.run(cli, env=self.env, capture_output=True, check=True, timeout=60)
        return out.stdout.decode().strip().splitlines()[-1]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp_path.glob("service-*.log"))
        )


async def _until(check: Callable[[], Awaitable[Any]], *, timeout_s: float, what: str, serve: Serve) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
            if last:
                return last
        except httpx.TransportError as err:  # the service is (re)starting
            last = err
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})\n{serve.logs()}")


async def test_kill_9_while_recording_then_the_recording_resumes_and_verifies(tmp_path) -> None:
    base = free_udp_base(1)
    config = SimConfig(camera=TEST_CAMERA)
    serve = Serve(tmp_path, sim_port=base)
    storage = tmp_path / "video"
    async with SimFleet(count=1, base_port=base, speed=10.0, homes=[HOME], config=config):
        serve.start()
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{serve.port}/api/v1", timeout=30
            ) as http:

                async def get(path: str, token: str) -> Any:
                    r = await http.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})
                    return r.json() if r.status_code == 200 else None

                await _until(lambda: get("/health", ""), timeout_s=60, what="the service", serve=serve)
                pilot, dispatcher = serve.token("pilot"), serve.token("dispatcher")
                auth_p = {"Authorization": f"Bearer {pilot}"}
                auth_d = {"Authorization": f"Bearer {dispatcher}"}
                vehicles = await _until(
                    lambda: get("/vehicles", dispatcher), timeout_s=30, what="the vehicle", serve=serve
                )
                vid = (vehicles["items"] if isinstance(vehicles, dict) else vehicles)[0]["id"]
                await _until(
                    lambda: _camera_found(get, vid, dispatcher), timeout_s=40, what="the camera", serve=serve
                )
                r = await http.post(
                    "/incidents",
                    json={"lat": 39.8215, "lon": 109.9812, "kind": "burglary", "auto_dispatch": False},
                    headers=auth_d,
                )
                assert r.status_code == 201, r.text
                iid = r.json()["id"]
                r = await http.post(
                    f"/video/vehicles/{vid}/recordings", json={"incident_id": iid}, headers=auth_p
                )
                assert r.status_code == 201, r.text
                rid = r.json()["id"]
                directory = storage / f"vehicle-{vid}" / f"recording-{rid}"

                async def stored() -> int:
                    body = await get(f"/video/recordings/{rid}", dispatcher)
                    return len(body["segments"]) if body else 0

                await _until(
                    lambda: _at_least(stored, 2), timeout_s=60, what="two stored segments", serve=serve
                )
                # kill it while it writes a third segment: that file is on disk, never closed nor hashed
                before = await stored()
                writing = directory / f"seg-{before + 1:05d}.mp4"
                await _until(
                    lambda: _true(writing.is_file() and writing.stat().st_size > 2000),
                    timeout_s=30,
                    what="a segment being written",
                    serve=serve,
                )
                serve.kill_9()
                killed_at = time.time()
                on_disk = len(list(directory.glob("seg-*.mp4")))
                with sqlite3.connect(tmp_path / "skywarden.db") as db:  # what the dead service had stored
                    (stored_at_kill,) = db.execute(
                        "select count(*) from video_segments where recording_id = ?", (rid,)
                    ).fetchone()
                assert before <= stored_at_kill < on_disk
                serve.start()
                await _until(lambda: get("/health", ""), timeout_s=60, what="the restart", serve=serve)
                await _until(
                    lambda: _at_least(stored, on_disk + 2),
                    timeout_s=90,
                    what="segments after the restart",
                    serve=serve,
                )
                r = await http.post(f"/video/recordings/{rid}/stop", headers=auth_p)
                assert r.status_code == 200, r.text
                detail = await get(f"/video/recordings/{rid}", dispatcher)
                rec, segs = detail["recording"], detail["segments"]
                assert rec["state"] == "stopped" and rec["segment_count"] == len(segs), rec
                assert [s["seq"] for s in segs] == list(range(1, len(segs) + 1))
                # the segment being written at the kill is in, as it was on disk
                assert any(s["file"].endswith(f"seg-{before + 1:05d}.mp4") for s in segs)
                # the first segment written after the restart says how much is missing, and it counts
                resumed = segs[on_disk]
                assert resumed["gap_before_s"] >= 1.0, segs
                assert rec["gaps"] >= 1, rec
                report = await get(f"/video/recordings/{rid}/verify", dispatcher)
                assert report["ok"] and report["segments_checked"] == len(segs), report
                r = await http.get(f"/video/incidents/{iid}/export", headers=auth_d)
                assert r.status_code == 200, r.text
                with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
                    manifest = json.loads(zf.read("manifest.json"))
                (entry,) = manifest["recordings"]
                assert manifest["verification"]["ok"] is True
                recovered = [s["seq"] for s in entry["segments"] if s["recovered"]]
                assert recovered == list(range(stored_at_kill + 1, on_disk + 1)), entry["segments"]
                actions = [i["action"] for i in entry["interruptions"]]
                assert actions == ["video.record.interrupted", "video.record.resume"], entry["interruptions"]
                interrupted = entry["interruptions"][0]
                assert interrupted["recovered_segments"] == recovered
                assert interrupted["detected_at"] > interrupted["last_segment_end"]
                assert _epoch(resumed["started_at"]) >= killed_at
        finally:
            serve.stop()


async def _camera_found(get: Callable[..., Awaitable[Any]], vid: int, token: str) -> bool:
    body = await get(f"/video/vehicles/{vid}", token)
    return bool(body and body["camera"])


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


async def _true(value: bool) -> bool:
    return value


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
