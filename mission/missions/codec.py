"""Typed mission items and geofences <-> the JSON stored with a mission."""

from __future__ import annotations

import dataclasses
from typing import Any

from flightplans.items import (
    ChangeSpeed,
    FenceCircle,
    FencePolygon,
    Geofence,
    Land,
    LoiterTime,
    MissionItem,
    ReturnToLaunch,
    SetActuator,
    Takeoff,
    Waypoint,
)

_ITEM_TYPES: dict[str, type] = {
    "takeoff": Takeoff,
    "waypoint": Waypoint,
    "loiter_time": LoiterTime,
    "change_speed": ChangeSpeed,
    "set_actuator": SetActuator,
    "land": Land,
    "return": ReturnToLaunch,
}


def item_to_json(item: MissionItem) -> dict[str, Any]:
    """One item as a JSON object carrying its ``kind``."""
    return dataclasses.asdict(item)


def item_from_json(obj: dict[str, Any]) -> MissionItem:
    """The typed item a JSON object describes; ValueError names an unknown kind."""
    kind = obj.get("kind")
    cls = _ITEM_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown mission item kind {kind!r}")
    item: MissionItem = cls(**obj)
    return item


def items_to_json(items: tuple[MissionItem, ...] | list[MissionItem]) -> list[dict[str, Any]]:
    """Items as a JSON list."""
    return [item_to_json(i) for i in items]


def items_from_json(objs: list[dict[str, Any]]) -> list[MissionItem]:
    """Typed items from a JSON list."""
    return [item_from_json(o) for o in objs]


def geofence_to_json(fence: Geofence) -> dict[str, Any]:
    """A geofence as JSON (points as [lat, lon] pairs)."""
    return {"shapes": [dataclasses.asdict(s) for s in fence.shapes]}


def geofence_from_json(obj: dict[str, Any]) -> Geofence:
    """The typed geofence a JSON object describes."""
    shapes: list[FencePolygon | FenceCircle] = []
    for s in obj.get("shapes", []):
        if s.get("kind") == "polygon":
            pts = tuple((float(p[0]), float(p[1])) for p in s["points"])
            shapes.append(FencePolygon(points=pts, inclusion=bool(s["inclusion"])))
        elif s.get("kind") == "circle":
            shapes.append(
                FenceCircle(
                    lat=float(s["lat"]),
                    lon=float(s["lon"]),
                    radius_m=float(s["radius_m"]),
                    inclusion=bool(s["inclusion"]),
                )
            )
        else:
            raise ValueError(f"unknown geofence shape kind {s.get('kind')!r}")
    return Geofence(shapes=tuple(shapes))
