"""Snapshot timing through real MAVSDK: fresh samples dated by the vehicle's clock, at the configured rate."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Mapping

import pytest

from mission.link import LinkManager, MavsdkVehicleLink, TelemetrySnapshot
from sim import SimConfig, SimFleet
from sim.config import DEFAULT_STREAM_HZ
from tests.integration.conftest import HOME, PX4_STREAM_HZ, free_udp_base

pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def _vehicle(stream_hz: Mapping[str, float]) -> AsyncIterator[MavsdkVehicleLink]:
    base = free_udp_base(1)
    config = SimConfig(stream_hz=stream_hz, tick_hz=100.0 if max(stream_hz.values()) > 20 else 20.0)
    async with (
        SimFleet(count=1, base_port=base, speed=5.0, home=HOME, config=config),
        LinkManager(telemetry_hz=10.0) as links,
    ):
        link = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base}")
        await link.wait_ready(timeout_s=15)
        yield link


async def _collect(link: MavsdkVehicleLink, seconds: float) -> list[TelemetrySnapshot]:
    seen: list[TelemetrySnapshot] = []

    async def read() -> None:
        async for snap in link.snapshots():
            if snap.link_up:
                seen.append(snap)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return seen


def _hz(snaps: list[TelemetrySnapshot]) -> float:
    return (len(snaps) - 1) / (snaps[-1].received_at - snaps[0].received_at)


def _assert_rate(snaps: list[TelemetrySnapshot], hz: float = 10.0) -> None:
    """At least 85 % of ``hz`` and at most what the token bucket allows: hz x span + its 2 tokens."""
    span_s = snaps[-1].received_at - snaps[0].received_at
    assert _hz(snaps) >= 0.85 * hz, f"{_hz(snaps):.2f} Hz"
    assert len(snaps) - 1 <= hz * span_s + 2, f"{len(snaps)} snapshots in {span_s:.2f} s"


async def test_snapshots_carry_the_vehicle_clock_and_are_published_soon_after_their_sample() -> None:
    async with _vehicle(DEFAULT_STREAM_HZ) as link:
        snaps = await _collect(link, 3.0)
    _assert_rate(snaps)
    times = [s.vehicle_time_unix for s in snaps]
    assert all(t is not None for t in times), "a snapshot without the vehicle's SYSTEM_TIME"
    # Each snapshot carries a new sample, not a repeat of the last one.
    assert len(set(times)) >= 0.9 * len(times)
    ages_ms = [(s.received_at - s.vehicle_time_unix) * 1000 for s in snaps if s.vehicle_time_unix]
    assert min(ages_ms) >= -5  # one clock on this machine; the vehicle stamps its send time
    # Polled at 4x the rate, a sample waits at most a quarter of the 100 ms period, not all of it.
    assert statistics.median(ages_ms) < 45, f"median sample age {statistics.median(ages_ms):.1f} ms"
    assert abs(snaps[-1].vehicle_time_unix - time.time()) < 2  # type: ignore[operator]


async def test_without_system_time_snapshots_keep_the_rate_and_carry_no_vehicle_clock() -> None:
    # A still vehicle that sends no SYSTEM_TIME: no sample looks new, yet the service must hear from it.
    async with _vehicle({**DEFAULT_STREAM_HZ, "SYSTEM_TIME": 0.0}) as link:
        snaps = await _collect(link, 2.0)
    _assert_rate(snaps)
    assert all(s.vehicle_time_unix is None for s in snaps)
    assert all(s.lat is not None and s.gps_ok for s in snaps)


async def test_a_vehicle_streaming_at_px4_rates_is_throttled_to_the_configured_rate() -> None:
    async with _vehicle(PX4_STREAM_HZ) as link:
        snaps = await _collect(link, 2.0)
    _assert_rate(snaps)
    gaps_ms = [(b.received_at - a.received_at) * 1000 for a, b in itertools.pairwise(snaps)]
    assert min(gaps_ms) >= 15, "a burst of snapshots"


async def test_bad_poll_setting_is_refused() -> None:
    with pytest.raises(ValueError, match=r"polls_per_snapshot must be 1\.\.10, got 0"):
        LinkManager(polls_per_snapshot=0)
