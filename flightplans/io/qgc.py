"""QGroundControl ``.plan`` files (JSON): mission items, geofence and rally points, both ways.

Follows QGC's Plan file format (fileType "Plan", version 1; mission version 2 with SimpleItems; geoFence
version 2 with polygon/circle version 1; rallyPoints version 2). Mission altitudes are relative to home
(MAV_FRAME_GLOBAL_RELATIVE_ALT = 3, QGC AltitudeMode 1); items in AMSL frames are converted with the
planned home altitude on import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flightplans.errors import PlanningError
from flightplans.items import (
    ChangeSpeed,
    FenceCircle,
    FencePolygon,
    Geofence,
    Land,
    LoiterTime,
    MissionItem,
    RallyPoint,
    ReturnToLaunch,
    SetActuator,
    Takeoff,
    Waypoint,
)
from flightplans.validate import check_latlon, check_positive

# MAV_CMD
NAV_WAYPOINT = 16
NAV_LOITER_TIME = 19
NAV_RETURN_TO_LAUNCH = 20
NAV_LAND = 21
NAV_TAKEOFF = 22
DO_CHANGE_SPEED = 178
DO_SET_ACTUATOR = 187
# MAV_FRAME
FRAME_GLOBAL = 0
FRAME_MISSION = 2
FRAME_GLOBAL_RELATIVE_ALT = 3
FRAME_GLOBAL_INT = 5
FRAME_GLOBAL_RELATIVE_ALT_INT = 6
_RELATIVE_FRAMES = {FRAME_GLOBAL_RELATIVE_ALT, FRAME_GLOBAL_RELATIVE_ALT_INT}
_AMSL_FRAMES = {FRAME_GLOBAL, FRAME_GLOBAL_INT}
# QGroundControlQmlGlobal::AltMode
_ALTITUDE_MODE_RELATIVE = 1
MAV_AUTOPILOT_PX4 = 12
MAV_TYPE_QUADROTOR = 2


@dataclass(frozen=True, slots=True)
class QgcPlan:
    """The contents of a ``.plan`` file: mission, geofence, rally points and the planned home."""

    items: tuple[MissionItem, ...]
    geofence: Geofence
    rally: tuple[RallyPoint, ...]
    home_lat: float
    home_lon: float
    home_amsl_m: float
    cruise_speed_m_s: float = 15.0
    hover_speed_m_s: float = 5.0


def _num(value: float) -> float | None:
    """NaN as JSON null, the way QGC writes unused params."""
    return None if math.isnan(value) else value


def _simple(command: int, frame: int, params: Sequence[float], *, seq: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "autoContinue": True,
        "command": command,
        "doJumpId": seq,
        "frame": frame,
        "params": [_num(float(p)) for p in params],
        "type": "SimpleItem",
    }
    if frame in _RELATIVE_FRAMES:
        # QGC saves the altitude fields only on items that specify an altitude.
        item["AMSLAltAboveTerrain"] = None
        item["Altitude"] = float(params[6])
        item["AltitudeMode"] = _ALTITUDE_MODE_RELATIVE
    return item


def _item_to_json(item: MissionItem, *, seq: int, home: tuple[float, float]) -> dict[str, Any]:
    nan = math.nan
    match item:
        case Takeoff(alt_m=alt):
            # PX4 takes off where it is; the planned home keeps QGC's map tidy.
            return _simple(NAV_TAKEOFF, FRAME_GLOBAL_RELATIVE_ALT, [0, 0, 0, nan, *home, alt], seq=seq)
        case Waypoint(lat=lat, lon=lon, alt_m=alt, hold_s=hold, acceptance_m=acc):
            params = [hold, acc or 0.0, 0, nan, lat, lon, alt]
            return _simple(NAV_WAYPOINT, FRAME_GLOBAL_RELATIVE_ALT, params, seq=seq)
        case LoiterTime(lat=lat, lon=lon, alt_m=alt, seconds=seconds, radius_m=radius):
            params = [seconds, 0, radius, 1, lat, lon, alt]
            return _simple(NAV_LOITER_TIME, FRAME_GLOBAL_RELATIVE_ALT, params, seq=seq)
        case Land(lat=lat, lon=lon):
            return _simple(NAV_LAND, FRAME_GLOBAL_RELATIVE_ALT, [0, 0, 0, nan, lat, lon, 0], seq=seq)
        case ReturnToLaunch():
            return _simple(NAV_RETURN_TO_LAUNCH, FRAME_MISSION, [0] * 7, seq=seq)
        case ChangeSpeed(speed_m_s=speed):
            # param1 1 = ground speed, param3 -1 = leave the throttle alone
            return _simple(DO_CHANGE_SPEED, FRAME_MISSION, [1, speed, -1, 0, 0, 0, 0], seq=seq)
        case SetActuator(index=index, value=value):
            params = [nan] * 6 + [0]
            params[index - 1] = value
            return _simple(DO_SET_ACTUATOR, FRAME_MISSION, params, seq=seq)
    raise PlanningError(
        f"mission item {seq - 1} cannot be written to a .plan: {item!r}",
        code="plan.qgc.mission_item_cannot_written",
        params={"seq": seq - 1, "item": repr(item)},
    )


def to_qgc(
    items: Sequence[MissionItem],
    *,
    home_lat: float,
    home_lon: float,
    home_amsl_m: float = 0.0,
    geofence: Geofence | None = None,
    rally: Sequence[RallyPoint] = (),
    cruise_speed_m_s: float = 15.0,
    hover_speed_m_s: float = 5.0,
    vehicle_type: int = MAV_TYPE_QUADROTOR,
    firmware_type: int = MAV_AUTOPILOT_PX4,
) -> dict[str, Any]:
    """A QGroundControl ``.plan`` document (a JSON-ready dict).

    >>> doc = to_qgc([Takeoff(30.0), ReturnToLaunch()], home_lat=47.0, home_lon=8.0)
    >>> doc["fileType"], [i["command"] for i in doc["mission"]["items"]]
    ('Plan', [22, 20])
    """
    check_latlon(home_lat, home_lon)
    if not math.isfinite(home_amsl_m):
        raise PlanningError(
            f"home_amsl_m must be finite, got {home_amsl_m!r}",
            code="plan.qgc.home_amsl_m_finite",
            params={"home_amsl_m": repr(home_amsl_m)},
        )
    if not items:
        raise PlanningError("a .plan needs at least one mission item", code="plan.qgc.plan_needs_least_one")
    check_positive("cruise_speed_m_s", cruise_speed_m_s)
    check_positive("hover_speed_m_s", hover_speed_m_s)
    mission_items = [
        _item_to_json(item, seq=n + 1, home=(home_lat, home_lon)) for n, item in enumerate(items)
    ]
    polygons = []
    circles = []
    for shape in geofence.shapes if geofence is not None else ():
        match shape:
            case FencePolygon(points=points, inclusion=inclusion):
                if len(points) < 3:
                    raise PlanningError(
                        f"a fence polygon needs at least 3 vertices, got {len(points)}",
                        code="plan.qgc.fence_polygon_needs_least",
                        params={"n_points": len(points)},
                    )
                polygons.append(
                    {"inclusion": inclusion, "polygon": [[lat, lon] for lat, lon in points], "version": 1}
                )
            case FenceCircle(lat=lat, lon=lon, radius_m=radius, inclusion=inclusion):
                circles.append(
                    {"circle": {"center": [lat, lon], "radius": radius}, "inclusion": inclusion, "version": 1}
                )
    return {
        "fileType": "Plan",
        "geoFence": {"circles": circles, "polygons": polygons, "version": 2},
        "groundStation": "skywarden",
        "mission": {
            "cruiseSpeed": cruise_speed_m_s,
            "firmwareType": firmware_type,
            "globalPlanAltitudeMode": _ALTITUDE_MODE_RELATIVE,
            "hoverSpeed": hover_speed_m_s,
            "items": mission_items,
            "plannedHomePosition": [home_lat, home_lon, home_amsl_m],
            "vehicleType": vehicle_type,
            "version": 2,
        },
        "rallyPoints": {"points": [[p.lat, p.lon, p.alt_m] for p in rally], "version": 2},
        "version": 1,
    }


def dumps_qgc(items: Sequence[MissionItem], **kwargs: Any) -> str:
    """A ``.plan`` file's text (see to_qgc for the keyword arguments)."""
    return json.dumps(to_qgc(items, **kwargs), indent=4, allow_nan=False)


