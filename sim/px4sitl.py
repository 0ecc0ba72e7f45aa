"""Start real PX4 SITL vehicles (PX4's own SIH quadcopter) from the bundle in ``../shared/px4-sitl``.

    async with start_px4(2, speed=4.0, homes=[(39.83, 109.99, 1320.0), ...], workdir=tmp_path) as vehicles:
        for v in vehicles:   # Px4Instance(index, sysid, port, url, pid, home, workdir)
            await links.add_vehicle(sysid=v.sysid, url=v.url)

PX4 fixes its ports by *instance number* I (0..9): sysid I+1, API link sent to UDP 127.0.0.1:14540+I (from
14580+I), GCS link to 14550 (from 18570+I), and a machine-wide lock /tmp/px4_lock-I. So two launchers on one
machine (parallel tests, another checkout's service) must never use the same I. ``start_px4`` claims its
instance numbers under a machine-wide file lock (/tmp/skywarden-px4-I.lock, held for the instances' life, so
a crashed holder frees it), skips any I whose PX4 lock is taken or whose API port is bound by someone else
(a sim/ vehicle, a developer's PX4), and keeps the API port bound until PX4 is heard on it, so nothing can
slip in between. sim/ fleets in tests use ports 20000+ and never meet these.

Every PX4 runs in its own workdir (parameters, dataman; ``--no-log`` unless asked), is told by the kernel
(PR_SET_PDEATHSIG) to stop when this process dies, and is stopped by pid: SIGTERM, then SIGKILL.

Bundle: ``SKYWARDEN_PX4_BUNDLE`` if set, else ``shared/px4-sitl`` beside the checkout (or beside the
checkout's parent, for a git worktree under ``<root>/wt/``). sim/ imports nothing of ours: homes are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BUNDLE_ENV = "SKYWARDEN_PX4_BUNDLE"
RUNNER = "run-px4-sih"
MAX_INSTANCES = 10  # PX4 gives instances 10+ one shared API port: useless to us
API_PORT_BASE = 14540  # PX4 instance I sends its API/offboard link to 127.0.0.1:14540+I
LOCK_DIR = Path("/tmp")
PR_SET_PDEATHSIG = 1

Home = tuple[float, float, float]  # lat, lon (degrees), alt (metres AMSL)


class Px4Unavailable(RuntimeError):
    """No PX4 bundle here, or no free instance numbers: the caller skips or reports it."""


class Px4Busy(Px4Unavailable):
    """Too few free instance numbers right now (other PX4s run on this machine): try again later."""


@dataclass(frozen=True, slots=True)
class Px4Instance:
    """One running PX4 SITL: connect MAVSDK to ``url`` and talk to ``sysid``."""

    index: int
    sysid: int
    port: int
    url: str
    pid: int
    home: Home
    workdir: Path
    speed: float


def find_bundle(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The PX4 bundle directory (holding ``run-px4-sih``), or None when there is none."""
    env = explicit if explicit is not None else os.environ.get(BUNDLE_ENV)
    if env:
        path = Path(env).expanduser()
        return path if (path / RUNNER).is_file() else None
    repo = Path(__file__).resolve().parents[1]
    for base in (repo.parent, repo.parent.parent):  # beside the checkout, or beside <root>/wt/<name>
        path = base / "shared" / "px4-sitl"
        if (path / RUNNER).is_file():
            return path
    return None


