"""Compile a metric plan (or its waypoints) into typed WGS84 mission items a PX4 vehicle can fly."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from flightplans.errors import PlanningError
from flightplans.geodesy import LocalFrame
from flightplans.items import (
    ChangeSpeed,
    LoiterTime,
    MissionItem,
    ReturnToLaunch,
    SetActuator,
    Takeoff,
    Waypoint,
)
from flightplans.validate import check_finite_point, check_positive

XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Actuate:
    """On reaching waypoint ``at``, set payload output ``index`` (1..6) to ``value`` (-1..1)."""

    at: int
    index: int
    value: float


@dataclass(frozen=True, slots=True)
class Hold:
    """Wait ``seconds`` at waypoint ``at`` (circling at ``radius_m``; 0 hovers)."""

    at: int
    seconds: float
    radius_m: float = 0.0


@dataclass(frozen=True, slots=True)
class Speed:
    """From waypoint ``at`` on, fly at ``speed_m_s`` over the ground."""

    at: int
    speed_m_s: float


Action = Actuate | Hold | Speed


def plan_waypoints(plan_or_waypoints: object) -> list[XY]:
    """The (x, y) metre waypoints of a plan (anything with ``.waypoints``) or of a list of points."""
    if hasattr(plan_or_waypoints, "assignments"):
        raise PlanningError(
            "a rings plan holds one loop per drone: compile each of plan.assignments, not the whole plan",
            code="plan.compile.rings_plan_holds_one",
        )
    raw = getattr(plan_or_waypoints, "waypoints", plan_or_waypoints)
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise PlanningError(
            "expected a plan with waypoints or a list of (x, y) points, "
            f"got {type(plan_or_waypoints).__name__}",
            code="plan.compile.expected_plan_waypoints_list",
            params={"name": type(plan_or_waypoints).__name__},
        )
    if not raw:
        raise PlanningError("there are no waypoints to compile", code="plan.compile.there_waypoints_compile")
    points = []
    for i, p in enumerate(raw):
        try:
            x, y = p
        except (TypeError, ValueError) as exc:
            raise PlanningError(
                f"waypoint {i} must be an (x, y) pair, got {p!r}",
                code="plan.compile.waypoint_x_y_pair",
                params={"i": i, "p": repr(p)},
            ) from exc
        points.append(check_finite_point(f"waypoint {i}", x, y))
    return points


def compile_mission(
    plan_or_waypoints: object,
    *,
    frame: LocalFrame,
    alt_m: float,
    speed_m_s: float | None = None,
    actions: Sequence[Action] = (),
    takeoff: bool = True,
    rtl: bool = True,
    acceptance_m: float | None = None,
) -> tuple[MissionItem, ...]:
    """Mission items for a plan's waypoints at ``alt_m`` above home, with actions at given waypoints.

    The order is: take-off, the cruise speed, then per waypoint its Waypoint (or LoiterTime for a Hold)
    followed by the speed changes and actuator actions attached to it, then return to launch.

    >>> frame = LocalFrame(47.0, 8.0)
    >>> items = compile_mission([(0, 0), (100, 0)], frame=frame, alt_m=40, actions=[Actuate(1, 2, 1.0)])
    >>> [item.kind for item in items]
    ['takeoff', 'waypoint', 'waypoint', 'set_actuator', 'return']
    """
    if not isinstance(frame, LocalFrame):
        raise PlanningError(
            f"frame must be a LocalFrame, got {type(frame).__name__}",
            code="plan.compile.frame_localframe",
            params={"name": type(frame).__name__},
        )
    points = plan_waypoints(plan_or_waypoints)
    alt = check_positive("alt_m", alt_m)
    if acceptance_m is not None:
        check_positive("acceptance_m", acceptance_m)
    if isinstance(actions, str) or not isinstance(actions, Sequence):
        raise PlanningError(
            f"actions must be a list of Actuate/Hold/Speed, got {type(actions).__name__}",
            code="plan.compile.actions_list_actuate_hold",
            params={"name": type(actions).__name__},
        )
    holds: dict[int, Hold] = {}
    after: dict[int, list[MissionItem]] = {}
    for n, action in enumerate(actions):
        at = _check_at(n, action, len(points))
        match action:
            case Hold(seconds=seconds, radius_m=radius_m):
                check_positive(f"actions[{n}] seconds", seconds)
                if not (math.isfinite(radius_m) and radius_m >= 0):
                    raise PlanningError(
                        f"actions[{n}] radius_m must be finite and >= 0, got {radius_m!r}",
                        code="plan.compile.actions_radius_m_finite",
                        params={"n": n, "radius_m": repr(radius_m)},
                    )
                if at in holds:
                    raise PlanningError(
                        f"actions[{n}]: waypoint {at} already has a Hold",
                        code="plan.compile.actions_waypoint_already_has",
                        params={"n": n, "at": at},
                    )
                holds[at] = action
            case Speed(speed_m_s=speed):
                after.setdefault(at, []).append(ChangeSpeed(check_positive(f"actions[{n}] speed_m_s", speed)))
            case Actuate(index=index, value=value):
                if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= 6:
                    raise PlanningError(
                        f"actions[{n}] actuator index must be 1..6, got {index!r}",
                        code="plan.compile.actions_actuator_index",
                        params={"n": n, "index": repr(index)},
                    )
                if not (isinstance(value, int | float) and math.isfinite(value) and -1 <= value <= 1):
                    raise PlanningError(
                        f"actions[{n}] actuator value must be within -1..1, got {value!r}",
                        code="plan.compile.actions_actuator_value_within",
                        params={"n": n, "value": repr(value)},
                    )
                after.setdefault(at, []).append(SetActuator(index, float(value)))
    items: list[MissionItem] = []
    if takeoff:
        items.append(Takeoff(alt))
    if speed_m_s is not None:
        items.append(ChangeSpeed(check_positive("speed_m_s", speed_m_s)))
    for i, (x, y) in enumerate(points):
        lat, lon = frame.point_to_wgs84(x, y)
        hold = holds.get(i)
        if hold is None:
            items.append(Waypoint(lat, lon, alt, acceptance_m=acceptance_m))
        else:
            items.append(
                LoiterTime(lat, lon, alt, seconds=float(hold.seconds), radius_m=float(hold.radius_m))
            )
        items.extend(after.get(i, ()))
    if rtl:
        items.append(ReturnToLaunch())
    return tuple(items)


def _check_at(n: int, action: object, count: int) -> int:
    if not isinstance(action, Actuate | Hold | Speed):
        raise PlanningError(
            f"actions[{n}] must be Actuate, Hold or Speed, got {type(action).__name__}",
            code="plan.compile.actions_actuate_hold_speed",
            params={"n": n, "name": type(action).__name__},
        )
    at = action.at
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < count:
        raise PlanningError(
            f"actions[{n}] is at waypoint {at!r}, but the plan has waypoints 0..{count - 1}",
            code="plan.compile.actions_waypoint_but_plan",
            params={"n": n, "at": repr(at), "count": count - 1},
        )
    return at