def from_qgc(doc: dict[str, Any] | str) -> QgcPlan:
    """Read a QGroundControl ``.plan`` (dict or JSON text) into typed items, geofence and rally points."""
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise PlanningError(
                f".plan is not valid JSON: {exc}", code="plan.qgc.plan_valid_json", params={"exc": exc}
            ) from exc
    if not isinstance(doc, dict):
        raise PlanningError(
            f".plan must be a JSON object, got {type(doc).__name__}",
            code="plan.qgc.plan_json_object",
            params={"name": type(doc).__name__},
        )
    if doc.get("fileType") != "Plan":
        raise PlanningError(
            f'.plan fileType must be "Plan", got {doc.get("fileType")!r}',
            code="plan.qgc.plan_filetype_plan",
            params={"get": repr(doc.get("fileType"))},
        )
    if doc.get("version") != 1:
        raise PlanningError(
            f".plan version {doc.get('version')!r} is not supported (expected 1)",
            code="plan.qgc.plan_version_supported_expected",
            params={"get": repr(doc.get("version"))},
        )
    mission = _obj(doc, "mission", ".plan")
    if mission.get("version") != 2:
        raise PlanningError(
            f".plan mission version {mission.get('version')!r} is not supported (expected 2)",
            code="plan.qgc.plan_mission_version_supported",
            params={"get": repr(mission.get("version"))},
        )
    home = mission.get("plannedHomePosition")
    if not (isinstance(home, list) and len(home) >= 2):
        raise PlanningError(
            ".plan mission.plannedHomePosition must be [lat, lon, alt]",
            code="plan.qgc.plan_mission_plannedhomeposition_lat",
        )
    home_lat, home_lon = check_latlon(*home[:2])
    home_amsl = _float(home[2], "mission.plannedHomePosition[2]") if len(home) > 2 else 0.0
    raw_items = mission.get("items")
    if not isinstance(raw_items, list):
        raise PlanningError(".plan mission.items must be a list", code="plan.qgc.plan_mission_items_list")
    items = tuple(_item_from_json(raw, n, home_amsl) for n, raw in enumerate(raw_items))
    shapes: list[FencePolygon | FenceCircle] = []
    fence = doc.get("geoFence") or {"polygons": [], "circles": []}
    if not isinstance(fence, dict):
        raise PlanningError(".plan geoFence must be an object", code="plan.qgc.plan_geofence_object")
    rally_doc = doc.get("rallyPoints") or {}
    if not isinstance(rally_doc, dict):
        raise PlanningError(".plan rallyPoints must be an object", code="plan.qgc.plan_rallypoints_object")
    for n, poly in enumerate(fence.get("polygons") or []):
        where = f".plan geoFence.polygons[{n}]"
        vertices = poly.get("polygon") if isinstance(poly, dict) else None
        if not isinstance(vertices, list) or len(vertices) < 3:
            raise PlanningError(
                f"{where} needs a 'polygon' of at least 3 [lat, lon] vertices",
                code="plan.qgc.needs_polygon_least_lat",
                params={"where": where},
            )
        points = tuple(check_latlon(*_pair(v, f"{where}.polygon[{i}]")) for i, v in enumerate(vertices))
        shapes.append(FencePolygon(points, inclusion=bool(poly.get("inclusion", True))))
    for n, circ in enumerate(fence.get("circles") or []):
        where = f".plan geoFence.circles[{n}]"
        body = circ.get("circle") if isinstance(circ, dict) else None
        if not isinstance(body, dict):
            raise PlanningError(
                f"{where} needs a 'circle' with center and radius",
                code="plan.qgc.needs_circle_center_radius",
                params={"where": where},
            )
        lat, lon = check_latlon(*_pair(body.get("center"), f"{where}.circle.center"))
        radius = check_positive(f"{where}.circle.radius", body.get("radius"))
        shapes.append(FenceCircle(lat, lon, radius, inclusion=bool(circ.get("inclusion", True))))
    rally = []
    for n, point in enumerate(rally_doc.get("points") or []):
        where = f".plan rallyPoints.points[{n}]"
        if not (isinstance(point, list) and len(point) == 3):
            raise PlanningError(
                f"{where} must be [lat, lon, alt]", code="plan.qgc.lat_lon_alt", params={"where": where}
            )
        lat, lon = check_latlon(point[0], point[1])
        rally.append(RallyPoint(lat, lon, _float(point[2], where)))
    return QgcPlan(
        items=items,
        geofence=Geofence(tuple(shapes)),
        rally=tuple(rally),
        home_lat=home_lat,
        home_lon=home_lon,
        home_amsl_m=home_amsl,
        cruise_speed_m_s=float(mission.get("cruiseSpeed", 15.0)),
        hover_speed_m_s=float(mission.get("hoverSpeed", 5.0)),
    )


