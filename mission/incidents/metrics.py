"""Response times of incidents: request -> assigned -> airborne -> on scene, and their percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The ``pct`` percentile (0..100) with linear interpolation; None for no values.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct!r}")
    data = sorted(v for v in values if v is not None and math.isfinite(v))
    if not data:
        return None
    k = (len(data) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return float(data[lo])
    return float(data[lo] + (data[hi] - data[lo]) * (k - lo))


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end``; None unless both are known."""
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """One incident's response intervals in seconds, each from the request (None until reached)."""

    incident_id: int
    to_assigned_s: float | None
    to_airborne_s: float | None
    to_on_scene_s: float | None


@dataclass(frozen=True, slots=True)
class PercentileSummary:
    count: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class ResponseSummary:
    """p50/p90 of each response interval over a set of incidents."""

    incidents: int
    assigned: PercentileSummary
    airborne: PercentileSummary
    on_scene: PercentileSummary


def _summary(values: list[float | None]) -> PercentileSummary:
    known = [v for v in values if v is not None]
    return PercentileSummary(len(known), percentile(known, 50), percentile(known, 90))


def summarize(times: Sequence[ResponseTimes]) -> ResponseSummary:
    """Percentiles of request -> assigned / airborne / on scene over ``times``."""
    return ResponseSummary(
        incidents=len(times),
        assigned=_summary([t.to_assigned_s for t in times]),
        airborne=_summary([t.to_airborne_s for t in times]),
        on_scene=_summary([t.to_on_scene_s for t in times]),
    )
