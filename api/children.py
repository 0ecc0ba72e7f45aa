"""Child processes a command starts (simulated drones, PX4 SITL): they stop when the command stops.

On SIGTERM or SIGINT the command exits through its ``finally`` blocks and stops every child; on Linux each
child is also told by the kernel (PR_SET_PDEATHSIG) to stop when its parent dies, so even ``kill -9`` of the
service leaves nothing running or sending MAVLink.

uvicorn captures SIGTERM/SIGINT while serving and raises the signal again once it has shut down; with the
default handler in place that would kill the process before any ``finally`` ran. ``Children`` installs
handlers that turn both signals into SystemExit instead. An exception raised by a signal handler can be
lost (Python ignores it when it lands in a weakref callback or a ``__del__``), so the request is also kept:
``stop_requested`` is set and the ``on_stop`` callbacks run (e.g. telling uvicorn to exit) before the raise.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the parent dies (Linux only; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Children:
    """``with Children() as kids: kids.start(argv)``: every child is stopped when the block ends."""

    def __init__(self, *, stop_timeout_s: float = 10.0) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stoppers: list[Callable[[], None]] = []
        self._stop_timeout_s = stop_timeout_s
        self._previous: dict[int, object] = {}
        self._on_stop: list[Callable[[], None]] = []
        self.stop_requested = False

    def __enter__(self) -> Children:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._exit_on_signal)
        return self

    def _exit_on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = True
        for callback in self._on_stop:
            callback()
        raise SystemExit(0)  # a requested stop: a clean exit once every child is stopped

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when SIGTERM/SIGINT arrives (now, if one already has)."""
        self._on_stop.append(callback)
        if self.stop_requested:
            callback()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop_all()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]

    def start(self, argv: Sequence[str], **popen: object) -> subprocess.Popen[bytes]:
        """Start ``argv`` as a child that dies with this process."""
        proc = subprocess.Popen(list(argv), preexec_fn=_die_with_parent, **popen)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def add_stopper(self, stop: Callable[[], None]) -> None:
        """Also run ``stop`` (e.g. a PX4 fleet's own stop) when the block ends, before the plain children."""
        self._stoppers.append(stop)

    def stop_all(self) -> None:
        """SIGTERM every child still running, newest first; SIGKILL the ones that do not stop in time."""
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception:  # one failing stop must not leave the other children running
                logging.getLogger(__name__).exception("stopping a child group failed")
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