def missing_reason(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """Why PX4 cannot run here (for a test skip), or None when it can."""
    env = explicit if explicit is not None else os.environ.get(BUNDLE_ENV)
    if find_bundle(explicit) is not None:
        return None
    if env:
        return f"{BUNDLE_ENV}={env} holds no {RUNNER}"
    repo = Path(__file__).resolve().parents[1]
    return f"no PX4 SITL bundle: set {BUNDLE_ENV} or put it at {repo.parent / 'shared' / 'px4-sitl'}"


def _die_with_parent() -> None:  # runs in the child before exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Claim:
    """Instance number ``index`` held by this process: our lock file and the bound API port."""

    index: int
    lock: IO[bytes]
    port_sock: socket.socket | None

    def release_port(self) -> None:
        if self.port_sock is not None:
            self.port_sock.close()
            self.port_sock = None

    def release(self) -> None:
        self.release_port()
        with contextlib.suppress(OSError):
            fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


def _px4_lock_free(index: int) -> bool:
    """True when no PX4 holds /tmp/px4_lock-I (PX4 takes it with lockf)."""
    path = LOCK_DIR / f"px4_lock-{index}"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # someone else's file we cannot open: treat as taken
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _try_claim(index: int) -> _Claim | None:
    lock = open(LOCK_DIR / f"skywarden-px4-{index}.lock", "a+b")  # noqa: SIM115 - held for the instance's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if not _px4_lock_free(index):
            raise OSError("PX4 instance running")
        sock.bind(("0.0.0.0", API_PORT_BASE + index))
    except OSError:
        sock.close()
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        return None
    sock.setblocking(False)
    return _Claim(index=index, lock=lock, port_sock=sock)


def claim_instances(count: int, *, wanted: Sequence[int] | None = None) -> list[_Claim]:
    """``count`` free instance numbers (the lowest free ones, or exactly ``wanted``); raises when short."""
    candidates = list(wanted) if wanted is not None else list(range(MAX_INSTANCES))
    for index in candidates:
        if not 0 <= index < MAX_INSTANCES:
            raise ValueError(f"PX4 instance must be 0..{MAX_INSTANCES - 1}, got {index}")
    claims: list[_Claim] = []
    for index in candidates:
        if len(claims) == count:
            break
        claim = _try_claim(index)
        if claim is not None:
            claims.append(claim)
    if len(claims) < count:
        taken = sorted(set(candidates) - {c.index for c in claims})
        for claim in claims:
            claim.release()
        raise Px4Busy(
            f"need {count} PX4 instance numbers, only {len(claims)} free (taken: {taken}; "
            f"each uses UDP {API_PORT_BASE}+I and /tmp/px4_lock-I)"
        )
    return claims


@dataclass
class Px4Fleet:
    """Running PX4 instances (see ``start_px4``); ``stop()`` ends them all."""

    instances: list[Px4Instance] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _claims: list[_Claim] = field(default_factory=list)
    stop_timeout_s: float = 10.0

    def alive(self) -> list[bool]:
        """Whether each instance's process is still running."""
        return [p.poll() is None for p in self._procs]

    async def stop(self) -> None:
        """SIGTERM every instance, SIGKILL those still running after ``stop_timeout_s``; free the numbers."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, max(deadline - time.monotonic(), 0.01))
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.to_thread(proc.wait)
        self._procs.clear()
        for claim in self._claims:
            claim.release()
        self._claims.clear()


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _heard(claim: _Claim, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Wait for PX4's first datagram on the API port we hold, then free the port for the caller's link."""
    assert claim.port_sock is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if proc.poll() is not None:
            raise Px4Unavailable(
                f"PX4 instance {claim.index} exited with {proc.returncode} while starting:\n{_log_tail(log)}"
            )
        try:
            claim.port_sock.recv(2048)
            break
        except BlockingIOError:
            pass
        if loop.time() > deadline:
            raise Px4Unavailable(
                f"PX4 instance {claim.index} sent nothing on UDP {API_PORT_BASE + claim.index} "
                f"within {timeout_s} s:\n{_log_tail(log)}"
            )
        await asyncio.sleep(0.05)
    claim.release_port()


def _spawn(argv: list[str], *, log: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start one PX4 (output to ``log``) that the kernel stops when this process dies."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop PX4 in order
        )


async def launch(
    count: int,
    *,
    homes: Sequence[Home],
    workdir: str | os.PathLike[str],
    speed: float = 1.0,
    no_log: bool = True,
    params: Mapping[str, float | int] | None = None,
    instances: Sequence[int] | None = None,
    bundle: str | os.PathLike[str] | None = None,
    start_timeout_s: float = 30.0,
) -> Px4Fleet:
    """Start ``count`` PX4 SITL vehicles; vehicle k stands on ``homes[k]`` (see ``start_px4``)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if len(homes) < count:
        raise ValueError(f"{count} vehicles need {count} homes, got {len(homes)}")
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    root = find_bundle(bundle)
    if root is None:
        raise Px4Unavailable(missing_reason(bundle) or "no PX4 bundle")
    base = Path(workdir)
    fleet = Px4Fleet(_claims=claim_instances(count, wanted=instances))
    try:
        env = dict(os.environ)
        env.update({f"PX4_PARAM_{name}": str(value) for name, value in (params or {}).items()})
        logs: list[Path] = []
        for k, claim in enumerate(fleet._claims):
            lat, lon, alt = homes[k]
            wd = base / f"px4-{claim.index}"
            wd.mkdir(parents=True, exist_ok=True)
            argv = [str(root / RUNNER), "-i", str(claim.index), "--home", f"{lat:.7f},{lon:.7f},{alt:.1f}"]
            argv += ["--workdir", str(wd), "--speed", f"{speed:g}"]
            if no_log:
                argv.append("--no-log")
            log = wd / "px4.out"
            logs.append(log)
            proc = _spawn(argv, log=log, cwd=wd, env=env)
            fleet._procs.append(proc)
            fleet.instances.append(
                Px4Instance(
                    index=claim.index,
                    sysid=claim.index + 1,
                    port=API_PORT_BASE + claim.index,
                    url=f"udpin://0.0.0.0:{API_PORT_BASE + claim.index}",
                    pid=proc.pid,
                    home=(lat, lon, alt),
                    workdir=wd,
                    speed=speed,
                )
            )
        await asyncio.gather(
            *(
                _heard(claim, proc, log, start_timeout_s)
                for claim, proc, log in zip(fleet._claims, fleet._procs, logs, strict=True)
            )
        )
    except BaseException:
        await fleet.stop()
        raise
    return fleet


@contextlib.asynccontextmanager
async def start_px4(
    count: int,
    *,
    homes: Sequence[Home],
    workdir: str | os.PathLike[str],
    speed: float = 1.0,
    no_log: bool = True,
    params: Mapping[str, float | int] | None = None,
    instances: Sequence[int] | None = None,
    bundle: str | os.PathLike[str] | None = None,
    start_timeout_s: float = 30.0,
) -> AsyncIterator[list[Px4Instance]]:
    """``count`` PX4 SITL vehicles, running until the block ends.

    ``homes[k]`` is vehicle k's start (lat, lon, alt AMSL); ``speed`` the lockstep speed factor; ``params``
    PX4 parameter overrides at boot (``{"COM_DL_LOSS_T": 10}``); ``instances`` the exact PX4 instance numbers
    (default: the lowest free ones). Returns once each PX4 is heard on its API port (its health - global
    position, home - is OK a few seconds later: wait for it through the link). Raises ``Px4Unavailable``
    when there is no bundle or too few free instance numbers.
    """
    fleet = await launch(
        count,
        homes=homes,
        workdir=workdir,
        speed=speed,
        no_log=no_log,
        params=params,
        instances=instances,
        bundle=bundle,
        start_timeout_s=start_timeout_s,
    )
    try:
        yield list(fleet.instances)
    finally:
        await fleet.stop()
