"""Area coverage planning: back-and-forth sweeps around no-fly holes, in metres or WGS84."""

from __future__ import annotations

from flightplans.coverage.plan import SweepPlan, candidate_angles, sweep

__all__ = ["SweepPlan", "candidate_angles", "sweep"]
