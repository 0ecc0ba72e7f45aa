"""The ``skywarden`` command as a user runs it: real subprocesses on a temp database."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest
from sqlmodel import select
from websockets.sync.client import connect as ws_connect

from api.settings import Settings
from mission.auth import service as auth
from mission.auth.models import ApiToken
from mission.db import make_engine, session_scope
from tests.test_migrations import head

ROOT = Path(__file__).resolve().parents[2]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env={**env, "COLUMNS": "300", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def cli_env(db_url: str) -> dict[str, str]:
    return {**os.environ, "SKYWARDEN_DATABASE_URL": db_url}


def test_token_create_prints_a_working_token_last(cli_env: dict[str, str], db_url: str) -> None:
    result = run_cli("token", "create", "--role", "dispatcher", "--name", "ci-bot", env=cli_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("swk_")
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            principal = auth.resolve_token(session=session, token=token)
    finally:
        engine.dispose()
    assert principal is not None
    assert (principal.username, principal.role.value) == ("token:ci-bot", "dispatcher")
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            (row,) = session.exec(select(ApiToken).where(ApiToken.name == "ci-bot")).all()
            lifetime_s = (_aware(row.expires_at) - _aware(row.created_at)).total_seconds()
    finally:
        engine.dispose()
    # no --expires-in-s: the token still expires, after the service's token_default_ttl_s
    assert abs(lifetime_s - Settings(_env_file=None).token_default_ttl_s) < 60, lifetime_s


def test_token_create_refuses_an_unknown_role(cli_env: dict[str, str]) -> None:
    result = run_cli("token", "create", "--role", "captain", env=cli_env)
    assert result.returncode != 0
    assert "unknown role 'captain'" in result.stderr and "admin, pilot, dispatcher, observer" in result.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_db_upgrade_and_user_create(cli_env: dict[str, str], db_url: str) -> None:
    result = run_cli("db", "upgrade", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"database at revision {head()}" in result.stdout
    result = run_cli("user", "create", "pia", "--role", "pilot", "--password", "pilot-pass", env=cli_env)
    assert result.returncode == 0, result.stderr
    result = run_cli("user", "create", "pia", "--role", "pilot", "--password", "x", env=cli_env)
    assert result.returncode != 0 and "'pia' already exists" in result.stderr
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            _token, user = auth.login(session=session, username="pia", password="pilot-pass", ttl_s=60)
    finally:
        engine.dispose()
    assert user.role.value == "pilot"


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_udp_block(count: int) -> int:
    for _ in range(50):
        base = _free_port(socket.SOCK_DGRAM)
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
    raise RuntimeError("no free UDP port block")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_with_simulated_drones(cli_env: dict[str, str], tmp_path: Path) -> None:
    port, sim_port = _free_port(), _free_udp_block(2)
    env = {**cli_env, "SKYWARDEN_SIM_BASE_PORT": str(sim_port), "SKYWARDEN_REGISTRY_POLL_S": "0.5"}
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--sim", "2", "--log-level", "info"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
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
        password = re.search(r"created user 'admin' with password: (\S+)", output)
        assert password, output
        login = httpx.post(f"{base}/api/v1/auth/login", json={"username": "admin", "password": password[1]})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        vehicles = httpx.get(f"{base}/api/v1/vehicles", headers=headers).json()["items"]
        assert [(v["sysid"], v["connection_url"]) for v in vehicles] == [
            (1, f"udpin://0.0.0.0:{sim_port}"),
            (2, f"udpin://0.0.0.0:{sim_port + 1}"),
        ]
        zones = httpx.get(f"{base}/api/v1/zones", params={"kind": "patrol"}, headers=headers).json()
        assert zones["total"] == 7
        assert httpx.get(f"{base}/api/v1/health").json()["runtime"] is True
        # The simulator runs as a child process and stands each vehicle on its registered dock.
        deadline = time.monotonic() + 15
        while Path(log.name).read_text().count("sim vehicle sysid=") < 2:
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        sim_lines = [ln for ln in Path(log.name).read_text().splitlines() if ln.startswith("sim vehicle")]
        for v in vehicles:
            line = next(line for line in sim_lines if f"sysid={v['sysid']} " in line)
            assert f"home={v['home_lat']:.7f},{v['home_lon']:.7f}" in line
        assert vehicles[0]["home_lat"] != vehicles[1]["home_lat"]  # two different docks
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("sim" in " ".join(c.cmdline()) for c in children)
        # End to end: both simulated drones stream telemetry to the service's websocket.
        token = login.json()["token"]
        seen: set[int] = set()
        deadline = time.monotonic() + 20
        with ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
            ws.send(json.dumps({"type": "auth", "token": token}))
            while seen != {v["id"] for v in vehicles}:
                assert time.monotonic() < deadline, f"telemetry only from {seen}"
                message = json.loads(ws.recv(timeout=5))
                if message["type"] == "snapshot":
                    seen.add(message["vehicle_id"])
    finally:
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, Path(log.name).read_text()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], "the simulator outlived the service"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_login_is_admin_admin_and_warns(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import ensure_admin
    from tests.api.conftest import make_settings

    ensure_admin(make_settings(db_url), demo_login=True)
    assert "DEMO LOGIN admin/admin" in capsys.readouterr().err
    ensure_admin(make_settings(db_url), demo_login=True)  # users exist: nothing created, nothing printed
    assert capsys.readouterr().err == ""
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            _token, user = auth.login(session=session, username="admin", password="admin", ttl_s=60)
    finally:
        engine.dispose()
    assert user.role.value == "admin"


def test_sim_subcommand_delegates_to_the_simulator(cli_env: dict[str, str]) -> None:
    result = run_cli("sim", "--count", "0", env=cli_env)
    assert result.returncode == 2
    assert "sim: error: count must be within" in result.stderr


def _cmdline(process: psutil.Process) -> list[str]:
    """A process's command line; empty when it has already exited (a short-lived child)."""
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, FileNotFoundError):
        return []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["term", "int", "kill"])
