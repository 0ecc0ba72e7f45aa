"""One simulated PX4 vehicle on the wire: MAVLink 2 over UDP, streams, commands, params and missions."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymavlink.dialects.v20 import common as mavlink

from sim.autopilot import (
    ACCEPTED,
    DENIED,
    MISSION_STATE_NOT_STARTED,
    MISSION_STATE_PAUSED,
    SEV_INFO,
    SEV_WARNING,
    TEMPORARILY_REJECTED,
    UNSUPPORTED,
    Autopilot,
    Outcome,
)
from sim.config import DEFAULT_STREAM_HZ, SimConfig
from sim.mission import (
    FENCE,
    MISSION,
    MISSION_ACCEPTED,
    MISSION_INVALID_SEQUENCE,
    RALLY,
    Geofence,
    MissionItem,
    build_geofence,
    validate_item,
    validate_plan,
)
from sim.params import ParamStore, decode_param_value, encode_param_value
from sim.payload import PayloadReport
from sim.state import MODE_BY_MAIN_SUB, PayloadEvent, VehicleState, px4_custom_mode

if TYPE_CHECKING:
    from sim.camera.component import SimCamera

_log = logging.getLogger("sim")
_FORCE_MAGIC = 21196
_COMPID = 1
_MAV_TYPE_QUADROTOR = 2
_MAV_AUTOPILOT_PX4 = 12
_BASE_CUSTOM = 1
_BASE_SAFETY_ARMED = 128
_BASE_AUTO = 4 | 8 | 16  # AUTO_ENABLED | GUIDED_ENABLED | STABILIZE_ENABLED
_MAV_STATE_STANDBY = 3
_MAV_STATE_ACTIVE = 4
_CAPABILITIES = (
    mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT
    | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
    | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT
    | mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
    | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
    | mavlink.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET
    | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
    | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT
    | mavlink.MAV_PROTOCOL_CAPABILITY_FLIGHT_TERMINATION
    | mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2
    | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE
    | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY
)
_PX4_VERSION = (1 << 24) | (15 << 16) | (0 << 8) | 255  # v1.15.0 official
# SYS_STATUS sensor bits: gyro, accel, mag, baro, GPS, rate/attitude/yaw/alt/xy control, motors, AHRS, battery
_SENSORS_BASE = 0x1 | 0x2 | 0x4 | 0x8 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x200000
_SENSOR_GPS = 0x20
_SENSOR_BATTERY = 0x2000000
_SENSOR_PREARM = 0x10000000
_SENSORS_PRESENT = _SENSORS_BASE | _SENSOR_GPS | _SENSOR_BATTERY | _SENSOR_PREARM

STREAM_MSG_IDS: dict[int, str] = {
    1: "SYS_STATUS",
    2: "SYSTEM_TIME",
    24: "GPS_RAW_INT",
    30: "ATTITUDE",
    31: "ATTITUDE_QUATERNION",
    32: "LOCAL_POSITION_NED",
    33: "GLOBAL_POSITION_INT",
    42: "MISSION_CURRENT",
    74: "VFR_HUD",
    147: "BATTERY_STATUS",
    242: "HOME_POSITION",
    245: "EXTENDED_SYS_STATE",
}
_MSG_HEARTBEAT = 0
_MSG_AUTOPILOT_VERSION = 148
# Commands whose repetition would do something twice (payload actions, reboot, mission restart).
# A resend of one of these within command_dedupe_wall_s gets the first ACK replayed instead.
# Every other command is idempotent by nature (arm when armed, mode when in that mode...) and
# simply runs again, so a user's deliberate repeat is never swallowed.
_MAX_ITEMS = 5000  # PX4's dataman holds a few thousand items
_ONCE_COMMANDS = frozenset({185, 187, 211, 42600, 246, 300, 224})


def _int(value: float) -> int:
    """A float command param as int; NaN (MAVSDK's "unset") counts as 0."""
    return int(value) if math.isfinite(value) else 0


def _float_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, vehicle: SimVehicle) -> None:
        self._vehicle = vehicle

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._vehicle._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while no GCS listens: PX4 keeps sending too
        pass


class _Upload:
    """An in-progress MISSION_COUNT -> MISSION_ITEM_INT transfer."""

    def __init__(self, *, mission_type: int, count: int, partner: tuple[int, int], now: float) -> None:
        self.mission_type = mission_type
        self.count = count
        self.partner = partner
        self.items: list[MissionItem] = []
        self.last_activity = now
        self.last_request = now


@dataclass(frozen=True, slots=True)
class Received:
    """One command or upload the vehicle accepted for processing, with the wall time it arrived."""

    at: float
    kind: str  # "command", "mission", "fence", "rally"
    command: int | None = None
    params: tuple[float, ...] = ()
    frame: int | None = None
    items: tuple[MissionItem, ...] = ()
    battery_pct: float | None = None  # the vehicle's charge when it arrived
    alt_rel_m: float | None = None  # its height above home then


