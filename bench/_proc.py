"""Measure a process's CPU and memory over a window: ``with ProcessMeter() as meter: ...; meter.usage``.

A background thread samples RSS (so a busy event loop does not hide the peak); CPU is the difference of the
process's user+system times, so ``cpu_util`` is the average number of cores used over the window (1.0 = one
core busy the whole time). Works for this process (default) or any pid, e.g. a child simulator.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType

import psutil

_MB = 1024.0 * 1024.0


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """What one process used over a measured window."""

    pid: int
    wall_s: float
    cpu_s: float
    cpu_util: float  # average cores busy over wall_s
    rss_peak_mb: float
    rss_end_mb: float
    threads_peak: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain values for JSON."""
        return asdict(self)


class ProcessMeter:
    """Context manager (or start()/stop()) measuring CPU time and peak RSS of ``pid`` (default: this one)."""

    def __init__(self, pid: int | None = None, *, interval_s: float = 0.2) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._proc = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._rss_peak = 0
        self._threads_peak = 0
        self._last_cpu = 0.0
        self.usage: ProcessUsage | None = None

    def start(self) -> ProcessMeter:
        """Begin the window."""
        self._t0 = time.monotonic()
        self._cpu0 = self._cpu_s()
        self._sample()
        self._thread = threading.Thread(target=self._run, name=f"meter:{self._proc.pid}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> ProcessUsage:
        """End the window and return (and keep in ``usage``) what the process used."""
        if self._thread is None:
            raise RuntimeError("ProcessMeter.stop() before start()")
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._sample()
        wall = time.monotonic() - self._t0
        cpu = self._cpu_s() - self._cpu0
        try:
            rss_end = self._proc.memory_info().rss
        except psutil.Error:  # the process has exited: its last sample stands
            rss_end = 0
        self.usage = ProcessUsage(
            pid=self._proc.pid,
            wall_s=wall,
            cpu_s=cpu,
            cpu_util=cpu / wall if wall > 0 else 0.0,
            rss_peak_mb=self._rss_peak / _MB,
            rss_end_mb=rss_end / _MB,
            threads_peak=self._threads_peak,
        )
        return self.usage

    def __enter__(self) -> ProcessMeter:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _cpu_s(self) -> float:
        try:
            times = self._proc.cpu_times()
        except psutil.Error:
            return self._last_cpu
        self._last_cpu = float(times.user + times.system)
        return self._last_cpu

    def _sample(self) -> None:
        try:
            with self._proc.oneshot():
                self._rss_peak = max(self._rss_peak, self._proc.memory_info().rss)
                self._threads_peak = max(self._threads_peak, self._proc.num_threads())
                self._cpu_s()
        except psutil.Error:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()
