"""Tuning of the simulated vehicles: stream rates, flight model, battery, protocol timings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sim.camera.config import CameraConfig

# Wall-clock stream rates (Hz) a vehicle sends unasked; SET_MESSAGE_INTERVAL overrides them per vehicle.
# Streams due in the same tick go out in this order. SYSTEM_TIME (time_unix_usec = the wall clock at
# sending) follows GLOBAL_POSITION_INT at the same rate, so a ground station can date each position with
# the vehicle's own clock (end-to-end latency); at a different rate it runs on its own schedule.
DEFAULT_STREAM_HZ: Mapping[str, float] = MappingProxyType(
    {
        "SYS_STATUS": 1.0,
        "GLOBAL_POSITION_INT": 10.0,
        "SYSTEM_TIME": 10.0,
        "LOCAL_POSITION_NED": 5.0,
        "ATTITUDE": 10.0,
        "ATTITUDE_QUATERNION": 0.0,
        "GPS_RAW_INT": 2.0,
        "VFR_HUD": 4.0,
        "EXTENDED_SYS_STATE": 1.0,
        "BATTERY_STATUS": 1.0,
        "MISSION_CURRENT": 1.0,
        "HOME_POSITION": 0.0,
    }
)


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything tunable about a simulated fleet; times are simulated seconds unless named `_wall_s`."""

    tick_hz: float = 20.0
    stream_hz: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STREAM_HZ))
    params: Mapping[str, float] = field(default_factory=dict)
    # flight model of a ~2 kg quad
    mass_kg: float = 2.0
    accel_limit_m_s2: float = 3.0
    yaw_rate_deg_s: float = 60.0
    land_speed_m_s: float = 0.7
    orbit_default_speed_m_s: float = 3.0
    # What PX4 v1.17 SIH flies (bench.conformance, docs/px4-conformance.md): its jerk-limited trajectories
    # average ~1.4 m/s2 speeding up and ~1.0 m/s2 braking into a waypoint although MPC_ACC_HOR is 3; an
    # orbit builds up at ~1.4 m/s2 and circles ~12 % below the commanded speed; a take-off slows to a stop
    # at ~0.25 m/s2 below its altitude; vertical speed changes at ~0.6 m/s2. A mission's take-off item and
    # RTL's climb close in on their altitude as a proportional controller would: ~0.3 (take-off item) and
    # ~0.4 (RTL) m/s per metre still to climb (measured: 0.26-0.43; PX4's take-off item took 15.9-20.9 s
    # across five runs of bench.conformance, sim/ is set to the middle of that).
    auto_accel_m_s2: float = 1.4
    auto_decel_m_s2: float = 1.0
    orbit_accel_m_s2: float = 1.4
    orbit_speed_ratio: float = 0.88
    takeoff_stop_accel_m_s2: float = 0.25
    # after COM_SPOOLUP_TIME, before the climb starts: PX4's landed state says "taking off" ~2.3 s before
    # its altitude starts to rise (measured)
    takeoff_start_delay_s: float = 1.3
    auto_vert_accel_m_s2: float = 0.6
    mission_takeoff_gain_per_s: float = 0.4
    rtl_climb_gain_per_s: float = 0.4
    land_detect_s: float = 3.0  # ground contact to "landed" (PX4's land detector stages; 2.7-3.5 s seen)
    # battery: 6S LiPo
    battery_capacity_wh: float = 90.0
    battery_cells: int = 6
    battery_internal_ohm: float = 0.025
    hover_power_w: float = 180.0
    forward_power_w_per_m2_s2: float = 0.4
    climb_efficiency: float = 0.5
    armed_ground_power_w: float = 25.0
    idle_power_w: float = 2.0
    # failsafes
    gps_loss_hold_s: float = 2.0
    # protocol timings in wall seconds (MAVSDK's retries and timeouts run on the wall clock)
    mission_start_refusal_wall_s: float = 0.3
    mission_upload_timeout_wall_s: float = 5.0
    mission_rerequest_wall_s: float = 0.25
    command_dedupe_wall_s: float = 1.5
    # reboot silence is simulated time (scaled by the speed factor)
    reboot_silence_s: float = 2.0
    # the sound-and-light payload board (sim/payload.py): which actuator output drives which device
    speaker_output: int = 1
    spotlight_output: int = 2
    # fixed local port for vehicle i is local_port_base + i (PX4 uses 14580+i); None = ephemeral
    local_port_base: int | None = None
    # more ground stations: vehicle i also streams to host:P+i for each P (PX4's extra MAVLink instances,
    # mavlink-router's extra endpoints); commands from any of them are answered to all
    extra_gcs_base_ports: tuple[int, ...] = ()
    random_seed: int | None = None
    # a MAVLink camera + gimbal streaming RTSP on every vehicle (sim/camera); None = no camera
    camera: CameraConfig | None = None

    def __post_init__(self) -> None:
        if self.tick_hz <= 0:
            raise ValueError(f"tick_hz must be > 0, got {self.tick_hz}")
        if self.battery_capacity_wh <= 0:
            raise ValueError(f"battery_capacity_wh must be > 0, got {self.battery_capacity_wh}")
        if self.battery_cells < 1:
            raise ValueError(f"battery_cells must be >= 1, got {self.battery_cells}")
        unknown = set(self.stream_hz) - set(DEFAULT_STREAM_HZ)
        if unknown:
            known = sorted(DEFAULT_STREAM_HZ)
            raise ValueError(f"unknown stream(s) in stream_hz: {sorted(unknown)}; known: {known}")
