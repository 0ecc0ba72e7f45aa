"""The one JSON form of telemetry snapshots and live events, shared by the websocket and the MQTT bridge."""

from __future__ import annotations

import json
import math
from typing import Any

from mission.link.types import TelemetrySnapshot
from mission.telemetry.events import Event

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _finite(value: float | None, digits: int) -> float | None:
    # JSON has no NaN/inf; a sensor that reports NaN means "unknown".
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def snapshot_to_dict(snapshot: TelemetrySnapshot) -> dict[str, Any]:
    """The snapshot as a JSON-ready dict (``type`` = ``"snapshot"``)."""
    mission = snapshot.mission
    return {
        "type": "snapshot",
        "vehicle_id": snapshot.vehicle_id,
        "received_at": snapshot.received_at,
        # Set when the link carries the vehicle's own wall clock (SYSTEM_TIME); used for end-to-end latency.
        "vehicle_time_unix": snapshot.vehicle_time_unix,
        "link_up": snapshot.link_up,
        # A 0..1 link quality when the link layer measures one (e.g. share of expected messages received).
        "link_quality": getattr(snapshot, "link_quality", None),
        "lat": _finite(snapshot.lat, 7),
        "lon": _finite(snapshot.lon, 7),
        "alt_amsl_m": _finite(snapshot.alt_amsl_m, 2),
        "alt_rel_m": _finite(snapshot.alt_rel_m, 2),
        "heading_deg": _finite(snapshot.heading_deg, 1),
        "ground_speed_m_s": _finite(snapshot.ground_speed_m_s, 2),
        "climb_m_s": _finite(snapshot.climb_m_s, 2),
        "battery_pct": _finite(snapshot.battery_pct, 1),
        "battery_v": _finite(snapshot.battery_v, 2),
        "mode": str(snapshot.mode),
        "armed": snapshot.armed,
        "in_air": snapshot.in_air,
        "gps_ok": snapshot.gps_ok,
        "home_ok": snapshot.home_ok,
        "mission": {"current": mission.current, "total": mission.total, "finished": mission.finished},
        "home": (
            None
            if snapshot.home_lat is None or snapshot.home_lon is None
            else {
                "lat": _finite(snapshot.home_lat, 7),
                "lon": _finite(snapshot.home_lon, 7),
                "alt_amsl_m": _finite(snapshot.home_alt_amsl_m, 2),
            }
        ),
    }


def snapshot_to_json(snapshot: TelemetrySnapshot) -> str:
    """The snapshot as compact JSON: ``{"type":"snapshot","vehicle_id":..,...}``."""
    return _dumps(snapshot_to_dict(snapshot))


def _jsonable(value: Any) -> Any:
    try:
        _dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def event_to_dict(event: Event, *, seq: int | None = None) -> dict[str, Any]:
    """The event as a JSON-ready dict (``type`` = ``"event"``); ``seq`` is the hub's delivery order."""
    return {
        "type": "event",
        "seq": seq,
        "kind": event.kind,
        "vehicle_id": event.vehicle_id,
        "mission_id": event.mission_id,
        "time": event.time,
        "data": {str(k): _jsonable(v) for k, v in event.data.items()},
    }


def event_to_json(event: Event, *, seq: int | None = None) -> str:
    """The event as compact JSON: ``{"type":"event","kind":..,"seq":..,...}``."""
    return _dumps(event_to_dict(event, seq=seq))


def to_json(message: dict[str, Any]) -> str:
    """Compact JSON for any other transport message (hello, resync, error)."""
    return _dumps(message)
