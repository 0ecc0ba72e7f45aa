"""Area coverage planning: back-and-forth sweeps around no-fly holes, in metres or WGS84.

Stages (each its own module): swaths (lines, cells) -> order (a cell tour, which seeds a tour over single
swaths; turn-aware link costs) -> freespace (routing inside the area) -> plan (angles, patches, end reach,
waypoints, metrics). ``sweep`` and ``sweep_wgs84`` are the public entry points.
"""

from __future__ import annotations

from flightplans.coverage.plan import SweepPlan, candidate_angles, sweep
from flightplans.coverage.wgs84 import SweepPlanWgs84, sweep_wgs84

__all__ = ["SweepPlan", "SweepPlanWgs84", "candidate_angles", "sweep", "sweep_wgs84"]
