"""The simulated PX4 autopilot: flight modes, mission execution, failsafes and a kinematic multicopter."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from sim.battery import Battery
from sim.config import SimConfig
from sim.geo import LocalFrame
from sim.mission import (
    AMSL_FRAMES,
    DO_CHANGE_SPEED,
    DO_GRIPPER,
    DO_SET_ACTUATOR,
    DO_WINCH,
    NAV_DELAY,
    NAV_LAND,
    NAV_LOITER_TIME,
    NAV_LOITER_UNLIM,
    NAV_RETURN_TO_LAUNCH,
    NAV_TAKEOFF,
    NAV_WAYPOINT,
    Geofence,
    MissionItem,
)
from sim.params import ParamStore
from sim.payload import PayloadBoard
from sim.state import (
    LANDED_IN_AIR,
    LANDED_LANDING,
    LANDED_ON_GROUND,
    LANDED_STATE_NAMES,
    LANDED_TAKEOFF,
    PayloadEvent,
    VehicleState,
)

# MAV_RESULT
ACCEPTED = 0
TEMPORARILY_REJECTED = 1
DENIED = 2
UNSUPPORTED = 3
FAILED = 4

# MISSION_CURRENT.mission_state (MISSION_STATE)
MISSION_STATE_NO_MISSION = 1
MISSION_STATE_NOT_STARTED = 2
MISSION_STATE_ACTIVE = 3
MISSION_STATE_PAUSED = 4
MISSION_STATE_COMPLETE = 5
_MISSION_STATE_NAMES = {
    MISSION_STATE_NO_MISSION: "no_mission",
    MISSION_STATE_NOT_STARTED: "not_started",
    MISSION_STATE_ACTIVE: "active",
    MISSION_STATE_PAUSED: "paused",
    MISSION_STATE_COMPLETE: "complete",
}

# MAV_SEVERITY
SEV_CRITICAL = 2
SEV_WARNING = 4
SEV_INFO = 6

_GRAVITY = 9.81
_POSITION_MODES = frozenset({"hold", "mission", "return", "takeoff", "orbit", "posctl"})
_MAX_INSTANT_ITEMS_PER_TICK = 32
_FALL_SPEED_M_S = 12.0


@dataclass(frozen=True)
class Outcome:
    """A command's MAV_RESULT and, when refused, why (sent as STATUSTEXT)."""

    result: int
    reason: str = ""


_OK = Outcome(ACCEPTED)


