"""SQLite serves one instance: a second ``serve`` on the same file, or clustering on SQLite, stop at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_tcp_port

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[2]


def serve(db: Path, *extra: str, log: Path | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYWARDEN_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "SKYWARDEN_DATABASE_URL": f"sqlite:///{db}",
        "SKYWARDEN_VIDEO_ENABLED": "false",
    }
    argv = [
        sys.executable,
        "-m",
        "api.cli",
        "serve",
        "--port",
        str(free_tcp_port()),
        "--log-level",
        "warning",
    ]
    if log is not None:
        with log.open("w") as out:
            return subprocess.Popen(
                [*argv, *extra], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )
    return subprocess.Popen(
        [*argv, *extra], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_second_instance_on_one_sqlite_file_is_refused_at_once(tmp_path: Path) -> None:
    db = tmp_path / "skywarden.db"
    first = serve(db, log=tmp_path / "first.log")
    try:
        port = int(first.args[first.args.index("--port") + 1])
        deadline = time.monotonic() + 60
        while True:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the first instance did not come up"
            time.sleep(0.2)
        second = serve(db)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 2
        assert "another skywarden instance already serves the SQLite database" in out
        assert "several instances need PostgreSQL" in out
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(20)


def test_clustering_on_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    proc = serve(tmp_path / "skywarden.db", "--instance-id", "a")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "cluster=true (several instances) needs PostgreSQL for the vehicle leases" in out


@pytest.mark.postgres
def test_postgres_serves_one_lone_instance_or_clustered_ones_never_a_mix(pg_url: str) -> None:
    """A lone instance next to clustered ones would command their vehicles: whichever comes second stops."""
    from mission.cluster.single import SecondInstance, SingleInstanceLock
    from mission.db import make_engine

    engine = make_engine(pg_url)
    try:
        with (
            SingleInstanceLock(engine, cluster=True),
            SingleInstanceLock(engine, cluster=True),
            pytest.raises(SecondInstance, match="instances already serve the PostgreSQL database"),
        ):
            SingleInstanceLock(engine).__enter__()
        with SingleInstanceLock(engine):  # released with its connection: a lone instance may start now
            with pytest.raises(SecondInstance, match="without cluster=true already serves"):
                SingleInstanceLock(engine, cluster=True).__enter__()
            with pytest.raises(SecondInstance, match="start it with SKYWARDEN_CLUSTER=true"):
                SingleInstanceLock(engine).__enter__()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_lone_serve_next_to_a_clustered_one_is_refused_at_once(pg_url: str, tmp_path: Path) -> None:
    from mission.cluster.single import SingleInstanceLock
    from mission.db import make_engine

    engine = make_engine(pg_url)
    try:
        with SingleInstanceLock(engine, cluster=True):  # as a clustered instance holds it
            env = {k: v for k, v in os.environ.items() if not k.startswith("SKYWARDEN_")}
            env |= {"PYTHONPATH": str(REPO), "SKYWARDEN_DATABASE_URL": pg_url}
            port = str(free_tcp_port())
            proc = subprocess.run(
                [sys.executable, "-m", "api.cli", "serve", "--port", port],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "another one joins them only clustered" in proc.stderr
    finally:
        engine.dispose()
