"""Reports over a chosen period, from the stored records (incidents, flights, missions, patrol runs).

- Response: dispatch (the incident assigned to a drone) to on scene, p50/p90 per priority, per patrol zone
  the incident lies in, and per dock of the drone that served it.
- Flights and flight hours per drone: manual/dispatch flights that got airborne and missions that
  started, each from its start to its end (or to the end of the period if still flying).
- Battery cycles per drone: the charge consumed by its sorties (take-off to landing, cut from telemetry by
  mission/reports/sorties.py) that took off in the period, over 100 %: a 60 % -> 20 % sortie is 0.4 cycles.
  A sortie still in the air, or without a charge reading at either end, counts as a sortie but adds none.
- Patrol completion: runs scheduled in the period by outcome; completion = completed / runs that launched.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from shapely.geometry import Point
from sqlmodel import Session, col, select

from mission.airspace import service as airspace
from mission.airspace.models import Zone, ZoneKind, ZoneRead
from mission.audit.clock import as_utc
from mission.fleet.models import Vehicle
from mission.flights.models import Flight
from mission.incidents.metrics import percentile
from mission.incidents.models import Incident
from mission.missions.models import Mission
from mission.patrols.models import Patrol, PatrolRun, RunStatus
from mission.reports.models import Sortie

OUTSIDE = "-"  # an incident outside every patrol zone, or a drone without a dock


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """Dispatch to on scene over one group of incidents."""

    group: str  # priority, zone or dock
    key: str
    incidents: int
    on_scene: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class DroneRow:
    vehicle_id: int
    name: str
    dock: str
    flights: int
    missions: int
    flight_hours: float
    sorties: int
    charge_used_pct: float  # points of 100 % consumed over the period's sorties
    battery_cycles: float  # charge_used_pct / 100


@dataclass(frozen=True, slots=True)
class PatrolRow:
    patrol_id: int
    name: str
    runs: int
    launched: int
    completed: int
    skipped: int
    failed: int
    preempted: int
    completion: float | None  # completed / launched


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    response: list[ResponseRow]
    drones: list[DroneRow]
    patrols: list[PatrolRow]


def _within(at: datetime | None, since: datetime, until: datetime) -> bool:
    return at is not None and since <= as_utc(at) < until


def _groups(rows: Iterable[tuple[str, str, float | None]]) -> list[ResponseRow]:
    by: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    for group, key, seconds in rows:
        by[(group, key)].append(seconds)
    out = []
    for (group, key), values in sorted(by.items()):
        known = [v for v in values if v is not None]
        out.append(
            ResponseRow(
                group=group,
                key=key,
                incidents=len(values),
                on_scene=len(known),
                p50_s=percentile(known, 50),
                p90_s=percentile(known, 90),
            )
        )
    return out


def response_rows(*, session: Session, since: datetime, until: datetime) -> list[ResponseRow]:
    """Dispatch -> on scene percentiles by priority, zone and dock, for incidents dispatched in the period."""
    zones = [
        (ZoneRead.model_validate(z).name, airspace.shape_geometry(ZoneRead.model_validate(z).shape))
        for z in session.exec(select(Zone).where(col(Zone.kind) == ZoneKind.patrol.value)).all()
    ]
    docks = {v.id: v.dock or OUTSIDE for v in session.exec(select(Vehicle)).all()}
    rows: list[tuple[str, str, float | None]] = []
    for inc in session.exec(select(Incident).where(col(Incident.assigned_at).is_not(None))).all():
        if not _within(inc.assigned_at, since, until):
            continue
        assert inc.assigned_at is not None
        seconds = (
            (as_utc(inc.on_scene_at) - as_utc(inc.assigned_at)).total_seconds() if inc.on_scene_at else None
        )
        here = Point(inc.lon, inc.lat)
        zone = next((name for name, geom in zones if geom.covers(here)), OUTSIDE)
        rows += [
            ("priority", f"P{inc.priority}", seconds),
            ("zone", zone, seconds),
            ("dock", docks.get(inc.vehicle_id, OUTSIDE) if inc.vehicle_id else OUTSIDE, seconds),
        ]
    return _groups(rows)


def drone_rows(*, session: Session, since: datetime, until: datetime) -> list[DroneRow]:
    """Flights, missions, flight hours and battery cycles per drone in the period."""
    seconds: dict[int, float] = defaultdict(float)
    flights: dict[int, int] = defaultdict(int)
    missions: dict[int, int] = defaultdict(int)

    def span(start: datetime, end: datetime | None) -> float:
        a, b = max(as_utc(start), since), min(as_utc(end) if end else until, until)
        return max(0.0, (b - a).total_seconds())

    for f in session.exec(select(Flight).where(col(Flight.airborne))).all():
        if not _within(f.created_at, since, until):
            continue
        flights[f.vehicle_id] += 1
        seconds[f.vehicle_id] += span(f.created_at, f.ended_at)
    for m in session.exec(select(Mission).where(col(Mission.started_at).is_not(None))).all():
        if not _within(m.started_at, since, until):
            continue
        assert m.started_at is not None
        missions[m.vehicle_id] += 1
        seconds[m.vehicle_id] += span(m.started_at, m.ended_at)
    sorties: dict[int, int] = defaultdict(int)
    used_pct: dict[int, float] = defaultdict(float)
    for s in session.exec(select(Sortie)).all():
        if not _within(s.took_off_at, since, until):
            continue
        sorties[s.vehicle_id] += 1
        used_pct[s.vehicle_id] += s.used_pct or 0.0
    out = []
    for v in session.exec(select(Vehicle).order_by(col(Vehicle.id))).all():
        assert v.id is not None
        out.append(
            DroneRow(
                vehicle_id=v.id,
                name=v.name,
                dock=v.dock or OUTSIDE,
                flights=flights[v.id],
                missions=missions[v.id],
                flight_hours=round(seconds[v.id] / 3600.0, 3),
                sorties=sorties[v.id],
                charge_used_pct=round(used_pct[v.id], 1),
                battery_cycles=round(used_pct[v.id] / 100.0, 3),
            )
        )
    return out


def patrol_rows(*, session: Session, since: datetime, until: datetime) -> list[PatrolRow]:
    """Each patrol's runs scheduled in the period, by outcome."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for run in session.exec(select(PatrolRun)).all():
        if _within(run.scheduled_for, since, until):
            counts[run.patrol_id][run.status] += 1
    out = []
    for p in session.exec(select(Patrol).order_by(col(Patrol.id))).all():
        assert p.id is not None
        c = counts[p.id]
        launched = c[RunStatus.LAUNCHED.value] + c[RunStatus.COMPLETED.value] + c[RunStatus.PREEMPTED.value]
        out.append(
            PatrolRow(
                patrol_id=p.id,
                name=p.name,
                runs=sum(c.values()),
                launched=launched,
                completed=c[RunStatus.COMPLETED.value],
                skipped=c[RunStatus.SKIPPED.value],
                failed=c[RunStatus.FAILED.value],
                preempted=c[RunStatus.PREEMPTED.value],
                completion=round(c[RunStatus.COMPLETED.value] / launched, 4) if launched else None,
            )
        )
    return out


def report(*, session: Session, since: datetime, until: datetime) -> Report:
    """Every section of the report for [since, until)."""
    since, until = as_utc(since), as_utc(until)
    return Report(
        since=since,
        until=until,
        response=response_rows(session=session, since=since, until=until),
        drones=drone_rows(session=session, since=since, until=until),
        patrols=patrol_rows(session=session, since=since, until=until),
    )


def to_csv(rows: Iterable[object]) -> str:
    """Rows of one section (dataclasses) as CSV with a header line."""
    items = [asdict(r) for r in rows]  # type: ignore[call-overload]
    buf = io.StringIO()
    if items:
        writer = csv.DictWriter(buf, fieldnames=list(items[0]))
        writer.writeheader()
        writer.writerows(items)
    return buf.getvalue()