class Autopilot:
    """Mode logic and physics of one vehicle; times are simulated seconds."""

    def __init__(
        self,
        *,
        home_lat: float,
        home_lon: float,
        home_amsl_m: float,
        config: SimConfig,
        params: ParamStore,
    ) -> None:
        self.config = config
        self.params = params
        self.frame = LocalFrame(home_lat, home_lon)
        self.ground_amsl_m = home_amsl_m
        self.home_ne = (0.0, 0.0)
        self.home_amsl_m = home_amsl_m
        self.home_latlon = (home_lat, home_lon)
        self.time_s = 0.0
        # kinematic state in the home frame; amsl is metres above mean sea level
        self.north_m = 0.0
        self.east_m = 0.0
        self.amsl_m = home_amsl_m
        self.vn = 0.0
        self.ve = 0.0
        self.vu = 0.0
        self.heading_deg = 0.0
        self.wind_n = 0.0
        self.wind_e = 0.0
        self.armed = False
        self.landed_state = LANDED_ON_GROUND
        self.mode = "hold"
        self.gps_ok = True
        self.battery = Battery(
            capacity_wh=config.battery_capacity_wh,
            cells=config.battery_cells,
            internal_ohm=config.battery_internal_ohm,
        )
        self.cruise_m_s = params["MPC_XY_CRUISE"]
        # mode targets
        self._hold_target: tuple[float, float, float] | None = None
        self._hold_yaw_deg: float | None = None  # DO_REPOSITION's yaw: the heading held once there
        self._hold_speed_m_s: float | None = None
        self._takeoff_target_amsl = home_amsl_m
        self._land_point: tuple[float, float] | None = None
        self._rtl_phase = "climb"
        self._rtl_alt_amsl = home_amsl_m
        self._orbit_centre = (0.0, 0.0)
        self._orbit_radius_m = 10.0
        self._orbit_speed_m_s = 3.0
        self._orbit_clockwise = True
        self._orbit_amsl = home_amsl_m
        self._landed_since: float | None = None
        self._left_ground_since_arming = False
        self._takeoff_started_at: float | None = None
        self._ground_contact_at: float | None = None
        # mission
        self.mission: list[MissionItem] = []
        self.fence_items: list[MissionItem] = []
        self.rally_items: list[MissionItem] = []
        self.geofence = Geofence(areas=())
        self.mission_seq = 0
        self.mission_state = MISSION_STATE_NO_MISSION
        self._item_started = False
        self._item_target: tuple[float, float, float] = (0.0, 0.0, home_amsl_m)
        self._item_wait_until: float | None = None
        self._item_climb_first = False
        # failsafes
        self._battery_action_level = 0
        self._battery_low_warned = False
        self._fence_triggered = False
        # A failsafe action PX4 takes after holding COM_FAIL_ACT_T: (mode, at simulated time)
        self._failsafe_pending: tuple[str, float] | None = None
        self._gps_lost_at: float | None = None
        # outputs drained by the protocol layer
        self.reached: deque[int] = deque()
        self.status_texts: deque[tuple[int, str]] = deque()
        self.mission_changed = False
        self.home_changed = False
        self.payload_events: list[PayloadEvent] = []
        self.payload_board = PayloadBoard(
            speaker_output=config.speaker_output, spotlight_output=config.spotlight_output
        )

    # ------------------------------------------------------------------ derived values
    @property
    def alt_rel_m(self) -> float:
        """Altitude above home."""
        return self.amsl_m - self.home_amsl_m

    @property
    def in_air(self) -> bool:
        """True unless landed."""
        return self.landed_state != LANDED_ON_GROUND

    def latlon(self) -> tuple[float, float]:
        """Current position in degrees."""
        return self.frame.to_latlon(self.north_m, self.east_m)

    def snapshot(self) -> VehicleState:
        """A frozen copy of the observable state."""
        lat, lon = self.latlon()
        return VehicleState(
            lat=lat,
            lon=lon,
            alt_rel_m=self.alt_rel_m,
            alt_amsl_m=self.amsl_m,
            heading_deg=self.heading_deg,
            ground_speed_m_s=math.hypot(self.vn, self.ve),
            climb_m_s=self.vu,
            mode=self.mode,
            armed=self.armed,
            landed_state=LANDED_STATE_NAMES[self.landed_state],
            battery_pct=self.battery.soc * 100.0,
            battery_wh_left=self.battery.energy_wh,
            battery_voltage_v=self.battery.voltage_v,
            mission_seq=self.mission_seq,
            mission_count=len(self.mission),
            mission_state=_MISSION_STATE_NAMES[self.mission_state],
            gps_ok=self.gps_ok,
            sim_time_s=self.time_s,
        )

    def _say(self, severity: int, text: str) -> None:
        self.status_texts.append((severity, text))

    def _amsl_of(self, frame: int, z: float) -> float:
        return z if frame in AMSL_FRAMES else self.home_amsl_m + z

    # ------------------------------------------------------------------ commands
    def prearm_failure(self) -> str | None:
        """Why arming would be refused, or None."""
        if not self.gps_ok:
            return "Preflight Fail: GPS fix too low"
        if self.battery.soc <= self.params["BAT_LOW_THR"]:
            return "Preflight Fail: low battery"
        if not self.geofence.empty and self.geofence.breached(self.north_m, self.east_m):
            return "Preflight Fail: vehicle outside geofence"
        return None

    def arm(self, *, force: bool) -> Outcome:
        """MAV_CMD_COMPONENT_ARM_DISARM with param1 = 1."""
        if self.armed:
            return _OK
        if not force:
            failure = self.prearm_failure()
            if failure:
                return Outcome(DENIED, failure)
        self.armed = True
        if not self.in_air:
            # PX4 sets home where it arms
            lat, lon = self.latlon()
            self.set_home(lat=lat, lon=lon, amsl_m=self.amsl_m)
        self.cruise_m_s = self.params["MPC_XY_CRUISE"]
        self._battery_action_level = 0
        self._battery_low_warned = False
        self._landed_since = self.time_s
        self._left_ground_since_arming = self.in_air
        self._say(SEV_INFO, "Armed by external command")
        if self.mode == "mission" and self.mission:
            # PX4 takes off into a mission it is armed in (MAVSDK's arm() switches to HOLD first, though)
            self._enter_mission()
        return _OK

    def disarm(self, *, force: bool) -> Outcome:
        """MAV_CMD_COMPONENT_ARM_DISARM with param1 = 0; refused in the air unless forced."""
        if not self.armed:
            return _OK
        if self.in_air and not force:
            return Outcome(DENIED, "Disarming denied: not landed")
        if self.in_air:
            return self.terminate()
        self._disarm()
        return _OK

    def terminate(self) -> Outcome:
        """Kill (forced disarm) or MAV_CMD_DO_FLIGHTTERMINATION: motors off wherever it is."""
        if self.armed:
            self._say(SEV_CRITICAL, "Flight termination: motors off")
            self._disarm()
        return _OK

    def _disarm(self) -> None:
        self.armed = False
        if self.amsl_m <= self.ground_amsl_m + 0.05:
            self.landed_state = LANDED_ON_GROUND
        self._say(SEV_INFO, "Disarmed by landing" if not self.in_air else "Disarmed")
        if self.mode in ("land", "return", "takeoff", "orbit"):
            self.mode = "hold"
            self._hold_target = None

    def takeoff(self, *, alt_amsl_m: float | None) -> Outcome:
        """MAV_CMD_NAV_TAKEOFF: climb to `alt_amsl_m` or MIS_TAKEOFF_ALT, then hold."""
        if not self.armed:
            return Outcome(DENIED, "Takeoff denied: disarmed")
        if not self.gps_ok:
            return Outcome(DENIED, "Takeoff denied: no position")
        target = alt_amsl_m if alt_amsl_m is not None else self.home_amsl_m + self.params["MIS_TAKEOFF_ALT"]
        self._takeoff_target_amsl = max(target, self.ground_amsl_m + 1.0)
        self._hold_target = (self.north_m, self.east_m, self._takeoff_target_amsl)
        self._set_mode("takeoff")
        self._begin_takeoff()
        return _OK

    def _begin_takeoff(self) -> None:
        """Leaving the ground: PX4 spools up, then ramps its climb up to MPC_TKO_SPEED."""
        if not self.in_air:
            self.landed_state = LANDED_TAKEOFF
            self._takeoff_started_at = self.time_s
            self._left_ground_since_arming = True

    def _takeoff_climb(self, target_amsl: float, dt: float, *, gain_per_s: float | None = None) -> float:
        """Climb rate while taking off (PX4: spool-up, MPC_TKO_RAMP_T ramp, MPC_TKO_SPEED, soft stop; with
        ``gain_per_s`` no faster than that many m/s per metre still to climb)."""
        if self._takeoff_started_at is None:
            return self._climb_toward(target_amsl, dt)
        dz = target_amsl - self.amsl_m
        if dz <= 0:
            return self._climb_toward(target_amsl, dt)
        delay = self.params["COM_SPOOLUP_TIME"] + self.config.takeoff_start_delay_s
        since = self.time_s - self._takeoff_started_at - delay
        if since <= 0:
            return 0.0
        ramp = min(1.0, since / max(self.params["MPC_TKO_RAMP_T"], 1e-3))
        soft_stop = math.sqrt(2.0 * self.config.takeoff_stop_accel_m_s2 * dz)
        if gain_per_s is not None:
            soft_stop = min(soft_stop, gain_per_s * dz)
        return max(0.0, min(self.params["MPC_TKO_SPEED"] * ramp, soft_stop, dz / dt))

    def land(self) -> Outcome:
        """MAV_CMD_NAV_LAND or mode AUTO.LAND."""
        if not self.armed:
            return Outcome(DENIED, "Land denied: disarmed")
        self._land_point = (self.north_m, self.east_m)
        self._set_mode("land")
        return _OK

    def set_mode(self, mode: str) -> Outcome:
        """DO_SET_MODE with a PX4 custom mode name."""
        if mode == self.mode and mode != "mission":
            return _OK
        if mode in _POSITION_MODES and not self.gps_ok:
            return Outcome(DENIED, f"Switching to {mode} is currently not available: no position")
        if mode == "hold":
            if self.mode == "mission" and self.mission_state == MISSION_STATE_ACTIVE:
                self.mission_state = MISSION_STATE_PAUSED
                self.mission_changed = True
            self._hold_target = None
            self._hold_speed_m_s = None
            self._set_mode("hold")
            return _OK
        if mode == "mission":
            if not self.mission:
                return Outcome(DENIED, "Switching to Mission is currently not available: no mission")
            if self.mode == "mission":
                return _OK
            self._set_mode("mission")
            self._enter_mission()
            return _OK
        if mode == "return":
            if not self.armed or not self.in_air:
                return Outcome(DENIED, "Return denied: landed")
            self._start_rtl()
            return _OK
        if mode == "land":
            return self.land()
        if mode == "takeoff":
            return self.takeoff(alt_amsl_m=None)
        if mode in ("posctl", "altctl", "manual"):
            # no RC here: the manual modes hold position like PX4 does with centred sticks
            self._hold_target = None
            self._set_mode(mode)
            return _OK
        if mode == "offboard":
            return Outcome(TEMPORARILY_REJECTED, "Switching to Offboard is not available: no setpoints")
        if mode == "orbit":
            return Outcome(DENIED, "Orbit needs MAV_CMD_DO_ORBIT")
        return Outcome(UNSUPPORTED, f"unsupported mode {mode}")

    def _set_mode(self, mode: str) -> None:
        if self.mode == "mission" and mode != "mission" and self.mission_state == MISSION_STATE_ACTIVE:
            self.mission_state = MISSION_STATE_PAUSED
            self.mission_changed = True
        self.mode = mode

    def reposition(
        self,
        *,
        lat: float | None,
        lon: float | None,
        amsl_m: float | None,
        speed_m_s: float | None,
        yaw_deg: float | None = None,
    ) -> Outcome:
        """MAV_CMD_DO_REPOSITION: fly there and hold (PX4 switches to AUTO.LOITER)."""
        if not self.armed or not self.in_air:
            return Outcome(DENIED, "Reposition denied: not flying")
        if not self.gps_ok:
            return Outcome(DENIED, "Reposition denied: no position")
        if lat is None or lon is None:
            north, east = self.north_m, self.east_m
        else:
            north, east = self.frame.to_ne(lat, lon)
        self._set_mode("hold")
        if not self.geofence.empty and self.geofence.breached(north, east):
            # PX4's navigator acks the command but ignores a target outside the fence and holds where it is
            self._say(SEV_CRITICAL, "Reposition is outside geofence")
            return _OK
        self._hold_target = (north, east, amsl_m if amsl_m is not None else self.amsl_m)
        self._hold_yaw_deg = yaw_deg % 360.0 if yaw_deg is not None and math.isfinite(yaw_deg) else None
        self._hold_speed_m_s = min(speed_m_s, self.params["MPC_XY_VEL_MAX"]) if speed_m_s else None
        return _OK

    def orbit(
        self,
        *,
        lat: float | None,
        lon: float | None,
        amsl_m: float | None,
        radius_m: float,
        speed_m_s: float | None,
    ) -> Outcome:
        """MAV_CMD_DO_ORBIT: circle a centre; positive radius is clockwise (PX4 orbit mode)."""
        if not self.armed or not self.in_air:
            return Outcome(DENIED, "Orbit denied: not flying")
        if not self.gps_ok:
            return Outcome(DENIED, "Orbit denied: no position")
        if not math.isfinite(radius_m) or abs(radius_m) < 1.0:
            return Outcome(DENIED, f"Orbit denied: radius {radius_m} m out of range")
        self._orbit_centre = (
            self.frame.to_ne(lat, lon) if lat is not None and lon is not None else (self.north_m, self.east_m)
        )
        self._orbit_radius_m = abs(radius_m)
        self._orbit_clockwise = radius_m > 0
        self._orbit_speed_m_s = self.config.orbit_speed_ratio * min(
            speed_m_s if speed_m_s else self.config.orbit_default_speed_m_s, self.params["MPC_XY_VEL_MAX"]
        )
        self._orbit_amsl = amsl_m if amsl_m is not None else self.amsl_m
        self._set_mode("orbit")
        return _OK

    def change_speed(self, speed_m_s: float) -> Outcome:
        """DO_CHANGE_SPEED (param2); -1 keeps, -2 restores MPC_XY_CRUISE."""
        if speed_m_s == -2:
            self.cruise_m_s = self.params["MPC_XY_CRUISE"]
        elif speed_m_s > 0:
            self.cruise_m_s = min(speed_m_s, self.params["MPC_XY_VEL_MAX"])
        elif speed_m_s != -1:
            return Outcome(DENIED, f"invalid speed {speed_m_s}")
        return _OK

    def record_payload(self, *, index: int, value: float, source: str, kind: str = "actuator") -> None:
        """Remember an actuator/gripper/winch action at the current position."""
        lat, lon = self.latlon()
        self.payload_events.append(
            PayloadEvent(
                sim_time_s=self.time_s,
                index=index,
                value=value,
                lat=lat,
                lon=lon,
                alt_rel_m=self.alt_rel_m,
                source=source,  # type: ignore[arg-type]
                kind=kind,  # type: ignore[arg-type]
            )
        )
        if kind == "actuator":
            report = self.payload_board.actuator(index, value, sim_time_s=self.time_s)
            if report is not None:
                self._say(SEV_INFO, report.status_text())

    def set_actuators(self, values: list[float], *, source: str) -> None:
        """DO_SET_ACTUATOR: each finite value is one payload event (index 1..n)."""
        for i, value in enumerate(values, start=1):
            if math.isfinite(value):
                self.record_payload(index=i, value=value, source=source)

    def set_home(self, *, lat: float, lon: float, amsl_m: float) -> None:
        """DO_SET_HOME (and arming, as PX4 does)."""
        self.home_changed = True
        self.home_ne = self.frame.to_ne(lat, lon)
        self.home_latlon = (lat, lon)
        self.home_amsl_m = amsl_m

    # ------------------------------------------------------------------ mission storage
    def replace_mission(self, items: list[MissionItem]) -> None:
        """A new mission after a completed upload; execution restarts at item 0."""
        self.mission = items
        self.mission_seq = 0
        self._item_started = False
        self.mission_state = MISSION_STATE_NOT_STARTED if items else MISSION_STATE_NO_MISSION
        if items and self.mode == "mission" and self.armed:
            # PX4 flies a mission uploaded while in mission mode from its first item
            self.mission_state = MISSION_STATE_ACTIVE
        self.mission_changed = True
        if not items and self.mode == "mission":
            self._set_mode("hold")
            self._hold_target = None

    def replace_fence(self, items: list[MissionItem], fence: Geofence) -> None:
        """A new geofence after a completed upload; PX4 ignores one that does not contain the vehicle."""
        self.fence_items = items
        self._fence_triggered = False
        if not fence.empty and fence.breached(self.north_m, self.east_m):
            # PX4 v1.17 (measured): the upload is acked, the fence is not used, no breach action follows
            self._say(SEV_WARNING, "Geofence invalid, doesn't contain current vehicle position")
            self.geofence = Geofence(areas=())
            return
        self.geofence = fence

    def set_mission_current(self, seq: int) -> bool:
        """MISSION_SET_CURRENT; False when out of range."""
        if not 0 <= seq < len(self.mission):
            return False
        self.mission_seq = seq
        self._item_started = False
        if self.mission_state == MISSION_STATE_COMPLETE:
            self.mission_state = MISSION_STATE_ACTIVE if self.mode == "mission" else MISSION_STATE_PAUSED
        self.mission_changed = True
        return True

    def _enter_mission(self) -> None:
        if self.mission_state == MISSION_STATE_COMPLETE and not self.in_air:
            self.mission_seq = 0
        if self.mission_state != MISSION_STATE_COMPLETE:
            self.mission_state = MISSION_STATE_ACTIVE
        self._item_started = False
        self.mission_changed = True

    # ------------------------------------------------------------------ faults
    def set_gps(self, ok: bool) -> None:
        """GPS health on/off."""
        if ok == self.gps_ok:
            return
        self.gps_ok = ok
        if ok:
            self._gps_lost_at = None
            self._say(SEV_INFO, "GPS fix regained")
        else:
            self._say(SEV_CRITICAL, "Failsafe: GPS lost")

    def _start_rtl(self) -> None:
        self._rtl_phase = "climb"
        self.cruise_m_s = self.params["MPC_XY_CRUISE"]  # PX4 returns at its cruise speed, not a mission's
        self._rtl_alt_amsl = max(self.amsl_m, self.home_amsl_m + self.params["RTL_RETURN_ALT"])
        self._set_mode("return")

    # ------------------------------------------------------------------ the tick
    def step(self, dt: float) -> None:
        """Advance `dt` simulated seconds."""
        self.time_s += dt
        if self.armed and self.in_air:
            self._failsafes()
        vn_d, ve_d, vu_d = self._desired_velocity(dt)
        self._integrate(dt, vn_d, ve_d, vu_d)
        self._update_landing()
        self._drain_battery(dt)

    def _failsafes(self) -> None:
        if not self.gps_ok:
            if self._gps_lost_at is None:
                self._gps_lost_at = self.time_s
                if self.mode != "land":
                    self._set_mode("hold")
                    self._hold_target = None
            elif self.mode != "land" and self.time_s - self._gps_lost_at >= self.config.gps_loss_hold_s:
                self._say(SEV_CRITICAL, "Failsafe: no position, landing")
                self._land_point = None
                self._set_mode("land")
            return
        soc = self.battery.soc
        action = int(self.params["COM_LOW_BAT_ACT"])
        if soc <= self.params["BAT_LOW_THR"] and not self._battery_low_warned:
            self._battery_low_warned = True
            self._say(SEV_WARNING, "Low battery level")
        if soc <= self.params["BAT_EMERGEN_THR"] and self._battery_action_level < 2 and action in (2, 3):
            self._battery_action_level = 2
            self._say(SEV_CRITICAL, "Failsafe: emergency battery level, landing")
            if self.mode != "land":
                self.land()
        elif soc <= self.params["BAT_CRIT_THR"] and self._battery_action_level < 1 and action in (1, 2, 3):
            self._battery_action_level = 1
            if action == 2:
                self._say(SEV_CRITICAL, "Failsafe: critical battery level, landing")
                if self.mode != "land":
                    self.land()
            else:
                self._say(SEV_CRITICAL, "Failsafe: critical battery level, returning")
                if self.mode not in ("return", "land"):
                    self._start_rtl()
        pending = self._failsafe_pending
        if pending is not None and self.time_s >= pending[1]:
            self._failsafe_pending = None
            if self.mode == "hold" and self.in_air:  # nobody took over meanwhile
                if pending[0] == "return":
                    self._start_rtl()
                else:
                    self.land()
        if not self.geofence.empty and self.in_air:
            # PX4 (GF_PREDICT 1) judges where braking from the current velocity would end, so it stops at the
            # edge rather than past it (measured: 3 m past an 80 m fence at 5 m/s).
            # (braking as its hold really brakes, at up to MPC_ACC_HOR: a look-ahead at the average auto
            # deceleration stopped a 10 m/s vehicle ~35 m short of the edge)
            speed = math.hypot(self.vn, self.ve)
            ahead = speed / (2.0 * max(self.params["MPC_ACC_HOR"], 0.1))
            stop_n, stop_e = self.north_m + self.vn * ahead, self.east_m + self.ve * ahead
            breached = self.geofence.breached(stop_n, stop_e) or self.geofence.breached(
                self.north_m, self.east_m
            )
            if breached and not self._fence_triggered:
                self._fence_triggered = True
                gf_action = int(self.params["GF_ACTION"])
                # PX4 v1.17's failsafe framework says only this (the cause goes out as an event), holds, and
                # takes a return or land action after COM_FAIL_ACT_T (measured: hold, return 5 s later).
                self._say(SEV_CRITICAL, "Failsafe activated")
                if gf_action in (2, 3, 5) and self.mode not in ("return", "land"):
                    self.set_mode("hold")
                    if gf_action in (3, 5) and self._failsafe_pending is None:
                        then = "return" if gf_action == 3 else "land"
                        self._failsafe_pending = (then, self.time_s + self.params["COM_FAIL_ACT_T"])
            elif not breached:
                self._fence_triggered = False

    def _desired_velocity(self, dt: float) -> tuple[float, float, float]:
        """Ground velocity setpoint (north, east, up) for the current mode."""
        if not self.armed:
            if self.in_air:
                # motors off in the air (kill / flight termination): it falls with the wind
                return self.wind_n, self.wind_e, -_FALL_SPEED_M_S
            return 0.0, 0.0, 0.0
        mode = self.mode
        if mode == "takeoff":
            target = self._hold_target or (self.north_m, self.east_m, self._takeoff_target_amsl)
            if abs(self.amsl_m - self._takeoff_target_amsl) <= self.params["NAV_MC_ALT_RAD"]:
                self._say(SEV_INFO, "Takeoff complete, holding")
                self._set_mode("hold")
                self._hold_target = target
                self._takeoff_started_at = None
            vn, ve, _ = self._goto(target, dt, self.cruise_m_s)
            return vn, ve, self._takeoff_climb(self._takeoff_target_amsl, dt)
        if not self.in_air:
            if mode == "mission" and self.mission_state == MISSION_STATE_ACTIVE:
                return self._mission(dt)
            return 0.0, 0.0, 0.0
        if mode == "land":
            return self._descend(dt)
        if mode == "return":
            return self._rtl(dt)
        if mode == "mission":
            return self._mission(dt)
        if mode == "orbit":
            return self._orbit()
        # hold and the manual modes
        if not self.gps_ok:
            # no position: altitude hold only, the wind carries the vehicle
            return self.wind_n, self.wind_e, 0.0
        if self._hold_target is None:
            self._hold_target = self._stopping_point()
        return self._goto(self._hold_target, dt, self._hold_speed_m_s or self.cruise_m_s)

    def _stopping_point(self) -> tuple[float, float, float]:
        """Where braking at MPC_ACC_HOR from the current velocity ends (PX4 holds there)."""
        speed = math.hypot(self.vn, self.ve)
        scale = speed / (2.0 * self.config.auto_decel_m_s2)
        return (self.north_m + self.vn * scale, self.east_m + self.ve * scale, self.amsl_m)

    def _goto(
        self, target: tuple[float, float, float], dt: float, speed_m_s: float
    ) -> tuple[float, float, float]:
        dn = target[0] - self.north_m
        de = target[1] - self.east_m
        dist = math.hypot(dn, de)
        vu = self._climb_toward(target[2], dt)
        if dist < 0.01:
            return 0.0, 0.0, vu
        un, ue = dn / dist, de / dist
        # airspeed-limited ground speed along the track: |g*u - wind| = airspeed
        w_along = self.wind_n * un + self.wind_e * ue
        disc = w_along * w_along - (self.wind_n**2 + self.wind_e**2) + speed_m_s * speed_m_s
        ground = max(0.0, w_along + math.sqrt(disc)) if disc >= 0 else 0.0
        brake = math.sqrt(2.0 * self.config.auto_decel_m_s2 * dist)
        speed = min(ground, brake, dist / dt)
        return un * speed, ue * speed, vu

    def _climb_toward(self, target_amsl: float, dt: float, *, gain_per_s: float | None = None) -> float:
        dz = target_amsl - self.amsl_m
        # arrive without overshoot under the vertical acceleration limit
        speed = min(math.sqrt(2.0 * self.config.auto_vert_accel_m_s2 * abs(dz)), abs(dz) / max(1.0, dt))
        if gain_per_s is not None:
            speed = min(speed, gain_per_s * abs(dz))
        vu = math.copysign(speed, dz)
        return max(-self.params["MPC_Z_VEL_MAX_DN"], min(self.params["MPC_Z_VEL_MAX_UP"], vu))

    def _land_speed(self, rel_m: float) -> float:
        """PX4's landing speed over the ground: fast above MPC_LAND_ALT1, blended down to MPC_LAND_SPEED at
        MPC_LAND_ALT2, crawling at MPC_LAND_CRWL below MPC_LAND_ALT3."""
        alt1, alt2, alt3 = (self.params[n] for n in ("MPC_LAND_ALT1", "MPC_LAND_ALT2", "MPC_LAND_ALT3"))
        fast, slow = self.params["MPC_Z_VEL_MAX_DN"], self.params["MPC_LAND_SPEED"]
        if rel_m <= alt3:
            return min(slow, self.params["MPC_LAND_CRWL"])
        if rel_m <= alt2:
            return slow
        if rel_m >= alt1 or alt1 <= alt2:
            return fast
        return slow + (fast - slow) * (rel_m - alt2) / (alt1 - alt2)

    def _descend(self, dt: float) -> tuple[float, float, float]:
        rel = self.amsl_m - self.ground_amsl_m
        speed = self._land_speed(rel)
        if self.in_air:
            self.landed_state = LANDED_LANDING
        if not self.gps_ok or self._land_point is None:
            vn, ve = (self.wind_n, self.wind_e) if not self.gps_ok else (0.0, 0.0)
            return vn, ve, -min(speed, rel / dt + 0.01)
        over = (self._land_point[0], self._land_point[1], self.amsl_m)
        vn, ve, _ = self._goto(over, dt, self.cruise_m_s)
        return vn, ve, -min(speed, rel / dt + 0.01)

    def _rtl(self, dt: float) -> tuple[float, float, float]:
        home = (self.home_ne[0], self.home_ne[1], self._rtl_alt_amsl)
        if self._rtl_phase == "climb":
            if self.amsl_m >= self._rtl_alt_amsl - self.params["NAV_MC_ALT_RAD"]:
                self._rtl_phase = "return"
            else:
                # PX4 closes in on RTL_RETURN_ALT slowly (its climb of 10 m took ~9.6 s, measured)
                return (
                    0.0,
                    0.0,
                    self._climb_toward(self._rtl_alt_amsl, dt, gain_per_s=self.config.rtl_climb_gain_per_s),
                )
        if self._rtl_phase == "return":
            if math.hypot(home[0] - self.north_m, home[1] - self.east_m) <= self.params["NAV_ACC_RAD"]:
                self._rtl_phase = "land"
                self._land_point = self.home_ne
            else:
                return self._goto(home, dt, self.cruise_m_s)
        return self._descend(dt)

    def _orbit(self) -> tuple[float, float, float]:
        pn = self.north_m - self._orbit_centre[0]
        pe = self.east_m - self._orbit_centre[1]
        dist = math.hypot(pn, pe)
        if dist < 0.1:
            pn, pe, dist = 1.0, 0.0, 1.0
        rn, re = pn / dist, pe / dist
        tn, te = (-re, rn) if self._orbit_clockwise else (re, -rn)
        v = self._orbit_speed_m_s
        radial = max(-self.cruise_m_s, min(self.cruise_m_s, 0.8 * (self._orbit_radius_m - dist)))
        vn = v * tn + radial * rn
        ve = v * te + radial * re
        mag = math.hypot(vn, ve)
        limit = max(self.cruise_m_s, v)
        if mag > limit:
            vn, ve = vn * limit / mag, ve * limit / mag
        dz = self._orbit_amsl - self.amsl_m
        vu = max(-self.params["MPC_Z_VEL_MAX_DN"], min(self.params["MPC_Z_VEL_MAX_UP"], dz))
        return vn, ve, vu

    # ------------------------------------------------------------------ mission execution
    def _mission(self, dt: float) -> tuple[float, float, float]:
        if self.mission_state == MISSION_STATE_COMPLETE or not self.mission:
            if not self.in_air:
                return 0.0, 0.0, 0.0
            if self._hold_target is None:
                self._hold_target = self._stopping_point()
            return self._goto(self._hold_target, dt, self.cruise_m_s)
        for _ in range(_MAX_INSTANT_ITEMS_PER_TICK):
            item = self.mission[self.mission_seq]
            if not self._item_started:
                self._start_item(item)
            if self._item_climb_first:
                # PX4 takes off to MIS_TAKEOFF_ALT first when a mission starts on the ground
                climb_to = max(self.home_amsl_m + self.params["MIS_TAKEOFF_ALT"], self.ground_amsl_m + 1.0)
                if self.amsl_m < climb_to - self.params["NAV_MC_ALT_RAD"]:
                    self._begin_takeoff()
                    return 0.0, 0.0, self._takeoff_climb(climb_to, dt)
                self._item_climb_first = False
                self._takeoff_started_at = None
            result = self._run_item(item, dt)
            if result is not None:
                return result
            # item done at once: next item in the same tick
            if self.mission_state != MISSION_STATE_ACTIVE or self.mode != "mission":
                break
        if self.mode == "mission" and self.in_air:
            return self._goto(self._hold_target or self._stopping_point(), dt, self.cruise_m_s)
        return 0.0, 0.0, 0.0

    def _start_item(self, item: MissionItem) -> None:
        self._item_started = True
        self._item_wait_until = None
        north, east = (
            self.frame.to_ne(item.lat, item.lon) if item.has_position else (self.north_m, self.east_m)
        )
        amsl = self._amsl_of(item.frame, item.z) if item.frame != 2 else self.amsl_m
        if item.command == NAV_LAND:
            amsl = self.amsl_m
        self._item_target = (north, east, amsl)
        self._item_climb_first = not self.in_air and item.command != NAV_TAKEOFF
        if item.command == NAV_LAND:
            self._item_climb_first = False

    def _item_reached(self) -> None:
        self.reached.append(self.mission_seq)
        self._item_started = False
        if self.mission_seq + 1 >= len(self.mission):
            self.mission_state = MISSION_STATE_COMPLETE
            last = self.mission[self.mission_seq].command
            positional = last in (NAV_WAYPOINT, NAV_LOITER_TIME, NAV_LOITER_UNLIM, NAV_TAKEOFF)
            target = self._item_target if positional else self._stopping_point()
            if self.in_air:
                # PX4 (v1.17) switches to AUTO.LOITER at the end of a mission flown in the air
                self._say(SEV_INFO, "Mission finished, loitering")
                self._set_mode("hold")
            else:
                self._say(SEV_INFO, "Mission finished")
            self._hold_target = target
        else:
            self.mission_seq += 1
        self.mission_changed = True

    def _run_item(self, item: MissionItem, dt: float) -> tuple[float, float, float] | None:
        """Velocity setpoint while the item runs, or None when it finished this tick."""
        cmd = item.command
        if cmd == NAV_TAKEOFF:
            target = (self.north_m, self.east_m, self._item_target[2])
            if abs(self.amsl_m - target[2]) <= self.params["NAV_MC_ALT_RAD"] or (
                self.in_air and self.amsl_m > target[2]
            ):
                self._takeoff_started_at = None
                self._item_reached()
                return None
            self._begin_takeoff()
            vn, ve, _ = self._goto(target, dt, self.cruise_m_s)
            # PX4's mission take-off item slows down over its last ~5 m (measured), unlike AUTO.TAKEOFF
            return (
                vn,
                ve,
                self._takeoff_climb(target[2], dt, gain_per_s=self.config.mission_takeoff_gain_per_s),
            )
        if cmd in (NAV_WAYPOINT, NAV_LOITER_TIME, NAV_LOITER_UNLIM):
            if self._item_wait_until is None:
                accept_m = self.params["NAV_ACC_RAD"]
                if cmd == NAV_WAYPOINT and item.param2 > 0:
                    accept_m = item.param2
                dist = math.hypot(self._item_target[0] - self.north_m, self._item_target[1] - self.east_m)
                if dist > accept_m or abs(self._item_target[2] - self.amsl_m) > self.params["NAV_MC_ALT_RAD"]:
                    return self._goto(self._item_target, dt, self.cruise_m_s)
                if cmd == NAV_LOITER_UNLIM:
                    return self._goto(self._item_target, dt, self.cruise_m_s)
                self._item_wait_until = self.time_s + max(0.0, item.param1)
            if self.time_s < self._item_wait_until:
                return self._goto(self._item_target, dt, self.cruise_m_s)
            self._item_reached()
            return None
        if cmd == NAV_DELAY:
            if self._item_wait_until is None:
                self._item_wait_until = self.time_s + max(0.0, item.param1)
            if self.time_s < self._item_wait_until:
                # wait where the delay started (item target = position when it began)
                return self._goto(self._item_target, dt, self.cruise_m_s) if self.in_air else (0.0, 0.0, 0.0)
            self._item_reached()
            return None
        if cmd == NAV_LAND:
            dist = math.hypot(self._item_target[0] - self.north_m, self._item_target[1] - self.east_m)
            if self._land_point != (self._item_target[0], self._item_target[1]):
                if dist > self.params["NAV_ACC_RAD"] and self.in_air:
                    return self._goto(self._item_target, dt, self.cruise_m_s)
                self._land_point = (self._item_target[0], self._item_target[1])
            if self.in_air:
                return self._descend(dt)
            self._item_reached()
            return None
        if cmd == NAV_RETURN_TO_LAUNCH:
            self._item_reached()
            self._start_rtl()
            return None
        if cmd == DO_CHANGE_SPEED:
            self.change_speed(item.param2)
        elif cmd == DO_SET_ACTUATOR:
            self.set_actuators([item.param1, item.param2, item.param3, item.param4], source="mission")
        elif cmd == DO_GRIPPER:
            self.record_payload(index=int(item.param1), value=item.param2, source="mission", kind="gripper")
        elif cmd == DO_WINCH:
            self.record_payload(index=int(item.param1), value=item.param2, source="mission", kind="winch")
        self._item_reached()
        return None

    # ------------------------------------------------------------------ physics
    def _integrate(self, dt: float, vn_d: float, ve_d: float, vu_d: float) -> None:
        # PX4's jerk-limited trajectories reach MPC_ACC_HOR only briefly: what it flies on average (measured
        # on SIH) is far lower, and its orbit builds up more slowly still
        limit = self.config.orbit_accel_m_s2 if self.mode == "orbit" else self.config.auto_accel_m_s2
        accel = min(limit, self.params["MPC_ACC_HOR"]) * dt
        dvn = vn_d - self.vn
        dve = ve_d - self.ve
        dv = math.hypot(dvn, dve)
        if dv > accel:
            dvn *= accel / dv
            dve *= accel / dv
        self.vn += dvn
        self.ve += dve
        if self.armed:
            step = self.config.auto_vert_accel_m_s2 * dt
            self.vu += max(-step, min(step, vu_d - self.vu))
        else:
            self.vu = vu_d
        self.north_m += self.vn * dt
        self.east_m += self.ve * dt
        self.amsl_m += self.vu * dt
        if self.amsl_m < self.ground_amsl_m:
            self.amsl_m = self.ground_amsl_m
            self.vu = 0.0
        speed = math.hypot(self.vn, self.ve)
        held_yaw = self._hold_yaw_deg if self.mode == "hold" and self._hold_target is not None else None
        if speed > 0.3 or held_yaw is not None:
            want = (
                held_yaw
                if held_yaw is not None and speed <= 1.0
                else math.degrees(math.atan2(self.ve, self.vn)) % 360.0
            )
            diff = (want - self.heading_deg + 540.0) % 360.0 - 180.0
            step = self.params["MPC_YAWRAUTO_MAX"] * dt
            self.heading_deg = (self.heading_deg + max(-step, min(step, diff))) % 360.0

    def _update_landing(self) -> None:
        on_ground = self.amsl_m <= self.ground_amsl_m + 0.01
        if not (on_ground and self.in_air and self.landed_state != LANDED_TAKEOFF):
            self._ground_contact_at = None
        elif self._ground_contact_at is None:
            self._ground_contact_at = self.time_s  # PX4's land detector needs a while to be sure
        contact_s = self.time_s - self._ground_contact_at if self._ground_contact_at is not None else -1.0
        if (
            self.in_air
            and self.landed_state != LANDED_TAKEOFF
            and on_ground
            and self.vu <= 0
            and (contact_s >= self.config.land_detect_s or not self.armed)
        ):
            self._ground_contact_at = None
            self.landed_state = LANDED_ON_GROUND
            self.vn = self.ve = self.vu = 0.0
            self._landed_since = self.time_s
            self._say(SEV_INFO, "Landing detected")
            if self.mode == "mission" and self.mission and self.mission[self.mission_seq].command == NAV_LAND:
                pass  # the land item completes on its next run
        elif self.landed_state == LANDED_TAKEOFF and self.amsl_m > self.ground_amsl_m + 0.5:
            if self.amsl_m >= self._climb_done_amsl():
                self.landed_state = LANDED_IN_AIR
        elif (
            self.landed_state == LANDED_LANDING
            and not on_ground
            and (self.mode not in ("land", "return", "mission") or (self.mode != "land" and self.vu >= 0))
        ):
            self.landed_state = LANDED_IN_AIR
        if self.armed and not self.in_air and self._landed_since is not None:
            delay = self.params["COM_DISARM_LAND"]
            was_flying = self.mode in ("land", "return") or (
                self.mode == "mission" and self.mission_state == MISSION_STATE_COMPLETE
            )
            if delay > 0 and was_flying and self.time_s - self._landed_since >= delay:
                self._disarm()
            preflight = self.params["COM_DISARM_PRFLT"]
            if (
                self.armed
                and not self._left_ground_since_arming
                and preflight > 0
                and self.time_s - self._landed_since >= preflight
            ):
                # PX4 disarms a vehicle armed on the ground that does not take off (the launch race)
                self._say(SEV_INFO, "Disarmed by auto preflight disarming")
                self._disarm()

    def _climb_done_amsl(self) -> float:
        return (
            min(self._takeoff_target_amsl, self.ground_amsl_m + 2.0)
            if self.mode == "takeoff"
            else (self.ground_amsl_m + 2.0)
        )

    def _drain_battery(self, dt: float) -> None:
        if not self.armed:
            power = self.config.idle_power_w
        elif not self.in_air:
            power = self.config.armed_ground_power_w
        else:
            air_n = self.vn - self.wind_n
            air_e = self.ve - self.wind_e
            power = (
                self.config.hover_power_w
                + self.config.forward_power_w_per_m2_s2 * (air_n * air_n + air_e * air_e)
                + max(0.0, self.vu) * self.config.mass_kg * _GRAVITY / self.config.climb_efficiency
            )
        self.battery.drain(power_w=power, dt_s=dt)
