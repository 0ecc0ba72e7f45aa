"""Dispatch tuning, from ``Settings`` (``from_settings``) and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mission.dispatch.fleet_view import PerformanceDefaults


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """How dispatch chooses, launches and relieves. ``*_wall_s`` are wall seconds; the rest simulated."""

    auto_launch: bool = False  # launch the chosen vehicle without an operator's click (opt-in)
    auto_launch_max_priority: int = 2  # ... and only for incidents this urgent (1 = most)
    mqtt_auto_dispatch: bool = True  # incidents from other systems over MQTT are assigned at once
    orbit_radius_m: float = 40.0
    orbit_speed_m_s: float = 4.0
    fence_margin_m: float = 200.0  # the flight's inclusion fence around route, scene and home
    relief_margin_s: float = 90.0
    preempt_max_priority: int = 3  # incidents this urgent (1 = most) may pull a drone off its patrol
    min_overwatch_s: float = 300.0  # a vehicle that can stay this long may start a longer overwatch
    close_after_overhead: bool = True
    overwatch_period_wall_s: float = 1.0
    speed_factor: float = 1.0  # simulated seconds per wall second
    max_attempts: int = 2
    airspace_margin_s: float = 600.0  # zones starting this long after a flight's end count too
    performance: PerformanceDefaults = field(default_factory=PerformanceDefaults)
    policy: str = "first_arrival"  # or "nearest_dock", the baseline the benchmark compares with

    @classmethod
    def from_settings(cls, settings: Any) -> DispatchConfig:
        return cls(
            auto_launch=settings.dispatch_auto_launch,
            auto_launch_max_priority=settings.dispatch_auto_launch_max_priority,
            mqtt_auto_dispatch=settings.mqtt_incident_auto_dispatch,
            orbit_radius_m=settings.dispatch_orbit_radius_m,
            orbit_speed_m_s=settings.dispatch_orbit_speed_m_s,
            fence_margin_m=settings.dispatch_fence_margin_m,
            relief_margin_s=settings.dispatch_relief_margin_s,
            preempt_max_priority=settings.dispatch_preempt_max_priority,
            min_overwatch_s=settings.dispatch_min_overwatch_s,
            close_after_overhead=settings.dispatch_close_after_overhead,
            overwatch_period_wall_s=settings.dispatch_overwatch_period_s,
            speed_factor=settings.sim_speed,
            max_attempts=settings.dispatch_max_attempts,
            airspace_margin_s=settings.airspace_time_margin_s,
            performance=PerformanceDefaults(
                takeoff_s=settings.dispatch_takeoff_s,
                climb_rate_m_s=settings.dispatch_climb_rate_m_s,
                descent_rate_m_s=settings.dispatch_descent_rate_m_s,
                reserve_pct=settings.battery_reserve_pct,
            ),
            policy=settings.dispatch_policy,
        )

    def launches(self, priority: int) -> bool:
        """Whether an incident of ``priority`` launches at once (else it waits for an operator's click)."""
        return self.auto_launch and priority <= self.auto_launch_max_priority
