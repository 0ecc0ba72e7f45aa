"""Per-vehicle exemptions from an event zone: the assigned vehicle flies in it, every other one is refused;
revoking or standing down ends it; a no-fly zone inside the venue is never lifted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from flightplans.geodesy import LocalFrame
from mission.airspace import service as airspace
from mission.airspace.models import ZoneCreate, ZoneKind
from mission.audit.clock import utcnow
from mission.audit.models import AuditEntry
from mission.db import session_scope
from mission.errors import InvalidTransition, NotFound
from mission.fleet.manager import VehicleProfile
from mission.fleet.models import Vehicle
from mission.link.types import FlightMode, MissionProgress, TelemetrySnapshot
from mission.safety.gate import (
    Action,
    Asker,
    FlightPath,
    GateConfig,
    GateRequest,
    PathPoint,
    VehicleView,
    judge,
    restrictions_for_span,
)
from mission.security_events import service
from mission.security_events.models import ExemptionCreate, SecurityEventCreate

FRAME = LocalFrame(39.80, 109.98)
CONFIG = GateConfig(speed_factor=1.0, time_margin_s=60.0)


def _venue() -> dict:
    ring = [FRAME.point_to_wgs84(x, y) for x, y in [(-150, -100), (150, -100), (150, 100), (-150, 100)]]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]}


def _profile(vid: int, home: tuple[float, float]) -> VehicleProfile:
    return VehicleProfile(vid, f"uav-{vid}", vid, "udpin://0.0.0.0:1", *home, 0.0, 10.0, 1800.0, 100.0)


def _view(vid: int, home: tuple[float, float]) -> VehicleView:
    snap = TelemetrySnapshot(
        vehicle_id=vid,
        received_at=0.0,
        link_up=True,
        lat=home[0],
        lon=home[1],
        alt_amsl_m=0.0,
        alt_rel_m=0.0,
        heading_deg=0.0,
        ground_speed_m_s=0.0,
        climb_m_s=0.0,
        battery_pct=95.0,
        battery_v=16.0,
        mode=FlightMode.HOLD,
        armed=False,
        in_air=False,
        gps_ok=True,
        home_ok=False,
        mission=MissionProgress(0, 0, False),
    )
    return VehicleView(profile=_profile(vid, home), snapshot=snap)


@pytest.fixture
def setup(engine):
    home = FRAME.point_to_wgs84(0, -900)
    with session_scope(engine) as s:
        for vid in (1, 2, 3):
            s.add(
                Vehicle(
                    id=vid,
                    name=f"uav-{vid}",
                    connection_url=f"udpin://0.0.0.0:{1400 + vid}",
                    sysid=vid,
                    home_lat=home[0],
                    home_lon=home[1],
                )
            )
        lat, lon = FRAME.point_to_wgs84(60, 0)
        airspace.create_zone(
            session=s,
            data=ZoneCreate(
                name="pitch helipad",
                kind=ZoneKind.no_fly,
                shape={"type": "Circle", "center": [lon, lat], "radius_m": 20},
                ceiling_m=500,
            ),
        )
        doors = utcnow() + timedelta(minutes=30)
        row = service.create(
            session=s,
            data=SecurityEventCreate(
                name="derby",
                venue=_venue(),
                doors_open_at=doors,
                starts_at=doors + timedelta(minutes=30),
                ends_at=doors + timedelta(hours=2),
                ring_radii_m=[250],
                drones=2,
            ),
            actor="dan",
        )
        service.assign(session=s, event_id=row.id, vehicles=[1, 2], actor="dan")
        event_id = row.id
    return engine, home, event_id


def _judge(engine, vid: int, home, *targets: tuple[float, float]):
    points = tuple(PathPoint(*FRAME.point_to_wgs84(*t), 60.0) for t in targets)
    request = GateRequest(
        vehicle_id=vid,
        action=Action.DISPATCH,
        asker=Asker("system:events"),
        path=FlightPath(points=points, returns_home=True),
    )
    with Session(engine) as s:
        return judge(session=s, request=request, vehicle=_view(vid, home), config=CONFIG)


def test_exempt_vehicle_flies_the_event_zone_others_are_refused(setup):
    engine, home, _ = setup
    assert _judge(engine, 1, home, (0, -60)).ok
    refused = _judge(engine, 3, home, (0, -60))
    assert not refused.ok
    assert any("event: derby" in r.message for r in refused.refusals), refused.message()


def test_no_fly_zone_inside_the_venue_stays_closed_to_the_exempt(setup):
    engine, home, _ = setup
    verdict = _judge(engine, 1, home, (60, 0))
    assert not verdict.ok and any("pitch helipad" in r.message for r in verdict.refusals)


def test_restrictions_are_per_vehicle(setup):
    engine, _, _ = setup
    with Session(engine) as s:
        mine = {r.name for r in restrictions_for_span(session=s, vehicle_id=1, flight_s=60, config=CONFIG)}
        others = {r.name for r in restrictions_for_span(session=s, vehicle_id=3, flight_s=60, config=CONFIG)}
    assert "event: derby" in others and "event: derby" not in mine
    assert "pitch helipad" in mine and "pitch helipad" in others


def test_reassign_revoke_and_expire_are_audited(setup):
    engine, home, event_id = setup
    with session_scope(engine) as s:
        service.assign(session=s, event_id=event_id, vehicles=[2, 3], actor="dan")
    assert not _judge(engine, 1, home, (0, -60)).ok
    assert _judge(engine, 3, home, (0, -60)).ok
    with session_scope(engine) as s:
        live = service.exemptions_of(session=s, event_id=event_id, include_revoked=False)
        assert sorted(e.vehicle_id for e in live) == [2, 3]
        vid3 = next(e for e in live if e.vehicle_id == 3)
        service.revoke_exemption(session=s, event_id=event_id, exemption_id=vid3.id, actor="dan")
        with pytest.raises(InvalidTransition):
            service.revoke_exemption(session=s, event_id=event_id, exemption_id=vid3.id, actor="dan")
    assert not _judge(engine, 3, home, (0, -60)).ok
    with session_scope(engine) as s:
        e = service.grant_exemption(
            session=s,
            event_id=event_id,
            data=ExemptionCreate(vehicle_id=1, reason="incident at gate 4", incident_id=None),
            actor="dan",
        )
        assert e.event_id == event_id
    assert _judge(engine, 1, home, (0, -60)).ok
    with session_scope(engine) as s:
        assert service.expire_all(session=s, event_id=event_id, actor="system:events") == 2
    assert not _judge(engine, 1, home, (0, -60)).ok and not _judge(engine, 2, home, (0, -60)).ok
    with Session(engine) as s:
        actions = [a.action for a in s.exec(select(AuditEntry)).all()]
    assert actions.count("exemption.grant") == 4 and actions.count("exemption.revoke") == 4
    with session_scope(engine) as s, pytest.raises(NotFound):
        service.assign(session=s, event_id=event_id, vehicles=[9], actor="dan")


def test_choose_vehicles_prefers_available_charged_and_near():
    fleet = [
        service.Availability(1, "a", True, 50.0, 100.0),
        service.Availability(2, "b", True, 95.0, 3000.0),
        service.Availability(3, "c", False, 100.0, 10.0, "not connected"),
        service.Availability(4, "d", True, 96.0, 500.0),
    ]
    chosen, skipped = service.choose_vehicles(fleet, count=2)
    assert chosen == [4, 2]
    assert "c: not connected" in skipped
