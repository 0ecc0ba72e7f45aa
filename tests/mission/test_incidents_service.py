"""Incident lifecycle in the database (SQLite and PostgreSQL): every timestamp kept, illegal moves refused."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import SQLModel

from api import migrations
from mission.db import make_engine, session_scope
from mission.errors import InvalidTransition, NotFound
from mission.fleet.models import Vehicle
from mission.incidents import service
from mission.incidents.metrics import percentile
from mission.incidents.models import IncidentCreate, IncidentSource, IncidentState

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    migrations.upgrade(eng)
    importlib.import_module("mission.incidents.models")
    SQLModel.metadata.create_all(eng)
    with session_scope(eng) as s:
        s.add(
            Vehicle(
                name="uav-1", connection_url="udpin://0.0.0.0:14540", sysid=1, home_lat=39.82, home_lon=109.98
            )
        )
    yield eng
    eng.dispose()


def new(session, **kw):
    data = IncidentCreate(lat=39.821, lon=109.981, kind="intrusion", **kw)
    return service.create(session=session, data=data, actor="dan", channel=IncidentSource.MQTT, at=T0)


def test_full_lifecycle_keeps_every_timestamp(engine):
    with session_scope(engine) as s:
        inc = new(s)
        iid = inc.id
        service.assign(
            session=s,
            incident_id=iid,
            vehicle_id=1,
            decision={"explanation": "x"},
            actor="sys",
            at=T0 + timedelta(seconds=1),
        )
        service.mark_airborne(session=s, incident_id=iid, actor="sys", at=T0 + timedelta(seconds=2))
        service.transition(
            session=s, incident_id=iid, to=IncidentState.EN_ROUTE, actor="sys", at=T0 + timedelta(seconds=2)
        )
        service.transition(
            session=s, incident_id=iid, to=IncidentState.ON_SCENE, actor="sys", at=T0 + timedelta(seconds=90)
        )
        service.transition(
            session=s, incident_id=iid, to=IncidentState.CLOSED, actor="dan", at=T0 + timedelta(seconds=400)
        )
    with session_scope(engine) as s:
        inc = service.get(session=s, incident_id=iid)
        times = service.response_times(inc)
        assert (times.to_assigned_s, times.to_airborne_s, times.to_on_scene_s) == (1.0, 2.0, 90.0)
        assert inc.channel == "mqtt" and inc.state == "closed" and inc.closed_at is not None
        kinds = [e.kind for e in service.events(session=s, incident_id=iid)]
        assert kinds == ["created", "assigned", "airborne", "en_route", "on_scene", "closed"]


def test_illegal_moves_name_the_states(engine):
    with session_scope(engine) as s:
        iid = new(s).id
        with pytest.raises(
            InvalidTransition, match=r"incident \d+ is new; it can become on_scene only from en_route"
        ):
            service.transition(session=s, incident_id=iid, to=IncidentState.ON_SCENE, actor="x")
        service.transition(session=s, incident_id=iid, to=IncidentState.CLOSED, actor="x")
        with pytest.raises(InvalidTransition, match="only a new incident can be assigned"):
            service.assign(session=s, incident_id=iid, vehicle_id=1, decision={}, actor="x")
        with pytest.raises(NotFound, match="incident 999 does not exist"):
            service.get(session=s, incident_id=999)


def test_a_failed_launch_unassigns_and_can_be_assigned_again(engine):
    with session_scope(engine) as s:
        iid = new(s).id
        service.assign(session=s, incident_id=iid, vehicle_id=1, decision={}, actor="sys")
        inc = service.transition(
            session=s,
            incident_id=iid,
            to=IncidentState.NEW,
            actor="sys",
            details={"error": "takeoff refused"},
        )
        assert inc.vehicle_id is None and inc.assigned_at is not None  # the first assignment time stays
        service.assign(session=s, incident_id=iid, vehicle_id=1, decision={}, actor="sys")
        assert [e.kind for e in service.events(session=s, incident_id=iid)][-2:] == ["unassigned", "assigned"]


def test_response_percentiles_over_incidents(engine):
    with session_scope(engine) as s:
        for k, secs in enumerate([60, 120, 180, 240, 300]):
            inc = new(s)
            inc.created_at = T0 + timedelta(minutes=k)
            inc.on_scene_at = inc.created_at + timedelta(seconds=secs)
            s.add(inc)
    with session_scope(engine) as s:
        summary = service.response_summary(session=s)
    assert summary.incidents == 5 and summary.on_scene.count == 5
    assert summary.on_scene.p50_s == 180.0 and summary.on_scene.p90_s == pytest.approx(276.0)
    assert summary.assigned.count == 0 and summary.assigned.p50_s is None
    assert percentile([], 50) is None
