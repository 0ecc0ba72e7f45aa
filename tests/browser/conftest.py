"""The running service (``skywarden serve --sim 3``) on a free port with a temp SQLite database, a user per
role, and a headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIM_VEHICLES = 3
SIM_SPEED = 20.0  # simulated seconds per wall second
PASSWORDS = {"admin": "admin", "pilot": "pilot-pw", "dispatcher": "dispatch-pw", "observer": "observer-pw"}


REQUEST_TIMEOUT_S = 30.0  # one REST call; a machine busy flushing a pass's writes has stalled one 10 s


@dataclass(frozen=True)
class Service:
    """The service under test: its base URL, each role's password (username = role) and its log file."""

    url: str
    passwords: dict[str, str]
    log: Path | None = None

    def api(
        self, method: str, path: str, body: object | None = None, *, token: str | None = None
    ) -> tuple[int, object]:
        """One REST call: (status, decoded JSON body or None)."""
        req = urllib.request.Request(
            f"{self.url}/api/v1{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as res:
                raw = res.read()
                return res.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None
        except TimeoutError as err:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log else "(no log)"
            waited = time.monotonic() - started
            said = f"{method} {path}: no answer in {waited:.1f} s; the service's log ends:\n{tail}"
            raise TimeoutError(said) from err

    def login(self, role: str) -> str:
        """A bearer token for the ``role`` user."""
        status, body = self.api("POST", "/auth/login", {"username": role, "password": self.passwords[role]})
        assert status == 200, body
        assert isinstance(body, dict)
        return str(body["token"])


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_udp_base(count: int) -> int:
    """A base port with ``count`` consecutive free UDP ports (the sim vehicles' MAVLink ports)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65000:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free UDP ports for the sim vehicles")


@contextmanager
def running_service(
    workdir: Path, *, vehicles: int = SIM_VEHICLES, sim_speed: float = SIM_SPEED
) -> Iterator[Service]:
    """``skywarden serve --sim N`` as a subprocess in ``workdir``, ready with one user per role."""
    port = _free_tcp_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKYWARDEN_DATABASE_URL": f"sqlite:///{workdir / 'skywarden.db'}",
        "SKYWARDEN_SIM_SPEED": str(sim_speed),
        "SKYWARDEN_SIM_BASE_PORT": str(_free_udp_base(vehicles)),
        "SKYWARDEN_TILE_URL": "",  # a closed network: the panel's offline map
    }
    log = (workdir / "serve.log").open("wb")
    argv = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    argv += ["--sim", str(vehicles), "--demo-login", "--log-level", "warning"]
    proc = subprocess.Popen(
        argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    svc = Service(url=f"http://127.0.0.1:{port}", passwords=PASSWORDS, log=workdir / "serve.log")
    try:
        _wait_ready(svc, proc, workdir)
        admin = svc.login("admin")
        for role in ("pilot", "dispatcher", "observer"):
            status, body = svc.api(
                "POST",
                "/auth/users",
                {"username": role, "password": PASSWORDS[role], "role": role},
                token=admin,
            )
            assert status == 201, body
        yield svc
    finally:
        # The serve process stops its sim child on SIGTERM; its session is ours to end either way.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service with 3 sim drones, shared by a module's browser tests (stopped when the module ends)."""
    with running_service(tmp_path_factory.mktemp("service")) as svc:
        yield svc


def _wait_ready(svc: Service, proc: subprocess.Popen[bytes], workdir: Path, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"skywarden serve exited {proc.returncode}: {(workdir / 'serve.log').read_text()[-3000:]}"
            )
        try:
            status, body = svc.api("GET", "/health")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status, body = 0, None
        if status == 200 and isinstance(body, dict) and body.get("runtime"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"service not ready in {timeout_s} s: {(workdir / 'serve.log').read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per module (Playwright's sync API holds an event loop while it runs, so it
    must be gone before any asyncio test of another module)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def signed_in_page(
    browser, service: Service, role: str, *, width: int = 1366, height: int = 768, errors=None
):  # type: ignore[no-untyped-def]
    """A new page (own context) signed in as ``role``'s user, with vehicles listed and the live link up;
    uncaught page errors are appended to ``errors`` when given."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(service.url + "/")
    page.fill("#login-user", role)
    page.fill("#login-pass", service.passwords[role])
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=vehicle-card]", timeout=10_000)
    page.wait_for_selector("#ws-state[data-state=live]", timeout=10_000)
    return page


@pytest.fixture
def page_for(browser, service: Service):  # type: ignore[no-untyped-def]
    """``page_for(role, width=1366, height=768)``: a fresh page signed in as that role's user."""
    contexts = []
    errors: list[str] = []

    def open_page(role: str, *, width: int = 1366, height: int = 768):  # type: ignore[no-untyped-def]
        page = signed_in_page(browser, service, role, width=width, height=height, errors=errors)
        contexts.append(page.context)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the panel: {errors}"


@pytest.fixture(autouse=True)
def _no_leaked_tasks() -> Iterator[None]:
    """Overrides the suite's asyncio leak check: Playwright's sync API owns the event loop here, and these
    tests start no asyncio tasks of their own (the service runs in its own process)."""
    yield