def _obj(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise PlanningError(
            f"{where} has no '{key}' object", code="plan.qgc.has_object", params={"where": where, "key": key}
        )
    return value


def _float(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlanningError(
            f"{where} must be a finite number, got {value!r}",
            code="plan.qgc.finite_number",
            params={"where": where, "value": repr(value)},
        )
    return float(value)


def _pair(value: object, where: str) -> tuple[float, float]:
    if not (isinstance(value, list | tuple) and len(value) >= 2):
        raise PlanningError(f"{where} must be [lat, lon]", code="plan.qgc.lat_lon", params={"where": where})
    return _float(value[0], where), _float(value[1], where)


def _item_from_json(raw: object, n: int, home_amsl_m: float) -> MissionItem:
    where = f".plan mission item {n}"
    if not isinstance(raw, dict):
        raise PlanningError(f"{where} must be an object", code="plan.qgc.object", params={"where": where})
    if raw.get("type") != "SimpleItem":
        kind = raw.get("complexItemType", raw.get("type"))
        raise PlanningError(
            f"{where} is a {kind!r} item; only SimpleItems are supported (flatten it in QGC)",
            code="plan.qgc.item_only_simpleitems_supported",
            params={"where": where, "kind": repr(kind)},
        )
    command = raw.get("command")
    frame = raw.get("frame")
    params = raw.get("params")
    if not (isinstance(params, list) and len(params) == 7):
        raise PlanningError(f"{where} needs 7 params", code="plan.qgc.needs_params", params={"where": where})
    p = [math.nan if v is None else _float(v, f"{where} param{i + 1}") for i, v in enumerate(params)]

    def position() -> tuple[float, float, float]:
        lat, lon = p[4], p[5]
        try:
            check_latlon(lat, lon)
        except PlanningError as exc:
            raise PlanningError(
                f"{where} (command {command}): {exc}",
                code="plan.qgc.command",
                params={"where": where, "command": command, "exc": exc},
            ) from exc
        alt = p[6]
        if frame in _AMSL_FRAMES:
            alt -= home_amsl_m
        elif frame not in _RELATIVE_FRAMES:
            raise PlanningError(
                f"{where} (command {command}) uses MAV_FRAME {frame}; supported are relative-to-home "
                "(3, 6) and AMSL (0, 5)",
                code="plan.qgc.command_uses_mav_frame",
                params={"where": where, "command": command, "frame": frame},
            )
        return lat, lon, _float(alt, f"{where} altitude")

    match command:
        case 16:
            lat, lon, alt = position()
            hold = 0.0 if math.isnan(p[0]) else p[0]
            acceptance = p[1] if p[1] > 0 else None
            return Waypoint(lat, lon, alt, hold_s=hold, acceptance_m=acceptance)
        case 19:
            lat, lon, alt = position()
            return LoiterTime(lat, lon, alt, seconds=p[0], radius_m=0.0 if math.isnan(p[2]) else p[2])
        case 20:
            return ReturnToLaunch()
        case 21:
            lat, lon, _ = position()
            return Land(lat, lon)
        case 22:
            if frame in _AMSL_FRAMES:
                return Takeoff(_float(p[6] - home_amsl_m, f"{where} altitude"))
            return Takeoff(_float(p[6], f"{where} altitude"))
        case 178:
            return ChangeSpeed(check_positive(f"{where} speed (param2)", p[1]))
        case 187:
            set_outputs = [i for i in range(6) if not math.isnan(p[i])]
            if len(set_outputs) != 1:
                raise PlanningError(
                    f"{where}: DO_SET_ACTUATOR must set exactly one output, sets {len(set_outputs)}",
                    code="plan.qgc.do_set_actuator_set",
                    params={"where": where, "n_set_outputs": len(set_outputs)},
                )
            return SetActuator(set_outputs[0] + 1, p[set_outputs[0]])
    raise PlanningError(
        f"{where}: MAV_CMD {command!r} is not supported by skywarden missions",
        code="plan.qgc.mav_cmd_supported_skywarden",
        params={"where": where, "command": repr(command)},
    )