class SimVehicle:
    """A PX4-like multicopter reachable over MAVLink 2/UDP; see sim/README.md for behaviour."""

    def __init__(
        self,
        *,
        index: int,
        sysid: int,
        host: str,
        port: int,
        extra_ports: tuple[int, ...] = (),
        home: tuple[float, float, float],
        speed: float,
        config: SimConfig,
        rng: random.Random,
    ) -> None:
        self.index = index
        self.sysid = sysid
        self.host = host
        self.port = port
        self.speed = speed
        self.config = config
        self._rng = rng
        self.params = ParamStore({"BAT1_N_CELLS": config.battery_cells, **config.params})
        self.autopilot = Autopilot(
            home_lat=home[0], home_lon=home[1], home_amsl_m=home[2], config=config, params=self.params
        )
        self.autopilot.payload_board.label = f"sim sysid={sysid}"
        self.commands_received: list[tuple[int, tuple[float, ...]]] = []
        # What the vehicle was sent and when (wall clock), as a flight log would keep it.
        self.received: list[Received] = []
        self._mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=_COMPID)
        self._parser = mavlink.MAVLink(None)
        self._parser.robust_parsing = True
        self._transport: asyncio.DatagramTransport | None = None
        self._gcs_addr: tuple[str, int] = (host, port)
        # further ground stations streamed to as well (several service instances, a router's endpoints)
        self._extra_gcs = tuple((host, p) for p in extra_ports)
        self._loss_pct = 0.0
        self._blackout_until = 0.0
        self._rebooting = False
        self._boot_offset_s = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_heartbeat = 0.0
        self._sent_flight_state: tuple[str, bool, int] | None = None  # as the last heartbeat showed it
        self._streams: dict[str, list[float]] = {}
        self._reset_streams()
        self._upload: _Upload | None = None
        self._last_upload: tuple[int, int, tuple[int, int], int] | None = None
        self._refuse_mission_start_until = 0.0
        self._recent_once: dict[tuple[Any, ...], tuple[float, Outcome]] = {}
        self.camera: SimCamera | None = None  # set by sim.camera.attach_cameras when the fleet has cameras
        self._global_position_msg = self._mav.global_position_int_encode(0, 0, 0, 0, 0, 0, 0, 0, 0)
        self._attitude_msg = self._mav.attitude_encode(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        self._stream_senders: dict[str, Callable[[], None]] = {
            "SYS_STATUS": self._send_sys_status,
            "GLOBAL_POSITION_INT": self._send_global_position,
            "LOCAL_POSITION_NED": self._send_local_position,
            "ATTITUDE": self._send_attitude,
            "ATTITUDE_QUATERNION": self._send_attitude_quaternion,
            "GPS_RAW_INT": self._send_gps_raw,
            "VFR_HUD": self._send_vfr_hud,
            "EXTENDED_SYS_STATE": self._send_extended_sys_state,
            "BATTERY_STATUS": self._send_battery_status,
            "MISSION_CURRENT": self._send_mission_current,
            "HOME_POSITION": self._send_home_position,
            "SYSTEM_TIME": self._send_system_time,
        }

    # ------------------------------------------------------------------ public interface
    @property
    def sim_time_s(self) -> float:
        """Simulated seconds since the fleet started."""
        return self.autopilot.time_s

    @property
    def state(self) -> VehicleState:
        """A frozen snapshot of position, mode, battery and mission progress."""
        return self.autopilot.snapshot()

    @property
    def local_port(self) -> int | None:
        """The UDP port the vehicle sends from."""
        if self._transport is None:
            return None
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def gcs_address(self) -> tuple[str, int]:
        """Where telemetry goes: the source of the last packet received, else host:port."""
        return self._gcs_addr

    def mission_items(self) -> list[MissionItem]:
        """The stored mission as uploaded."""
        return list(self.autopilot.mission)

    def fence_items(self) -> list[MissionItem]:
        """The stored geofence items as uploaded."""
        return list(self.autopilot.fence_items)

    def rally_items(self) -> list[MissionItem]:
        """The stored rally points as uploaded."""
        return list(self.autopilot.rally_items)

    @property
    def fence(self) -> Geofence:
        """The uploaded geofence (empty when none)."""
        return self.autopilot.geofence

    @property
    def payload_reports(self) -> list[PayloadReport]:
        """What the speaker and the spotlight did (sim/payload.py), oldest first."""
        return list(self.autopilot.payload_board.reports)

    @property
    def payload_events(self) -> list[PayloadEvent]:
        """Actuator/gripper/winch actions so far."""
        return list(self.autopilot.payload_events)

    def set_packet_loss(self, percent: float) -> None:
        """Drop `percent` % of packets in both directions."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"packet loss percent must be within 0..100, got {percent}")
        self._loss_pct = float(percent)

    def blackout(self, seconds: float) -> None:
        """No packets either way for `seconds` wall seconds."""
        if seconds < 0:
            raise ValueError(f"blackout seconds must be >= 0, got {seconds}")
        self._blackout_until = time.monotonic() + seconds

    def set_gps_loss(self, lost: bool) -> None:
        """Lose (True) or regain (False) GPS: health bit, position validity, failsafe."""
        self.autopilot.set_gps(not lost)

    def battery_sag(self, percent: float) -> None:
        """Sudden loss of `percent` points of remaining charge."""
        self.autopilot.battery.sag(percent)

    def set_wind(self, north_m_s: float, east_m_s: float) -> None:
        """A constant wind vector (where the air moves to)."""
        self.autopilot.wind_n = float(north_m_s)
        self.autopilot.wind_e = float(east_m_s)

    async def reboot(self) -> None:
        """Restart the flight controller: link silent for reboot_silence_s (simulated), then back."""
        self._rebooting = True
        try:
            await asyncio.sleep(self.config.reboot_silence_s / self.speed)
        finally:
            self._finish_reboot()

    # ------------------------------------------------------------------ lifecycle (used by SimFleet)
    def attach(self, transport: asyncio.DatagramTransport) -> None:
        """Give the vehicle its UDP socket and say hello."""
        self._transport = transport
        self._next_heartbeat = 0.0
        self._send_home_position()

    async def close(self) -> None:
        """Cancel background work and close the socket."""
        if self.camera is not None:
            await self.camera.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"sim:{self.sysid}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finish_reboot(self) -> None:
        ap = self.autopilot
        self._rebooting = False
        self._boot_offset_s = ap.time_s
        self._reset_streams()
        self._upload = None
        self._gcs_addr = (self.host, self.port)
        if not ap.in_air:
            ap.armed = False
            ap.mode = "hold"
            ap.mission_seq = 0
            if ap.mission:
                ap.mission_state = MISSION_STATE_NOT_STARTED
        else:
            ap.mode = "hold"
            ap._hold_target = None
            if ap.mission:
                ap.mission_state = MISSION_STATE_PAUSED
        ap.mission_changed = True
        self._next_heartbeat = 0.0
        self._send_home_position()

    def _reset_streams(self) -> None:
        rates = dict(DEFAULT_STREAM_HZ)
        rates.update(self.config.stream_hz)
        # [interval_s, next_due]; a random phase spreads a fleet's streams over different ticks
        phase = self._rng.random()
        now = time.monotonic()
        self._streams = {
            name: [0.0 if hz <= 0 else 1.0 / hz, now + (phase / hz if hz > 0 else 0.0)]
            for name, hz in rates.items()
        }
        self._pair_system_time()

    # ------------------------------------------------------------------ the tick
    def tick(self, now: float, dt_sim: float) -> None:
        """Advance physics by `dt_sim` and send what is due at wall time `now`."""
        ap = self.autopilot
        ap.step(dt_sim)
        if self._rebooting:
            ap.reached.clear()
            ap.status_texts.clear()
            return
        # PX4 in lockstep heartbeats on simulated time: a ground station sees a mode, arming or landed-state
        # change within a simulated second. A 1 Hz wall-clock heartbeat showed it up to `speed` seconds late
        # (mode-change, landing and take-off times read long or short by that): send them as they change.
        flight_state = (ap.mode, ap.armed, ap.landed_state)
        if flight_state != self._sent_flight_state and self._next_heartbeat != 0.0:
            self._sent_flight_state = flight_state
            self._send_heartbeat()
            self._send_extended_sys_state()
        if now >= self._next_heartbeat:
            self._sent_flight_state = flight_state
            self._next_heartbeat = now + 1.0 if self._next_heartbeat == 0.0 else self._next_heartbeat + 1.0
            if self._next_heartbeat < now:
                self._next_heartbeat = now + 1.0
            self._send_heartbeat()
        # An item reached is an event: it goes out before any stream that already shows its consequence
        # (a MISSION_CURRENT reading "complete" never precedes the last MISSION_ITEM_REACHED).
        while ap.reached:
            self._send(self._mav.mission_item_reached_encode(ap.reached.popleft()))
        for name, slot in self._streams.items():
            interval = slot[0]
            if interval > 0.0 and now >= slot[1]:
                slot[1] += interval
                if slot[1] < now:
                    # behind by more than one interval (a stalled loop): keep the phase, skip the backlog
                    slot[1] += interval * int((now - slot[1]) / interval + 1)
                self._stream_senders[name]()
        while ap.status_texts:
            severity, text = ap.status_texts.popleft()
            self._send_statustext(severity, text)
        if ap.mission_changed:
            ap.mission_changed = False
            self._send_mission_current()
        if ap.home_changed:
            ap.home_changed = False
            self._send_home_position()
        if self._upload is not None:
            self._upload_housekeeping(now)
        if self.camera is not None:
            self.camera.tick(now)

    # ------------------------------------------------------------------ I/O
    def _dropped(self) -> bool:
        if self._rebooting:
            return True
        if self._blackout_until and time.monotonic() < self._blackout_until:
            return True
        return self._loss_pct > 0.0 and self._rng.random() * 100.0 < self._loss_pct

    def _send(self, msg: Any) -> None:
        buf = msg.pack(self._mav)
        self._mav.seq = (self._mav.seq + 1) & 0xFF
        if self._transport is None or self._dropped():
            return
        self._transport.sendto(buf, self._gcs_addr)
        for addr in self._extra_gcs:
            self._transport.sendto(buf, addr)

    def send_datagram(self, buf: bytes) -> None:
        """Send packed MAVLink of another component of this vehicle (the camera) over its link."""
        if self._transport is not None and not self._dropped():
            self._transport.sendto(buf, self._gcs_addr)
            for addr in self._extra_gcs:
                self._transport.sendto(buf, addr)

    def _on_datagram(self, data: bytes, addr: tuple[Any, int]) -> None:
        if self._dropped():
            return
        if (addr[0], addr[1]) not in self._extra_gcs:
            self._gcs_addr = (addr[0], addr[1])
        try:
            msgs = self._parser.parse_buffer(data)
        except mavlink.MAVError:
            return
        if not msgs:
            return
        for msg in msgs:
            if self.camera is not None and self.camera.handle(msg):
                continue
            handler = self._handlers.get(msg.get_type())
            if handler is None:
                continue
            try:
                handler(self, msg)
            except Exception:
                # a malformed request must not take the vehicle down; the log names it
                _log.exception("sysid %d: failed to handle %s", self.sysid, msg)

    def _for_me(self, msg: Any) -> bool:
        return msg.target_system in (0, self.sysid)

    def _send_statustext(self, severity: int, text: str) -> None:
        self._send(self._mav.statustext_encode(severity, text.encode()[:50]))

    # ------------------------------------------------------------------ streams
    def _boot_ms(self) -> int:
        return int((self.autopilot.time_s - self._boot_offset_s) * 1000.0) & 0xFFFFFFFF

    def _send_heartbeat(self) -> None:
        ap = self.autopilot
        base = _BASE_CUSTOM
        if ap.armed:
            base |= _BASE_SAFETY_ARMED
        if ap.mode not in ("manual", "altctl", "posctl"):
            base |= _BASE_AUTO
        self._send(
            self._mav.heartbeat_encode(
                _MAV_TYPE_QUADROTOR,
                _MAV_AUTOPILOT_PX4,
                base,
                px4_custom_mode(ap.mode),
                _MAV_STATE_ACTIVE if ap.armed else _MAV_STATE_STANDBY,
                3,
            )
        )

    def _health_bits(self) -> int:
        ap = self.autopilot
        health = _SENSORS_BASE | _SENSOR_BATTERY
        if ap.gps_ok:
            health |= _SENSOR_GPS
        if ap.battery.soc <= self.params["BAT_LOW_THR"]:
            health &= ~_SENSOR_BATTERY
        if ap.prearm_failure() is None:
            health |= _SENSOR_PREARM
        return health

    def _send_sys_status(self) -> None:
        bat = self.autopilot.battery
        self._send(
            self._mav.sys_status_encode(
                _SENSORS_PRESENT,
                _SENSORS_PRESENT,
                self._health_bits(),
                150,
                int(bat.voltage_v * 1000),
                int(bat.current_a * 100),
                int(bat.soc * 100),
                0,
                0,
                0,
                0,
                0,
                0,
            )
        )

    def _send_global_position(self) -> None:
        ap = self.autopilot
        if not ap.gps_ok:
            return
        lat, lon = ap.latlon()
        # the 10 Hz streams reuse one message object each: set fields, pack
        msg = self._global_position_msg
        msg.time_boot_ms = self._boot_ms()
        msg.lat = int(lat * 1e7)
        msg.lon = int(lon * 1e7)
        msg.alt = int(ap.amsl_m * 1000)
        msg.relative_alt = int(ap.alt_rel_m * 1000)
        msg.vx = int(ap.vn * 100)
        msg.vy = int(ap.ve * 100)
        msg.vz = int(-ap.vu * 100)
        msg.hdg = int(ap.heading_deg * 100) % 36000
        self._send(msg)

    def _send_local_position(self) -> None:
        ap = self.autopilot
        if not ap.gps_ok:
            return
        self._send(
            self._mav.local_position_ned_encode(
                self._boot_ms(), ap.north_m, ap.east_m, -(ap.amsl_m - ap.ground_amsl_m), ap.vn, ap.ve, -ap.vu
            )
        )

    def _attitude(self) -> tuple[float, float, float]:
        ap = self.autopilot
        yaw = math.radians(ap.heading_deg)
        air_n = ap.vn - ap.wind_n if ap.in_air else 0.0
        air_e = ap.ve - ap.wind_e if ap.in_air else 0.0
        # body-frame airspeed tilts a multicopter: nose down flying forward, roll into the side wind
        fwd = air_n * math.cos(yaw) + air_e * math.sin(yaw)
        right = -air_n * math.sin(yaw) + air_e * math.cos(yaw)
        return 0.02 * right, -0.02 * fwd, yaw if yaw <= math.pi else yaw - 2 * math.pi

    def _send_attitude(self) -> None:
        msg = self._attitude_msg
        msg.roll, msg.pitch, msg.yaw = self._attitude()
        msg.time_boot_ms = self._boot_ms()
        self._send(msg)

    def _send_attitude_quaternion(self) -> None:
        roll, pitch, yaw = self._attitude()
        cr, sr = math.cos(roll / 2), math.sin(roll / 2)
        cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
        cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
        self._send(
            self._mav.attitude_quaternion_encode(
                self._boot_ms(),
                cr * cp * cy + sr * sp * sy,
                sr * cp * cy - cr * sp * sy,
                cr * sp * cy + sr * cp * sy,
                cr * cp * sy - sr * sp * cy,
                0.0,
                0.0,
                0.0,
            )
        )

    def _send_gps_raw(self) -> None:
        ap = self.autopilot
        lat, lon = ap.latlon()
        ok = ap.gps_ok
        self._send(
            self._mav.gps_raw_int_encode(
                int(ap.time_s * 1e6),
                3 if ok else 0,
                int(lat * 1e7) if ok else 0,
                int(lon * 1e7) if ok else 0,
                int(ap.amsl_m * 1000) if ok else 0,
                80 if ok else 9999,
                120 if ok else 9999,
                int(math.hypot(ap.vn, ap.ve) * 100) if ok else 0,
                int(ap.heading_deg * 100) % 36000 if ok else 65535,
                16 if ok else 0,
            )
        )

    def _send_vfr_hud(self) -> None:
        ap = self.autopilot
        air = math.hypot(ap.vn - ap.wind_n, ap.ve - ap.wind_e) if ap.in_air else 0.0
        throttle = int(min(100, ap.battery.power_w / 4)) if ap.armed else 0
        self._send(
            self._mav.vfr_hud_encode(
                air, math.hypot(ap.vn, ap.ve), int(ap.heading_deg) % 360, throttle, ap.amsl_m, ap.vu
            )
        )

    def _send_extended_sys_state(self) -> None:
        self._send(self._mav.extended_sys_state_encode(0, self.autopilot.landed_state))

    def _send_battery_status(self) -> None:
        bat = self.autopilot.battery
        cell_mv = int(bat.cell_v * 1000)
        cells = [cell_mv] * bat.cells + [65535] * (10 - bat.cells)
        power = bat.power_w if bat.power_w > 0 else 1.0
        self._send(
            self._mav.battery_status_encode(
                0,
                1,
                1,
                2500,
                cells[:10],
                int(bat.current_a * 100),
                int(bat.consumed_mah),
                int((bat.capacity_wh - bat.energy_wh) * 36),
                int(bat.soc * 100),
                int(bat.energy_wh * 3600 / power) if self.autopilot.armed else 0,
                self._charge_state(),
            )
        )

    def _charge_state(self) -> int:
        soc = self.autopilot.battery.soc
        if soc <= self.params["BAT_EMERGEN_THR"]:
            return 4  # EMERGENCY
        if soc <= self.params["BAT_CRIT_THR"]:
            return 3  # CRITICAL
        if soc <= self.params["BAT_LOW_THR"]:
            return 2  # LOW
        return 1  # OK

    def _send_mission_current(self) -> None:
        ap = self.autopilot
        self._send(
            self._mav.mission_current_encode(
                ap.mission_seq, len(ap.mission), ap.mission_state, 1 if ap.mode == "mission" else 0
            )
        )

    def _send_home_position(self) -> None:
        ap = self.autopilot
        lat, lon = ap.home_latlon
        self._send(
            self._mav.home_position_encode(
                int(lat * 1e7),
                int(lon * 1e7),
                int(ap.home_amsl_m * 1000),
                ap.home_ne[0],
                ap.home_ne[1],
                -(ap.home_amsl_m - ap.ground_amsl_m),
                [1.0, 0.0, 0.0, 0.0],
                0.0,
                0.0,
                0.0,
                int(ap.time_s * 1e6),
            )
        )

    def _send_system_time(self) -> None:
        self._send(self._mav.system_time_encode(int(time.time() * 1e6), self._boot_ms()))

    def _send_autopilot_version(self) -> None:
        self._send(
            self._mav.autopilot_version_encode(
                _CAPABILITIES,
                _PX4_VERSION,
                0,
                0,
                0,
                [0] * 8,
                [0] * 8,
                [0] * 8,
                0x26AC,
                0x0011,
                0x5357_0000_0000 + self.sysid,
            )
        )

    # ------------------------------------------------------------------ commands
    def _handle_command_long(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        params = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
        key = (msg.command, struct.pack("<7f", *params))
        self._command(msg, msg.command, params, key, msg.confirmation, frame=None)

    def _handle_command_int(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        params = (msg.param1, msg.param2, msg.param3, msg.param4, float(msg.x), float(msg.y), msg.z)
        key = (msg.command, msg.frame, struct.pack("<4fiif", *params[:4], msg.x, msg.y, msg.z))
        self._command(msg, msg.command, params, key, 0, frame=msg.frame)

    def _command(
        self,
        msg: Any,
        command: int,
        params: tuple[float, ...],
        key: tuple[Any, ...],
        confirmation: int,
        *,
        frame: int | None,
    ) -> None:
        self.commands_received.append((command, params))
        self.received.append(
            Received(
                at=time.time(),
                kind="command",
                command=command,
                params=params,
                frame=frame,
                battery_pct=self.autopilot.battery.soc * 100.0,
                alt_rel_m=self.autopilot.amsl_m - self.autopilot.home_amsl_m,
            )
        )
        now = time.monotonic()
        window = self.config.command_dedupe_wall_s
        if self._recent_once and len(self._recent_once) > 8:
            self._recent_once = {k: v for k, v in self._recent_once.items() if now - v[0] < window}
        # MAVSDK resends with confirmation 0, so a resend is recognised by its bytes and timing;
        # a refused command had no effect and is simply evaluated again
        recent = self._recent_once.get(key) if command in _ONCE_COMMANDS else None
        retransmission = (
            recent is not None
            and recent[1].result == ACCEPTED
            and (now - recent[0] < window or confirmation > 0)
        )
        if retransmission:
            assert recent is not None
            outcome = recent[1]
        else:
            outcome = self._execute(command, params, frame)
            if command in _ONCE_COMMANDS:
                self._recent_once[key] = (now, outcome)
        self._send(
            self._mav.command_ack_encode(
                command, outcome.result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()
            )
        )
        if outcome.reason and not retransmission:
            self._send_statustext(SEV_WARNING if outcome.result != ACCEPTED else SEV_INFO, outcome.reason)
        if outcome.result == ACCEPTED and not retransmission:
            self._after_command(command, params)

    def _position_args(
        self, params: tuple[float, ...], frame: int | None
    ) -> tuple[float | None, float | None, float | None]:
        """lat, lon, z from params 5-7 (COMMAND_LONG degrees, COMMAND_INT degE7).

        Like PX4, z of DO_REPOSITION/DO_ORBIT is AMSL whatever the frame says: MAVSDK sends
        DO_ORBIT with frame GLOBAL_RELATIVE_ALT and an absolute altitude.
        """
        x, y, z = params[4], params[5], params[6]
        if frame is None:
            lat, lon = _float_or_none(x), _float_or_none(y)
            if lat == 0.0 and lon == 0.0:
                lat = lon = None
            return lat, lon, _float_or_none(z)
        if (x == 0 and y == 0) or abs(x) >= 2**31 - 1:
            return None, None, _float_or_none(z)
        return x / 1e7, y / 1e7, _float_or_none(z)

    def _execute(self, command: int, p: tuple[float, ...], frame: int | None) -> Outcome:
        ap = self.autopilot
        if command == 400:  # COMPONENT_ARM_DISARM
            force = _int(p[1]) == _FORCE_MAGIC
            return ap.arm(force=force) if p[0] >= 0.5 else ap.disarm(force=force)
        if command == 185:  # DO_FLIGHTTERMINATION
            return ap.terminate() if p[0] >= 0.5 else Outcome(DENIED, "termination needs param1 = 1")
        if command == 22:  # NAV_TAKEOFF; PX4 reads param7 as AMSL
            return ap.takeoff(alt_amsl_m=_float_or_none(p[6]))
        if command == 21:  # NAV_LAND
            return ap.land()
        if command == 20:  # NAV_RETURN_TO_LAUNCH
            return ap.set_mode("return")
        if command == 17:  # NAV_LOITER_UNLIM
            return ap.set_mode("hold")
        if command == 176:  # DO_SET_MODE
            return self._do_set_mode(p)
        if command == 192:  # DO_REPOSITION
            lat, lon, amsl = self._position_args(p, frame)
            speed = p[0] if math.isfinite(p[0]) and p[0] > 0 else None
            # PX4 reads DO_REPOSITION's yaw in radians (MAVSDK converts its degrees).
            yaw = math.degrees(p[3]) if math.isfinite(p[3]) else None
            return ap.reposition(lat=lat, lon=lon, amsl_m=amsl, speed_m_s=speed, yaw_deg=yaw)
        if command == 34:  # DO_ORBIT
            lat, lon, amsl = self._position_args(p, frame)
            speed = p[1] if math.isfinite(p[1]) and p[1] > 0 else None
            return ap.orbit(lat=lat, lon=lon, amsl_m=amsl, radius_m=p[0], speed_m_s=speed)
        if command == 178:  # DO_CHANGE_SPEED
            return ap.change_speed(p[1])
        if command == 187:  # DO_SET_ACTUATOR
            return _OK_ACCEPTED
        if command in (211, 42600):  # DO_GRIPPER, DO_WINCH
            return _OK_ACCEPTED
        if command == 179:  # DO_SET_HOME
            if p[0] >= 0.5:
                lat, lon = ap.latlon()
                ap.set_home(lat=lat, lon=lon, amsl_m=ap.amsl_m)
                return _OK_ACCEPTED
            lat, lon, amsl = self._position_args(p, frame)
            if lat is None or lon is None or amsl is None:
                return Outcome(DENIED, "Set home denied: position missing")
            ap.set_home(lat=lat, lon=lon, amsl_m=amsl)
            return _OK_ACCEPTED
        if command == 224:  # DO_SET_MISSION_CURRENT
            if ap.set_mission_current(_int(p[0])):
                return _OK_ACCEPTED
            return Outcome(DENIED, "invalid mission item")
        if command == 300:  # MISSION_START
            first = _int(p[0]) if math.isfinite(p[0]) else 0
            if ap.mission and not ap.set_mission_current(first):
                return Outcome(DENIED, f"Mission start denied: no item {first}")
            return ap.set_mode("mission")
        if command == 252:  # DO_PAUSE_CONTINUE
            return ap.set_mode("mission" if p[0] >= 0.5 else "hold")
        if command == 246:  # PREFLIGHT_REBOOT_SHUTDOWN
            if _int(p[0]) != 1:
                return Outcome(DENIED, "only autopilot reboot is supported")
            if ap.armed:
                return Outcome(DENIED, "Reboot denied: armed")
            return _OK_ACCEPTED
        if command == 511:  # SET_MESSAGE_INTERVAL
            return self._set_message_interval(_int(p[0]), p[1])
        if command == 512:  # REQUEST_MESSAGE
            return self._can_send(_int(p[0]))
        if command == 520:  # REQUEST_AUTOPILOT_CAPABILITIES
            return _OK_ACCEPTED
        if command == 410:  # GET_HOME_POSITION
            return _OK_ACCEPTED
        return Outcome(UNSUPPORTED)

    def _after_command(self, command: int, p: tuple[float, ...]) -> None:
        """Replies that follow the ACK (PX4 acks first, then sends the data)."""
        if command == 187:
            values = list(p[:6])
            base = _int(p[6]) * 6 if math.isfinite(p[6]) else 0
            for i, value in enumerate(values, start=1):
                if math.isfinite(value):
                    self.autopilot.record_payload(index=base + i, value=value, source="command")
        elif command == 211:
            self.autopilot.record_payload(index=_int(p[0]), value=p[1], source="command", kind="gripper")
        elif command == 42600:
            self.autopilot.record_payload(index=_int(p[0]), value=p[1], source="command", kind="winch")
        elif command == 512:
            self._send_requested(_int(p[0]))
        elif command == 520:
            self._send_autopilot_version()
        elif command == 410:
            self._send_home_position()
        elif command == 246:
            self._spawn(self.reboot(), "reboot")

    def _do_set_mode(self, p: tuple[float, ...]) -> Outcome:
        if not _int(p[0]) & _BASE_CUSTOM:
            return Outcome(DENIED, "only PX4 custom modes are supported")
        mode = MODE_BY_MAIN_SUB.get((_int(p[1]), _int(p[2])))
        if mode is None and _int(p[1]) in (1, 2, 3) and _int(p[2]) == 0:
            mode = MODE_BY_MAIN_SUB[(_int(p[1]), 0)]
        if mode is None:
            return Outcome(DENIED, f"unknown PX4 mode main={_int(p[1])} sub={_int(p[2])}")
        return self._switch_mode(mode)

    def _switch_mode(self, mode: str) -> Outcome:
        ap = self.autopilot
        if mode == "mission" and ap.mode != "mission" and time.monotonic() < self._refuse_mission_start_until:
            # real PX4 refuses a mission switch right after an upload while navigator reloads it
            self._refuse_mission_start_until = 0.0
            return Outcome(TEMPORARILY_REJECTED, "Switching to Mission is currently not available")
        return ap.set_mode(mode)

    def _handle_set_mode(self, msg: Any) -> None:
        if msg.target_system != self.sysid:
            return
        main, sub = (msg.custom_mode >> 16) & 0xFF, (msg.custom_mode >> 24) & 0xFF
        mode = MODE_BY_MAIN_SUB.get((main, sub))
        if mode is not None:
            self._switch_mode(mode)

    def _set_message_interval(self, msg_id: int, interval_us: float) -> Outcome:
        if msg_id == _MSG_HEARTBEAT:
            return _OK_ACCEPTED
        name = STREAM_MSG_IDS.get(msg_id)
        if name is None:
            return Outcome(DENIED, f"cannot stream message {msg_id}")
        slot = self._streams[name]
        if interval_us == -1:
            slot[0] = 0.0
        elif interval_us == 0:
            hz = self.config.stream_hz.get(name, DEFAULT_STREAM_HZ[name])
            slot[0] = 1.0 / hz if hz > 0 else 0.0
        elif interval_us > 0:
            # capped at the tick rate: one message per stream per physics tick at most
            slot[0] = max(interval_us / 1e6, 1.0 / self.config.tick_hz)
        else:
            return Outcome(DENIED, f"invalid interval {interval_us}")
        slot[1] = time.monotonic()
        self._pair_system_time()
        return _OK_ACCEPTED

    def _pair_system_time(self) -> None:
        # At the position's rate SYSTEM_TIME shares its schedule, so it goes out in the same tick right after
        # each GLOBAL_POSITION_INT (the stream order) and dates that position.
        position, system_time = self._streams["GLOBAL_POSITION_INT"], self._streams["SYSTEM_TIME"]
        if system_time[0] == position[0]:
            system_time[1] = position[1]

    def _can_send(self, msg_id: int) -> Outcome:
        if msg_id in STREAM_MSG_IDS or msg_id in (_MSG_HEARTBEAT, _MSG_AUTOPILOT_VERSION):
            return _OK_ACCEPTED
        return Outcome(UNSUPPORTED)

    def _send_requested(self, msg_id: int) -> None:
        if msg_id == _MSG_AUTOPILOT_VERSION:
            self._send_autopilot_version()
        elif msg_id == _MSG_HEARTBEAT:
            self._send_heartbeat()
        else:
            self._stream_senders[STREAM_MSG_IDS[msg_id]]()

    # ------------------------------------------------------------------ parameters
    def _send_param(self, name: str) -> None:
        spec = self.params.spec(name)
        self._send(
            self._mav.param_value_encode(
                name.encode(),
                encode_param_value(self.params[name], spec.param_type),
                spec.param_type,
                len(self.params),
                self.params.index_of(name),
            )
        )

    def _handle_param_request_list(self, msg: Any) -> None:
        if self._for_me(msg):
            for name in self.params.names():
                self._send_param(name)

    def _handle_param_request_read(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        name = msg.param_id if msg.param_index < 0 else self.params.name_at(msg.param_index)
        if isinstance(name, str) and name in self.params:
            self._send_param(name)

    def _handle_param_set(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        name = msg.param_id
        if name not in self.params:
            self._send_statustext(SEV_WARNING, f"unknown parameter {name}"[:50])
            return
        spec = self.params.spec(name)
        value = decode_param_value(msg.param_value, spec.param_type)
        if math.isfinite(value):
            self.params.set(name, value)
        self._send_param(name)

    # ------------------------------------------------------------------ mission protocol
    def _stored(self, mission_type: int) -> list[MissionItem]:
        ap = self.autopilot
        if mission_type == FENCE:
            return ap.fence_items
        if mission_type == RALLY:
            return ap.rally_items
        return ap.mission

    def _mission_ack(self, partner: tuple[int, int], result: int, mission_type: int) -> None:
        self._send(self._mav.mission_ack_encode(partner[0], partner[1], result, mission_type))

    def _request_item(self, up: _Upload) -> None:
        up.last_request = time.monotonic()
        self._send(
            self._mav.mission_request_int_encode(up.partner[0], up.partner[1], len(up.items), up.mission_type)
        )

    def _handle_mission_count(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        partner = (msg.get_srcSystem(), msg.get_srcComponent())
        mission_type = msg.mission_type
        if mission_type not in (MISSION, FENCE, RALLY):
            self._mission_ack(partner, mavlink.MAV_MISSION_UNSUPPORTED, mission_type)
            return
        # A count while a transfer runs restarts it: before any item it is MAVSDK resending a lost
        # count; after items it is a new upload from a GCS that gave up on the old one.
        if msg.count > _MAX_ITEMS:
            self._mission_ack(partner, mavlink.MAV_MISSION_NO_SPACE, mission_type)
            return
        if msg.count == 0:
            self._upload = None
            self._commit(mission_type, [])
            self._mission_ack(partner, MISSION_ACCEPTED, mission_type)
            return
        self._upload = _Upload(
            mission_type=mission_type, count=msg.count, partner=partner, now=time.monotonic()
        )
        self._request_item(self._upload)

    def _handle_mission_item_int(self, msg: Any) -> None:
        self._receive_item(msg, msg.x, msg.y)

    def _handle_mission_item(self, msg: Any) -> None:
        frame_is_global = msg.frame in (0, 3, 5, 6, 10, 11)
        x = round(msg.x * 1e7) if frame_is_global else int(msg.x)
        y = round(msg.y * 1e7) if frame_is_global else int(msg.y)
        self._receive_item(msg, x, y)

    def _receive_item(self, msg: Any, x: int, y: int) -> None:
        if not self._for_me(msg):
            return
        up = self._upload
        if up is None:
            last = self._last_upload
            if last is not None and last[0] == msg.mission_type and msg.seq == last[1] - 1:
                # our ACK got lost and the last item was resent: ack again
                self._mission_ack(last[2], last[3], msg.mission_type)
            return
        if msg.mission_type != up.mission_type:
            return
        if msg.seq != len(up.items):
            # a duplicate or out-of-order item is ignored, as PX4 does; the request timer asks again.
            # Re-requesting on duplicates would make MAVSDK resend and burn its retry budget.
            return
        item = MissionItem(
            seq=msg.seq,
            frame=msg.frame,
            command=msg.command,
            current=msg.current,
            autocontinue=msg.autocontinue,
            param1=msg.param1,
            param2=msg.param2,
            param3=msg.param3,
            param4=msg.param4,
            x=x,
            y=y,
            z=msg.z,
            mission_type=up.mission_type,
        )
        up.last_activity = time.monotonic()
        result = validate_item(item)
        if result != MISSION_ACCEPTED:
            self._finish_upload(up, result)
            self._send_statustext(SEV_WARNING, f"Mission rejected: item {msg.seq} cmd {msg.command}"[:50])
            return
        up.items.append(item)
        if len(up.items) < up.count:
            self._request_item(up)
            return
        result = validate_plan(up.items)
        if result == MISSION_ACCEPTED:
            self._commit(up.mission_type, up.items)
        self._finish_upload(up, result)

    def _finish_upload(self, up: _Upload, result: int) -> None:
        self._upload = None
        self._last_upload = (up.mission_type, up.count, up.partner, result)
        self._mission_ack(up.partner, result, up.mission_type)

    def _commit(self, mission_type: int, items: list[MissionItem]) -> None:
        ap = self.autopilot
        kind = {MISSION: "mission", FENCE: "fence"}.get(mission_type, "rally")
        self.received.append(Received(at=time.time(), kind=kind, items=tuple(items)))
        if mission_type == MISSION:
            ap.replace_mission(items)
            self._refuse_mission_start_until = time.monotonic() + self.config.mission_start_refusal_wall_s
            if items:
                self._send_statustext(SEV_INFO, f"Mission accepted: {len(items)} items")
        elif mission_type == FENCE:
            ap.replace_fence(items, build_geofence(items, ap.frame))
        else:
            ap.rally_items = items

    def _upload_housekeeping(self, now: float) -> None:
        up = self._upload
        if up is None:
            return
        if now - up.last_activity > self.config.mission_upload_timeout_wall_s:
            self._upload = None
            self._send_statustext(SEV_WARNING, "Mission upload timed out")
            self._mission_ack(up.partner, mavlink.MAV_MISSION_OPERATION_CANCELLED, up.mission_type)
        elif now - up.last_request > self.config.mission_rerequest_wall_s:
            self._request_item(up)

    def _handle_mission_request_list(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        items = self._stored(msg.mission_type)
        self._send(
            self._mav.mission_count_encode(
                msg.get_srcSystem(), msg.get_srcComponent(), len(items), msg.mission_type
            )
        )

    def _handle_mission_request_int(self, msg: Any) -> None:
        self._send_item(msg, as_int=True)

    def _handle_mission_request(self, msg: Any) -> None:
        self._send_item(msg, as_int=False)

    def _send_item(self, msg: Any, *, as_int: bool) -> None:
        if not self._for_me(msg):
            return
        items = self._stored(msg.mission_type)
        partner = (msg.get_srcSystem(), msg.get_srcComponent())
        if self._upload is not None and self._upload.mission_type == msg.mission_type:
            return
        if not 0 <= msg.seq < len(items):
            self._mission_ack(partner, MISSION_INVALID_SEQUENCE, msg.mission_type)
            return
        it = items[msg.seq]
        current = 1 if msg.mission_type == MISSION and it.seq == self.autopilot.mission_seq else 0
        if as_int:
            out = self._mav.mission_item_int_encode(
                partner[0], partner[1], it.seq, it.frame, it.command, current, it.autocontinue,
                it.param1, it.param2, it.param3, it.param4, it.x, it.y, it.z, it.mission_type,
            )  # fmt: skip
        else:
            scale = 1e7 if it.frame in (0, 3, 5, 6, 10, 11) else 1.0
            out = self._mav.mission_item_encode(
                partner[0], partner[1], it.seq, it.frame, it.command, current, it.autocontinue,
                it.param1, it.param2, it.param3, it.param4, it.x / scale, it.y / scale, it.z, it.mission_type,
            )  # fmt: skip
        self._send(out)

    def _handle_mission_clear_all(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        partner = (msg.get_srcSystem(), msg.get_srcComponent())
        everything = msg.mission_type == mavlink.MAV_MISSION_TYPE_ALL
        types = (MISSION, FENCE, RALLY) if everything else (msg.mission_type,)
        for mission_type in types:
            if mission_type in (MISSION, FENCE, RALLY):
                self._commit(mission_type, [])
        self._refuse_mission_start_until = 0.0
        self._mission_ack(partner, MISSION_ACCEPTED, msg.mission_type)

    def _handle_mission_set_current(self, msg: Any) -> None:
        if not self._for_me(msg):
            return
        if not self.autopilot.set_mission_current(msg.seq):
            self._send_statustext(SEV_WARNING, f"Mission item {msg.seq} does not exist")
        self._send_mission_current()

    def _handle_mission_ack(self, msg: Any) -> None:
        pass  # the GCS closing a download: nothing to do, PX4 keeps no download state either

    def _handle_timesync(self, msg: Any) -> None:
        if msg.tc1 == 0:
            self._send(self._mav.timesync_encode(int(time.monotonic() * 1e9), msg.ts1))

    _handlers: dict[str, Callable[[SimVehicle, Any], None]] = {
        "COMMAND_LONG": _handle_command_long,
        "COMMAND_INT": _handle_command_int,
        "SET_MODE": _handle_set_mode,
        "PARAM_REQUEST_LIST": _handle_param_request_list,
        "PARAM_REQUEST_READ": _handle_param_request_read,
        "PARAM_SET": _handle_param_set,
        "MISSION_COUNT": _handle_mission_count,
        "MISSION_ITEM_INT": _handle_mission_item_int,
        "MISSION_ITEM": _handle_mission_item,
        "MISSION_REQUEST_LIST": _handle_mission_request_list,
        "MISSION_REQUEST_INT": _handle_mission_request_int,
        "MISSION_REQUEST": _handle_mission_request,
        "MISSION_CLEAR_ALL": _handle_mission_clear_all,
        "MISSION_SET_CURRENT": _handle_mission_set_current,
        "MISSION_ACK": _handle_mission_ack,
        "TIMESYNC": _handle_timesync,
    }


_OK_ACCEPTED = Outcome(ACCEPTED)
