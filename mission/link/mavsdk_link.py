"""``MavsdkVehicleLink``: one vehicle's commands and throttled telemetry over the shared MAVSDK instance.

Built and owned by ``LinkManager``; nothing else constructs it. CPU is the design constraint (100 vehicles
in one process under one core), so:
- no MAVSDK stream subscription at all: PX4 streams position at 50 Hz, and one Python callback per message
  (plus the GIL hand-off from MAVSDK's thread) costs more than the whole service may; with 50 vehicles MAVSDK
  even starts dropping callbacks ("a subscriber is not keeping up"). Instead the manager's single telemetry
  tick reads MAVSDK's cached values (getters, 1-5 us each) on the event loop;
- that tick polls a few times per snapshot period but only reads two values (unix epoch time and position,
  ~3 us): a snapshot is built when a new sample arrived and the vehicle's rate limit allows, so a snapshot is
  at most one poll (not one whole period) older than the sample it carries. Without new samples (GPS lost,
  a still vehicle that sends no SYSTEM_TIME) snapshots still come at the configured rate;
- blocking MAVSDK calls (commands, mission transfer) run on the manager's own executor, not the loop's
  default one, so a few commands waiting on their timeout cannot stall the rest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from mavsdk.exceptions import MavsdkError
from mavsdk.plugins.action import Action, OrbitYawBehavior
from mavsdk.plugins.geofence import Circle, FenceType, Geofence, GeofenceData, Point, Polygon
from mavsdk.plugins.mavlink_direct import MavlinkDirect, MavlinkMessage
from mavsdk.plugins.mission_raw import MissionItem as RawItem
from mavsdk.plugins.mission_raw import MissionRaw, MissionRawResult
from mavsdk.plugins.param import Param
from mavsdk.plugins.telemetry import FlightMode as MavFlightMode
from mavsdk.plugins.telemetry import LandedState, Telemetry
from mavsdk.system import System

from flightplans.items import FenceCircle, FencePolygon, MissionItem
from flightplans.items import Geofence as DomainGeofence
from mission.errors import LinkError
from mission.link.camera import MavsdkCamera
from mission.link.mission_items import (
    LinkMissionItem,
    MavlinkItem,
    RawMissionItem,
    check_items,
    from_mavlink,
    to_mavlink,
    unsupported_suspects,
)
from mission.link.types import ActuatorResult, FlightMode, MissionProgress, TelemetrySnapshot

log = logging.getLogger(__name__)
RTL_RETURN_ALT = (
    "RTL_RETURN_ALT"  # PX4: the altitude above home its RTL climbs to (if lower) before coming home
)
T = TypeVar("T")

_MODES: dict[MavFlightMode, FlightMode] = {
    MavFlightMode.READY: FlightMode.READY,
    MavFlightMode.TAKEOFF: FlightMode.TAKEOFF,
    MavFlightMode.HOLD: FlightMode.HOLD,
    MavFlightMode.MISSION: FlightMode.MISSION,
    MavFlightMode.RETURN_TO_LAUNCH: FlightMode.RETURN,
    MavFlightMode.LAND: FlightMode.LAND,
    MavFlightMode.OFFBOARD: FlightMode.OFFBOARD,
    MavFlightMode.MANUAL: FlightMode.MANUAL,
    MavFlightMode.ALTCTL: FlightMode.ALTCTL,
    MavFlightMode.POSCTL: FlightMode.POSCTL,
}
_IN_AIR = frozenset({LandedState.IN_AIR, LandedState.TAKING_OFF, LandedState.LANDING})
_NO_PROGRESS = MissionProgress(current=0, total=0, finished=False)
_LINK_DOWN_SNAPSHOT_PERIOD_S = 1.0
_RECONNECT_GRACE_S = 2.0
# Snapshot rate limit: the bucket holds two periods' worth, so sample jitter neither halves the rate nor
# locks snapshots to a phase behind their samples; the long-run rate stays the configured one.
_BUCKET_TOKENS = 2.0
_RETRY_COMMAND = frozenset({"TIMEOUT"})
# A mission transfer that times out or is cancelled half-way on a lossy link is simply started again; PX4
# answers a transfer that collides with a stale one with MAV_MISSION_ERROR ("busy").
_RETRY_TRANSFER = frozenset({"TIMEOUT", "TRANSFER_CANCELLED", "BUSY", "PROTOCOL_ERROR", "ERROR"})
_CLEAR_ATTEMPTS = 3
_TRANSFER_RETRIES = 8
CMD_NAV_TAKEOFF = 22
CMD_COMPONENT_ARM_DISARM = 400
# Confirming a payload command from the vehicle's output reports (see set_actuator).
_OUTPUT_MESSAGES = ("SERVO_OUTPUT_RAW", "ACTUATOR_OUTPUT_STATUS")
_CONFIRM_WAIT_S = 1.0
_NO_OUTPUTS_S = 0.5
_PWM_TOLERANCE = 25.0
# MAV_RESULT of a COMMAND_ACK, for the raw commands sent through MavlinkDirect.
_MAV_RESULT = {
    0: "accepted",
    1: "temporarily rejected",
    2: "denied",
    3: "unsupported",
    4: "failed",
    5: "in progress",
    6: "cancelled",
}


def _num(value: float) -> float | None:
    """MAVSDK reports 'not known yet' as NaN."""
    return None if value is None or math.isnan(value) else float(value)


def _reason(err: BaseException) -> str:
    result = getattr(err, "result", None)
    if result is not None:
        return result.name.lower().replace("_", " ")
    return str(err) or type(err).__name__


class _Subscriber:
    """One ``snapshots()`` consumer: keeps only the newest snapshot; a slow reader skips, never queues."""

    __slots__ = ("closed", "event", "snapshot")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.snapshot: TelemetrySnapshot | None = None
        self.closed = False


class MavsdkVehicleLink:
    """VehicleLink for one MAVLink system (sysid) reached through one connection URL."""

    def __init__(
        self,
        *,
        sysid: int,
        url: str,
        executor: concurrent.futures.ThreadPoolExecutor,
        command_timeout_s: float,
        snapshot_period_s: float = 0.1,
        poll_period_s: float = 0.1 / 4,
    ) -> None:
        self._sysid = sysid
        self._url = url
        self._executor = executor
        self._command_timeout_s = command_timeout_s
        self._loop = asyncio.get_running_loop()
        self._system: System | None = None
        self._telemetry: Telemetry | None = None
        self._action: Action | None = None
        self._mission_raw: MissionRaw | None = None
        self._geofence: Geofence | None = None
        self._direct: MavlinkDirect | None = None  # raw COMMAND_LONG for what Action cannot say
        self._param: Param | None = None
        self._return_alt_m: float | None = None  # RTL_RETURN_ALT, read after each connect
        self._camera: MavsdkCamera | None = None  # made on first use of ``camera``
        self._inflight: set[concurrent.futures.Future[Any]] = set()
        self._subscribers: set[_Subscriber] = set()
        self._closed = False
        self._connected = False
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._latest: TelemetrySnapshot | None = None
        self._last_down_snapshot_at = 0.0
        # Rate limit and change detection (see _due): a token bucket (one token per period, room for two) so
        # a snapshot goes out as soon as its sample arrives, never closer than `_min_gap_s` to the last one.
        self._period_s = snapshot_period_s
        self._min_gap_s = snapshot_period_s - max(poll_period_s, 0.4 * snapshot_period_s)
        self._stale_s = 2.0 * snapshot_period_s
        self._tokens = _BUCKET_TOKENS
        self._tokens_at = 0.0
        self._epoch_us = 0
        self._epoch_seen_at = 0.0
        self._epoch_gap_s = math.inf
        self._position_key: tuple[float, float, float] = (math.nan, math.nan, math.nan)
        self._fresh = False
        self._sample_seen_at = 0.0
        self._position: Any = None
        self._vehicle_time_unix: float | None = None
        # Refreshed by tick() from MAVSDK's cached state.
        self._armed = False
        self._mav_mode = MavFlightMode.UNKNOWN
        self._landed = LandedState.UNKNOWN
        self._battery: tuple[float | None, float | None] = (None, None)
        self._health: tuple[bool, bool, bool] = (False, False, False)  # gps ok, home ok, armable
        self._home: tuple[float, float, float] | None = None
        self._progress: tuple[int, int] = (0, 0)
        self._orbiting = False  # PX4 flies orbit as a POSCTL sub-mode that MAVSDK reports as POSCTL
        self._last_upload_failed = False

    # ---- VehicleLink: state -------------------------------------------------------------------

    @property
    def vehicle_id(self) -> int:
        """The vehicle's MAVLink system id."""
        return self._sysid

    @property
    def url(self) -> str:
        """The MAVSDK connection URL this vehicle is reached on."""
        return self._url

    @property
    def latest(self) -> TelemetrySnapshot | None:
        """The newest throttled snapshot, or None before the vehicle was first seen."""
        return self._latest

    @property
    def connected(self) -> bool:
        """True while heartbeats arrive (MAVSDK drops a system after 3 s without one)."""
        return self._connected

    @property
    def return_alt_m(self) -> float | None:
        """The altitude the vehicle's own RTL climbs to (its RTL_RETURN_ALT, read after each connect; the
        last value read stays while a new read fails); None until one was read."""
        return self._return_alt_m

    @property
    def mode(self) -> FlightMode:
        """The current flight mode as last reported by the vehicle's heartbeat."""
        mode = _MODES.get(self._mav_mode, FlightMode.UNKNOWN)
        if mode is FlightMode.POSCTL and self._orbiting:
            return FlightMode.ORBIT
        return mode

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Until a heartbeat arrives; LinkError after ``timeout_s``."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout_s)
        except TimeoutError:
            raise self._error("connect", f"no heartbeat on {self._url} within {timeout_s:.0f} s") from None

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until connected with GPS and home position ok (armable)."""
        deadline = self._loop.time() + timeout_s
        await self.wait_connected(timeout_s)
        while True:
            gps_ok, home_ok, armable = self._health
            if self._connected and gps_ok and home_ok and armable:
                return
            if self._loop.time() >= deadline:
                missing = [
                    name
                    for name, ok in (("GPS", gps_ok), ("home position", home_ok), ("armable", armable))
                    if not ok
                ]
                what = ", ".join(missing) or "link"
                raise self._error("wait ready", f"not ready after {timeout_s:.0f} s: {what} not ok")
            await asyncio.sleep(0.1)

    async def snapshots(self) -> AsyncIterator[TelemetrySnapshot]:
        """Throttled snapshots (at the manager's rate) until the link closes; slow readers get the newest."""
        sub = _Subscriber()
        if self._closed:
            return
        self._subscribers.add(sub)
        try:
            while True:
                await sub.event.wait()
                sub.event.clear()
                if sub.closed or sub.snapshot is None:
                    return
                yield sub.snapshot
        finally:
            self._subscribers.discard(sub)

    # ---- VehicleLink: commands ----------------------------------------------------------------

    async def arm(self, *, keep_mode: bool = False) -> None:
        """Arm the motors.

        MAVSDK's arm switches a vehicle in MISSION (or RETURN) to HOLD first. With ``keep_mode`` the arm
        command goes out as it is (COMMAND_LONG 400): armed in MISSION, PX4 takes off into the mission at
        once, so an armed vehicle never waits on the ground for a mode switch it may be refused.
        """
        if keep_mode:
            await self._command_long(
                "arm", CMD_COMPONENT_ARM_DISARM, (1.0, 0.0, None, None, None, None, None)
            )
            return
        await self._command("arm", self._require(self._action, "arm").arm)

    async def disarm(self) -> None:
        """Disarm (PX4 refuses in the air)."""
        await self._command("disarm", self._require(self._action, "disarm").disarm)

    async def takeoff(self, alt_m: float | None = None) -> None:
        """Take off to ``alt_m`` above home (PX4's MIS_TAKEOFF_ALT when None); the vehicle holds there.

        The altitude goes in the take-off command itself (NAV_TAKEOFF param7, AMSL), never into the
        vehicle's MIS_TAKEOFF_ALT parameter: a take-off must not change the vehicle for later flights.
        """
        if alt_m is None:
            await self._command("takeoff", self._require(self._action, "takeoff").takeoff)
            self._orbiting = False
            return
        if not (math.isfinite(alt_m) and 0 < alt_m <= 1000):
            raise self._error("takeoff", f"altitude must be in (0, 1000] m above home, got {alt_m}")
        amsl = self._amsl("takeoff", alt_m)
        # param1..6 unset (NaN): take off where the vehicle stands, keeping its heading.
        await self._command_long("takeoff", CMD_NAV_TAKEOFF, (None, None, None, None, None, None, amsl))
        self._orbiting = False

    async def upload_mission(self, items: Sequence[MissionItem | RawMissionItem]) -> None:
        """Check, encode and upload a mission; LinkError naming the refused item (then nothing flies)."""
        mission_raw = self._require(self._mission_raw, "upload mission")
        try:
            check_items(items)
        except ValueError as err:
            self._last_upload_failed = True
            raise self._error("upload mission", f"{err}; nothing was uploaded") from None
        home = self._home
        here = self._latest
        takeoff_at = (home[0], home[1]) if home else None
        if takeoff_at is None and here is not None and here.lat is not None and here.lon is not None:
            takeoff_at = (here.lat, here.lon)
        encoded = [_to_raw_item(m) for m in to_mavlink(items, takeoff_at=takeoff_at)]

        def explain(err: BaseException) -> str:
            suspects = unsupported_suspects(items)
            if getattr(err, "result", None) == MissionRawResult.UNSUPPORTED:
                named = "; ".join(suspects) if suspects else "one of the items"
                return f"the vehicle rejected {named} as unsupported in a mission; nothing was uploaded"
            if suspects:  # a refusal other than "unsupported": still point at the unchecked items
                return f"{_reason(err)} (unchecked raw items: {'; '.join(suspects)})"
            return _reason(err)

        self._last_upload_failed = True
        await self._command(
            "upload mission",
            mission_raw.upload_mission,
            encoded,
            timeout_s=45.0,
            retries=_TRANSFER_RETRIES,
            retry_on=_RETRY_TRANSFER,
            explain=explain,
        )
        self._last_upload_failed = False

    async def download_mission(self) -> list[MissionItem | RawMissionItem]:
        """The vehicle's mission (also what lets progress tracking resume after a service restart)."""
        mission_raw = self._require(self._mission_raw, "download mission")
        raw = await self._command(
            "download mission",
            mission_raw.download_mission,
            timeout_s=45.0,
            retries=_TRANSFER_RETRIES,
            retry_on=_RETRY_TRANSFER,
        )
        items = [
            MavlinkItem(r.seq, r.frame, r.command, r.param1, r.param2, r.param3, r.param4, r.x, r.y, r.z)
            for r in raw
        ]
        result: list[LinkMissionItem] = from_mavlink(items)
        return result

    async def clear_mission(self) -> None:
        """Remove the vehicle's mission, confirmed by downloading it back empty.

        PX4 (v1.17 SITL, on a loaded machine) acknowledged a clear sent right after an upload and still
        listed the uploaded items afterwards; the clear is repeated until the vehicle reports no mission.
        """
        mission_raw = self._require(self._mission_raw, "clear mission")
        for attempt in range(1, _CLEAR_ATTEMPTS + 1):
            await self._command("clear mission", mission_raw.clear_mission)
            left = len(await self.download_mission())
            if left == 0:
                return
            log.warning(
                "vehicle %d: clear mission acknowledged, yet %d items remain (attempt %d)",
                self._sysid,
                left,
                attempt,
            )
            await asyncio.sleep(0.5)
        raise self._error(
            "clear mission", f"the vehicle still lists {left} items after {_CLEAR_ATTEMPTS} clears"
        )

    async def start_mission(self) -> None:
        """Switch to MISSION, retrying while PX4 refuses right after an upload, until the mode reads so."""
        mission_raw = self._require(self._mission_raw, "start mission")
        if self._last_upload_failed:
            raise self._error("start mission", "the last mission upload failed; upload a valid mission first")
        budget_s = max(self._command_timeout_s, 15.0)
        deadline = self._loop.time() + budget_s
        attempts = 0
        last = "no attempt made"
        while True:
            attempts += 1
            try:
                await self._command("start mission", mission_raw.start_mission, retries=0)
            except LinkError as err:
                last = str(err).split("start mission failed: ", 1)[-1]
                if not self._connected:
                    raise
                log.info("vehicle %d: start mission refused (%s), retrying (%d)", self._sysid, last, attempts)
            else:
                if await self._wait_mode(FlightMode.MISSION, timeout_s=3.0):
                    self._orbiting = False
                    return
                last = f"accepted, but the flight mode still reads {self.mode.value}"
            if self._loop.time() >= deadline:
                raise self._error(
                    "start mission", f"{last} (gave up after {attempts} attempts in {budget_s:.0f} s)"
                )
            await asyncio.sleep(0.5)

    async def pause(self) -> None:
        """Pause the mission (PX4 holds position in AUTO.LOITER)."""
        await self._command("pause mission", self._require(self._mission_raw, "pause mission").pause_mission)

    async def resume(self) -> None:
        """Continue the mission from the current item."""
        await self.start_mission()

    async def hold(self) -> None:
        """Hold position (AUTO.LOITER)."""
        await self._command("hold", self._require(self._action, "hold").hold)
        self._orbiting = False

    async def goto(self, lat: float, lon: float, alt_rel_m: float, yaw_deg: float | None = None) -> None:
        """Fly to a point ``alt_rel_m`` above home and hold there (facing ``yaw_deg`` when given)."""
        self._check_point("goto", lat, lon, alt_rel_m)
        amsl = self._amsl("goto", alt_rel_m)
        yaw = math.nan if yaw_deg is None else float(yaw_deg)
        await self._command("goto", self._require(self._action, "goto").goto_location, lat, lon, amsl, yaw)
        self._orbiting = False

    async def orbit(
        self,
        lat: float,
        lon: float,
        alt_rel_m: float,
        *,
        radius_m: float,
        speed_m_s: float,
        clockwise: bool = True,
    ) -> None:
        """Circle a point (DO_ORBIT); a live command only, PX4 refuses it inside missions."""
        self._check_point("orbit", lat, lon, alt_rel_m)
        if not (math.isfinite(radius_m) and 1 <= radius_m <= 10000):
            raise self._error("orbit", f"radius_m must be in 1..10000, got {radius_m}")
        if not (math.isfinite(speed_m_s) and 0 < speed_m_s <= 50):
            raise self._error("orbit", f"speed_m_s must be in (0, 50], got {speed_m_s}")
        amsl = self._amsl("orbit", alt_rel_m)
        signed_radius = radius_m if clockwise else -radius_m  # MAV_CMD_DO_ORBIT: negative = counter-clockwise
        yaw = OrbitYawBehavior.HOLD_FRONT_TO_CIRCLE_CENTER
        action = self._require(self._action, "orbit")
        await self._command("orbit", action.do_orbit, signed_radius, speed_m_s, yaw, lat, lon, amsl)
        self._orbiting = True

    async def set_speed(self, speed_m_s: float) -> None:
        """Ground speed for the current flight (DO_CHANGE_SPEED)."""
        if not (math.isfinite(speed_m_s) and 0 < speed_m_s <= 100):
            raise self._error("set speed", f"speed_m_s must be in (0, 100], got {speed_m_s}")
        await self._command(
            "set speed", self._require(self._action, "set speed").set_current_speed, speed_m_s
        )

    async def return_to_launch(self) -> None:
        """Return home and land (RTL)."""
        await self._command(
            "return to launch", self._require(self._action, "return to launch").return_to_launch
        )
        self._orbiting = False

    async def land(self) -> None:
        """Land where the vehicle is."""
        await self._command("land", self._require(self._action, "land").land)
        self._orbiting = False

    async def set_actuator(self, index: int, value: float) -> ActuatorResult:
        """Set payload output ``index`` (1..6, "Actuator Set N") to ``value`` in -1..1.

        The COMMAND_ACK only says the vehicle accepted it (PX4 accepts it even where no output is mapped to
        the actuator set). For ``_CONFIRM_WAIT_S`` after the ack the vehicle's output reports
        (SERVO_OUTPUT_RAW, ACTUATOR_OUTPUT_STATUS) are watched for a channel moving to the commanded value
        (PWM 1500 + 500 * value, PX4's default range): then the result is confirmed. A vehicle that sends
        no output report at all is given up on after ``_NO_OUTPUTS_S``.
        """
        if not 1 <= index <= 6:
            raise self._error("set actuator", f"actuator index must be 1..6, got {index}")
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise self._error("set actuator", f"actuator value must be in -1..1, got {value}")
        action = self._require(self._action, "set actuator")
        watch = _OutputWatch()
        handles = await self._watch_outputs(watch)
        try:
            await self._command("set actuator", action.set_actuator, index, value)
            watch.mark_sent()
            return await self._confirm(watch, index, value)
        finally:
            await self._unwatch_outputs(handles)

    async def _watch_outputs(self, watch: _OutputWatch) -> list[Any]:
        direct = self._direct
        if direct is None:
            return []
        loop = asyncio.get_running_loop()
        handles: list[Any] = []
        for name in _OUTPUT_MESSAGES:
            with contextlib.suppress(MavsdkError, RuntimeError):
                handles.append(
                    await loop.run_in_executor(
                        self._executor, direct.subscribe_message, name, watch.on_message
                    )
                )
        return handles

    async def _unwatch_outputs(self, handles: list[Any]) -> None:
        direct = self._direct
        if direct is None:
            return
        loop = asyncio.get_running_loop()
        for handle in handles:
            with contextlib.suppress(MavsdkError, RuntimeError):
                await loop.run_in_executor(self._executor, direct.unsubscribe_message, handle)

    async def _confirm(self, watch: _OutputWatch, index: int, value: float) -> ActuatorResult:
        expected = 1500.0 + 500.0 * value
        sent_at = self._loop.time()
        while True:
            channel = watch.moved_to(expected, _PWM_TOLERANCE)
            if channel is not None:
                return ActuatorResult(True, f"output channel {channel} at {expected:.0f}", channel=channel)
            waited = self._loop.time() - sent_at
            if not watch.seen and waited >= _NO_OUTPUTS_S:
                return ActuatorResult(
                    False, "accepted; the vehicle reports no actuator outputs to confirm it"
                )
            if waited >= _CONFIRM_WAIT_S:
                return ActuatorResult(
                    False,
                    f"accepted, but no output followed: map an output to Actuator Set {index}"
                    f" (PX4: PWM_MAIN_FUNCn = {300 + index})",
                )
            await asyncio.sleep(0.05)

    async def upload_geofence(self, fence: DomainGeofence) -> None:
        """Upload inclusion/exclusion polygons and circles (replaces the vehicle's fence)."""
        polygons: list[Polygon] = []
        circles: list[Circle] = []
        for n, shape in enumerate(fence.shapes):
            fence_type = FenceType.INCLUSION if shape.inclusion else FenceType.EXCLUSION
            if isinstance(shape, FencePolygon):
                if len(shape.points) < 3:
                    raise self._error(
                        "upload geofence", f"shape {n}: a polygon needs >= 3 points, got {len(shape.points)}"
                    )
                for lat, lon in shape.points:
                    self._check_point("upload geofence", lat, lon, 0.0, where=f"shape {n}: ")
                polygons.append(Polygon([Point(lat, lon) for lat, lon in shape.points], fence_type))
            elif isinstance(shape, FenceCircle):
                self._check_point("upload geofence", shape.lat, shape.lon, 0.0, where=f"shape {n}: ")
                if not (math.isfinite(shape.radius_m) and shape.radius_m > 0):
                    raise self._error(
                        "upload geofence", f"shape {n}: circle radius_m must be > 0, got {shape.radius_m}"
                    )
                circles.append(Circle(Point(shape.lat, shape.lon), shape.radius_m, fence_type))
            else:
                raise self._error(
                    "upload geofence", f"shape {n}: unsupported fence shape {type(shape).__name__}"
                )
        if not polygons and not circles:
            raise self._error("upload geofence", "the geofence has no shapes")
        data = GeofenceData(polygons, circles)
        await self._command(
            "upload geofence",
            self._require(self._geofence, "upload geofence").upload_geofence,
            data,
            timeout_s=45.0,
            retries=_TRANSFER_RETRIES,
            retry_on=_RETRY_TRANSFER,
        )

    @property
    def camera(self) -> MavsdkCamera:
        """The vehicle's camera and gimbal (MAVSDK camera and gimbal plugins), made on first use."""
        if self._camera is None:
            system = self._require(self._system, "camera")
            self._camera = MavsdkCamera(system=system, vehicle_id=self._sysid, run=self._command)
        return self._camera

    # ---- manager side -------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        """True once MAVSDK has seen this sysid and the plugins exist."""
        return self._system is not None

    def bind(self, system: System) -> None:
        """Attach the MAVSDK system for this sysid and create its plugins (no subscriptions: see tick)."""
        self._system = system
        self._telemetry = Telemetry(system)
        self._action = Action(system)
        self._mission_raw = MissionRaw(system)
        self._geofence = Geofence(system)
        self._direct = MavlinkDirect(system)
        self._param = Param(system)
        log.info("vehicle %d bound on %s", self._sysid, self._url)

    def tick(self, now: float) -> None:
        """From the manager's telemetry poll: publish a snapshot when a new sample arrived and one is due."""
        system = self._system
        connected = system is not None and system.is_connected()
        if connected != self._connected:
            self._connected = connected
            self._vehicle_time_unix = None  # until a sample of this connection dates itself
            if connected:
                self._down.clear()
                self._up.set()
                log.info("vehicle %d: link up", self._sysid)
            else:
                self._up.clear()
                self._down.set()
                log.warning("vehicle %d: link down", self._sysid)
        elif not connected:
            if now - self._last_down_snapshot_at < _LINK_DOWN_SNAPSHOT_PERIOD_S:
                return
        elif not self._due(now):
            return
        if not connected:
            self._last_down_snapshot_at = now
        self._publish(self._sample(now, connected))

    def _due(self, now: float) -> bool:
        """Change detection on the two cheapest cached values, then the per-vehicle rate limit."""
        telemetry = self._telemetry
        if telemetry is None:
            return False
        epoch_us = telemetry.unix_epoch_time()
        pos = telemetry.position()
        # While SYSTEM_TIME comes at about the snapshot rate (the simulator sends it right after each
        # position) a new vehicle time marks a new sample: a poll that lands between the position and its
        # SYSTEM_TIME must not publish the new position dated with the previous time. Otherwise a new
        # position marks a new sample.
        paired = self._epoch_gap_s <= 1.5 * self._period_s and now - self._epoch_seen_at <= self._stale_s
        if epoch_us != self._epoch_us:
            self._epoch_gap_s = now - self._epoch_seen_at
            self._epoch_us, self._epoch_seen_at = epoch_us, now
            if paired or self._epoch_gap_s <= 1.5 * self._period_s:
                self._fresh, self._sample_seen_at = True, now
        position_key = (pos.latitude_deg, pos.longitude_deg, pos.absolute_altitude_m)
        # NaN != NaN: an unknown position would look new on every poll, so compare the text of the floats.
        if position_key != self._position_key and repr(position_key) != repr(self._position_key):
            self._position_key = position_key
            if not paired:
                self._fresh, self._sample_seen_at = True, now
        tokens = min(_BUCKET_TOKENS, self._tokens + (now - self._tokens_at) / self._period_s)
        if tokens < 1.0 or now - self._tokens_at < self._min_gap_s:
            return False
        if not self._fresh and now - self._sample_seen_at < self._stale_s:
            return False  # the next sample is on its way; publishing now would only repeat the last one
        self._fresh = False
        self._position = pos
        # Wall clocks before 2001 are a boot-relative or unset SYSTEM_TIME, not a date.
        self._vehicle_time_unix = epoch_us / 1e6 if epoch_us >= 1_000_000_000_000_000 else None
        self._tokens, self._tokens_at = tokens - 1.0, now
        return True

    def _publish(self, snapshot: TelemetrySnapshot) -> None:
        self._latest = snapshot
        for sub in self._subscribers:
            sub.snapshot = snapshot
            sub.event.set()

    async def supervise(self) -> None:
        """Per-vehicle task: after each (re)connect, learn the mission if this process does not know it."""
        while True:
            await self._up.wait()
            await self._sync_mission_after_connect()
            await self._read_return_alt()
            await self._down.wait()

    async def close(self) -> None:
        """End snapshot streams, let running MAVSDK calls finish, destroy the plugins."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subscribers:
            sub.closed = True
            sub.event.set()
        if self._inflight:
            await asyncio.wait([asyncio.wrap_future(f) for f in self._inflight], timeout=15.0)
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        plugins = (
            self._param,
            self._direct,
            self._mission_raw,
            self._geofence,
            self._action,
            self._telemetry,
        )
        self._direct = self._param = None
        self._mission_raw = self._geofence = self._action = self._telemetry = None
        for plugin in plugins:
            if plugin is not None:
                plugin.destroy()
        if self._system is not None:
            self._system.destroy()
            self._system = None
        self._connected = False

    # ---- internals ----------------------------------------------------------------------------

    def _sample(self, now: float, connected: bool) -> TelemetrySnapshot:
        lat = lon = amsl = rel = heading = speed = climb = None
        telemetry, mission_raw = self._telemetry, self._mission_raw
        if telemetry is not None and mission_raw is not None:
            # Every value is MAVSDK's cached copy (a getter costs 1-5 us); polling them here at the configured
            # rate is far cheaper than one Python callback per MAVLink message, and nothing crosses threads.
            self._armed = telemetry.armed()
            self._mav_mode = telemetry.flight_mode()
            self._landed = telemetry.landed_state()
            battery = telemetry.battery()
            self._battery = (_num(battery.remaining_percent), _num(battery.voltage_v))
            health = telemetry.health()
            self._health = (health.is_global_position_ok, health.is_home_position_ok, health.is_armable)
            home = telemetry.home()
            home_lat, home_lon = _num(home.latitude_deg), _num(home.longitude_deg)
            home_alt = _num(home.absolute_altitude_m)
            if home_lat is not None and home_lon is not None and home_alt is not None:
                self._home = (home_lat, home_lon, home_alt)
            progress = mission_raw.mission_progress()
            current, total = max(progress.current, 0), max(progress.total, 0)
            # MAVSDK moves `current` to `total` only on the last MISSION_ITEM_REACHED, which is sent once and
            # can be lost; is_mission_finished() also reads MISSION_CURRENT's mission_state, streamed at 1 Hz.
            if total and current < total and self._mission_finished(mission_raw):
                current = total
            self._progress = (current, total)
            # The position (and vehicle time) read by the change detection in this very poll, if it ran.
            pos, self._position = self._position or telemetry.position(), None
            lat, lon = _num(pos.latitude_deg), _num(pos.longitude_deg)
            amsl, rel = _num(pos.absolute_altitude_m), _num(pos.relative_altitude_m)
            vel = telemetry.velocity_ned()
            north, east, down = _num(vel.north_m_s), _num(vel.east_m_s), _num(vel.down_m_s)
            if north is not None and east is not None:
                speed = math.hypot(north, east)
            climb = -down if down is not None else None
            heading = _num(telemetry.heading().heading_deg)
        battery_pct, battery_v = self._battery
        gps_ok, home_ok, _ = self._health
        home = self._home
        current, total = self._progress
        landed = self._landed
        mode = self.mode
        finished = total > 0 and current >= total
        return TelemetrySnapshot(
            vehicle_id=self._sysid,
            received_at=now,
            link_up=connected,
            lat=lat,
            lon=lon,
            alt_amsl_m=amsl,
            alt_rel_m=rel,
            heading_deg=heading,
            ground_speed_m_s=speed,
            climb_m_s=climb,
            battery_pct=battery_pct,
            battery_v=battery_v,
            mode=mode,
            armed=self._armed,
            in_air=landed in _IN_AIR,
            gps_ok=gps_ok,
            home_ok=home_ok,
            mission=MissionProgress(current=current, total=total, finished=finished)
            if total
            else _NO_PROGRESS,
            home_lat=home[0] if home else None,
            home_lon=home[1] if home else None,
            home_alt_amsl_m=home[2] if home else None,
            vehicle_time_unix=self._vehicle_time_unix if connected else None,
            return_alt_m=self._return_alt_m,
        )

    @staticmethod
    def _mission_finished(mission_raw: MissionRaw) -> bool:
        try:
            return bool(mission_raw.is_mission_finished())
        except MavsdkError:  # no mission known to MAVSDK
            return False

    async def _read_return_alt(self) -> None:
        """Read RTL_RETURN_ALT: the gate judges a return at the altitude the vehicle really climbs to."""
        action = f"read {RTL_RETURN_ALT}"
        try:
            value = await self._command(
                action, self._require(self._param, action).get_param_float, RTL_RETURN_ALT
            )
        except LinkError as err:
            if self._return_alt_m is None:
                log.warning("%s; the gate judges its returns at the service's setting", err)
            else:
                log.warning("%s; keeping the %g m read before", err, self._return_alt_m)
            return
        if not (math.isfinite(value) and value > 0):
            log.warning(
                "vehicle %d: %s reads %r; the gate uses its setting", self._sysid, RTL_RETURN_ALT, value
            )
            return
        if value != self._return_alt_m:
            log.info("vehicle %d: %s %g m", self._sysid, RTL_RETURN_ALT, value)
        self._return_alt_m = float(value)

    async def _sync_mission_after_connect(self) -> None:
        # Heartbeat-derived state arrives within about a second of the link coming up.
        for _ in range(30):
            if self._mav_mode is not MavFlightMode.UNKNOWN or not self._connected:
                break
            await asyncio.sleep(0.1)
        if self._progress[1] > 0 or not self._connected:
            return
        if not (self._armed or self._mav_mode is MavFlightMode.MISSION):
            return
        try:
            items = await self.download_mission()
            log.info(
                "vehicle %d: downloaded its %d-item mission to resume progress tracking",
                self._sysid,
                len(items),
            )
        except LinkError as err:
            log.warning("%s (progress tracking resumes at the next reconnect)", err)

    async def _wait_mode(self, mode: FlightMode, *, timeout_s: float) -> bool:
        deadline = self._loop.time() + timeout_s
        while self.mode is not mode:
            if self._loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _command(
        self,
        action: str,
        fn: Callable[..., T],
        *args: Any,
        timeout_s: float | None = None,
        retries: int = 2,
        retry_on: frozenset[str] = _RETRY_COMMAND,
        explain: Callable[[BaseException], str] | None = None,
    ) -> T:
        """Run one blocking MAVSDK call on the link executor; a failure becomes LinkError naming the vehicle.

        MAVSDK already resends a command 4 times over 2 s; a result named in ``retry_on`` (TIMEOUT for
        commands) is retried ``retries`` more times because a lossy link can eat all of those. Everything
        retried here is idempotent on the vehicle (mode switches, arm, a whole mission replaced).
        """
        if self._closed:
            raise self._error(action, "the link is closed")
        if not self._connected and self.bound:
            # A lossy link flaps (3 lost heartbeats); give it a moment before calling the vehicle gone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), _RECONNECT_GRACE_S)
        if not self._connected:
            why = (
                f"link down (no heartbeat for more than {3 + _RECONNECT_GRACE_S:.0f} s)"
                if self.bound
                else f"never connected (no heartbeat on {self._url})"
            )
            raise self._error(action, why)
        budget_s = timeout_s or self._command_timeout_s
        deadline = self._loop.time() + budget_s
        attempt = 0
        while True:
            attempt += 1
            future = self._executor.submit(fn, *args)
            self._inflight.add(future)
            future.add_done_callback(self._inflight.discard)
            remaining = deadline - self._loop.time()
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), max(remaining, 0.1))
            except TimeoutError:
                raise self._error(action, f"no answer within {budget_s:.0f} s") from None
            except MavsdkError as err:
                result = getattr(err, "result", None)
                retryable = result is not None and result.name in retry_on
                time_left = deadline - self._loop.time() > 1.5
                if retryable and attempt <= retries and self._connected and time_left:
                    log.info("vehicle %d: %s: %s, retrying (%d)", self._sysid, action, _reason(err), attempt)
                    await asyncio.sleep(0.3)  # let the vehicle drop its half-done transfer state
                    continue
                why = explain(err) if explain else _reason(err)
                if attempt > 1:
                    why += f" (after {attempt} attempts)"
                raise self._error(action, why) from err
            except RuntimeError as err:  # plugin destroyed or executor shut down under us
                raise self._error(action, f"the link is closed ({err})") from err

    async def _command_long(self, action: str, command: int, params: Sequence[float | None]) -> None:
        """Send one COMMAND_LONG (MavlinkDirect; resent until acked) and require MAV_RESULT_ACCEPTED."""
        direct = self._require(self._direct, action)
        fields: dict[str, Any] = {"target_system": self._sysid, "target_component": 1, "command": command}
        fields["confirmation"] = 0
        for n, value in enumerate(params, start=1):
            # JSON has no NaN: MAVSDK sends a null as NaN ("unset"); 0 would be a real value (latitude 0).
            fields[f"param{n}"] = None if value is None else float(value)
        message = MavlinkMessage(
            message_name="COMMAND_LONG",
            target_system_id=self._sysid,
            target_component_id=1,
            fields_json=json.dumps(fields),
        )
        ack = await self._command(action, direct.send_command, message)
        try:
            result = int(json.loads(ack.fields_json).get("result", -1))
        except (ValueError, TypeError, AttributeError):
            result = -1
        if result != 0:
            raise self._error(action, _MAV_RESULT.get(result, f"no usable acknowledgement ({result})"))

    def _error(self, action: str, why: str) -> LinkError:
        return LinkError(
            f"vehicle {self._sysid}: {action} failed: {why}",
            vehicle_id=self._sysid,
            action=action,
            code="link.failed",
        )

    def _require(self, plugin: T | None, action: str) -> T:
        if plugin is None:
            if self._closed:
                raise self._error(action, "the link is closed")
            raise self._error(action, f"never connected (no heartbeat on {self._url})")
        return plugin

    def _check_point(self, action: str, lat: float, lon: float, alt_rel_m: float, *, where: str = "") -> None:
        if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
            raise self._error(action, f"{where}position ({lat}, {lon}) is not a WGS84 lat/lon")
        if not (math.isfinite(alt_rel_m) and -100 <= alt_rel_m <= 10000):
            raise self._error(action, f"{where}altitude {alt_rel_m} m above home is out of range")

    def _amsl(self, action: str, alt_rel_m: float) -> float:
        # DO_REPOSITION and DO_ORBIT take AMSL altitude; the domain speaks metres above home.
        if self._home is None:
            raise self._error(action, "home position not known yet, cannot convert the altitude to AMSL")
        return self._home[2] + alt_rel_m


class _OutputWatch:
    """Output reports (SERVO_OUTPUT_RAW, ACTUATOR_OUTPUT_STATUS) around one actuator command.

    Filled on MAVSDK's thread, read on the loop: the last values before the command was acked, and every
    report since.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent = False
        self._before: dict[int, float] = {}
        self._after: list[dict[int, float]] = []
        self.seen = False

    def mark_sent(self) -> None:
        with self._lock:
            self._sent = True

    def on_message(self, message: Any, _user: Any = None) -> None:
        try:
            outputs = _outputs(json.loads(message.fields_json))
        except (ValueError, TypeError, AttributeError):
            return
        with self._lock:
            self.seen = True
            if self._sent:
                self._after.append(outputs)
            else:
                self._before.update(outputs)

    def moved_to(self, expected: float, tolerance: float) -> int | None:
        """The first channel that reads ``expected`` since the command and did not before it."""
        with self._lock:
            for outputs in self._after:
                for channel, now in sorted(outputs.items()):
                    was = self._before.get(channel)
                    if abs(now - expected) <= tolerance and (was is None or abs(was - expected) > tolerance):
                        return channel
        return None


def _outputs(fields: dict[str, Any]) -> dict[int, float]:
    """Output channel (1-based) -> value of one SERVO_OUTPUT_RAW or ACTUATOR_OUTPUT_STATUS message."""
    if fields.get("message_name") == "SERVO_OUTPUT_RAW":
        base = 16 * int(fields.get("port", 0) or 0)
        return {base + n: float(fields[f"servo{n}_raw"]) for n in range(1, 17) if f"servo{n}_raw" in fields}
    values = fields.get("actuator") or []
    active = int(fields.get("active", len(values)) or 0)
    return {n + 1: float(v) for n, v in enumerate(values[:active]) if isinstance(v, int | float)}


def _to_raw_item(m: MavlinkItem) -> RawItem:
    return RawItem(
        seq=m.seq,
        frame=m.frame,
        command=m.command,
        current=1 if m.seq == 0 else 0,
        autocontinue=1,
        param1=m.param1,
        param2=m.param2,
        param3=m.param3,
        param4=m.param4,
        x=m.x,
        y=m.y,
        z=m.z,
        mission_type=0,
    )
