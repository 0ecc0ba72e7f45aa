"""Snapshots and events for telemetry tests."""

from __future__ import annotations

import time

from mission.link.types import FlightMode, MissionProgress, TelemetrySnapshot


def snapshot(
    vehicle_id: int,
    *,
    seq: float = 0.0,
    armed: bool = False,
    mode: FlightMode = FlightMode.HOLD,
    received_at: float | None = None,
) -> TelemetrySnapshot:
    """A plausible snapshot near the demo district; ``seq`` moves it north so successive ones differ."""
    return TelemetrySnapshot(
        vehicle_id=vehicle_id,
        received_at=time.time() if received_at is None else received_at,
        link_up=True,
        lat=39.82 + seq * 1e-5,
        lon=109.98 + vehicle_id * 1e-3,
        alt_amsl_m=1130.0,
        alt_rel_m=30.0,
        heading_deg=90.0,
        ground_speed_m_s=8.0,
        climb_m_s=0.0,
        battery_pct=80.0,
        battery_v=15.8,
        mode=mode,
        armed=armed,
        in_air=armed,
        gps_ok=True,
        home_ok=True,
        mission=MissionProgress(current=1, total=5, finished=False),
        home_lat=39.82,
        home_lon=109.98,
        home_alt_amsl_m=1100.0,
    )