def test_serve_leaves_no_simulator_behind_however_it_is_stopped(
    cli_env: dict[str, str], tmp_path: Path, stop: signal.Signals
) -> None:
    """systemd, docker and supervisors stop with SIGTERM; a crash is SIGKILL: the drones stop with it."""
    port, sim_port = _free_port(), _free_udp_block(1)
    env = {**cli_env, "SKYWARDEN_SIM_BASE_PORT": str(sim_port)}
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--sim", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 40
        children: list[psutil.Process] = []
        while not any("sim" in " ".join(_cmdline(c)) for c in children):
            assert proc.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
            with contextlib.suppress(psutil.NoSuchProcess):
                children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(stop)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running after {stop.name}: {[c.cmdline() for c in alive]}"


def test_serve_past_the_simulators_ceiling_fails_at_once(cli_env: dict[str, str]) -> None:
    started = time.monotonic()
    result = run_cli("serve", "--port", "1", "--sim", "2001", env=cli_env)
    assert result.returncode == 2
    assert "--sim 2001: at most 2000 simulated drones per instance" in result.stderr
    assert "simulator runs them in one process" in result.stderr
    assert time.monotonic() - started < 30  # refused before anything starts, never a hang


def test_a_demo_fleet_past_253_repeats_sysids_on_further_ports(cli_env: dict[str, str]) -> None:
    """MAVLink has 253 vehicle sysids: vehicle 254 is sysid 1 again, on its own port."""
    from mission.fleet import service as fleet

    result = run_cli("db", "seed-demo", "--vehicles", "520", env=cli_env)
    assert result.returncode == 0, result.stderr
    engine = make_engine(cli_env["SKYWARDEN_DATABASE_URL"])
    try:
        with session_scope(engine) as session:
            vehicles, total = fleet.list_vehicles(session=session, limit=1000)
    finally:
        engine.dispose()
    assert total == 520
    assert len({(v.connection_url, v.sysid) for v in vehicles}) == 520
    by_name = {v.name: v for v in vehicles}
    assert (by_name["drone-1"].sysid, by_name["drone-254"].sysid, by_name["drone-507"].sysid) == (1, 1, 1)
    assert by_name["drone-254"].connection_url == "udpin://0.0.0.0:14793"


def test_drone_ports_in_the_ephemeral_range_are_warned_of() -> None:
    from api.cli import sim_ports_warning

    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert sim_ports_warning(low - 600, 500) is None
    warning = sim_ports_warning(low + 100, 500)
    assert warning is not None and f"overlap the ephemeral ports {low}..{high}" in warning
