"""Uploaded vs downloaded missions: 1e-7 degree integers and float32 altitudes are the same mission."""

from __future__ import annotations

import dataclasses

import numpy as np

from flightplans.items import ChangeSpeed, LoiterTime, ReturnToLaunch, Takeoff, Waypoint
from mission.missions.supervisor import same_mission

OURS = [
    Takeoff(alt_m=37.3),
    ChangeSpeed(speed_m_s=8.0),
    Waypoint(lat=39.82012345678, lon=109.98098765432, alt_m=37.3),
    LoiterTime(lat=39.8213456789, lon=109.9823456789, alt_m=123.456, seconds=30.0),
    ReturnToLaunch(),
]


def _as_downloaded(item):
    """What a vehicle sends back: lat/lon as int32 1e-7 degrees, altitude as float32."""
    changes = {}
    if hasattr(item, "lat"):
        changes["lat"] = round(item.lat * 1e7) / 1e7
        changes["lon"] = round(item.lon * 1e7) / 1e7
    if hasattr(item, "alt_m"):
        changes["alt_m"] = float(np.float32(item.alt_m))
    return dataclasses.replace(item, **changes)


def test_a_rounded_download_is_the_same_mission():
    theirs = [_as_downloaded(i) for i in OURS]
    assert theirs[2].lat != OURS[2].lat and theirs[3].alt_m != OURS[3].alt_m  # the rounding is real
    assert same_mission(OURS, theirs)


def test_a_moved_waypoint_or_other_altitude_is_another_mission():
    moved = [_as_downloaded(i) for i in OURS]
    moved[2] = dataclasses.replace(moved[2], lat=moved[2].lat + 1e-5)  # ~1 m north
    assert not same_mission(OURS, moved)
    higher = [_as_downloaded(i) for i in OURS]
    higher[3] = dataclasses.replace(higher[3], alt_m=higher[3].alt_m + 1.0)
    assert not same_mission(OURS, higher)
    assert not same_mission(OURS, OURS[:-1])
