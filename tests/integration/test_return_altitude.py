"""The gate judges a return at the altitude the vehicle's own RTL climbs to: its RTL_RETURN_ALT, read over the
link (PX4 and sim/ default 30 m), not the service's setting (60 m), which stays the fallback.

A zone from 50 m up (a stadium roof) lies on the way home of a mission flown at 30 m: under it at 30 m,
into it at 60 m.
"""

from __future__ import annotations

import logging

import pytest
from mavsdk.plugins.param import Param, ParamError, ParamResult

from sim import SimConfig
from tests.api.test_missions_support import running_service
from tests.support.vehicles import SIM, VEHICLE_KINDS, speed_for
from tests.support.wait import until

pytestmark = pytest.mark.timeout(180)
ROOF = {
    "name": "stadium roof",
    "kind": "no_fly",
    "shape": {"type": "Circle", "center": [109.9810, 39.8270], "radius_m": 120},
    "floor_m": 50,
    "ceiling_m": 300,
}
NORTH = {"type": "MultiPoint", "coordinates": [[109.9810, 39.8330]]}
SETTING_M = 60.0  # the service's return_alt_m


async def _validate(svc):
    body = {
        "name": "north",
        "vehicle_id": 1,
        "plan": {"kind": "custom", "geometry": NORTH, "params": {"alt_m": 30}},
    }
    mid = (await svc.post("alice", "/api/v1/missions", body)).json()["id"]
    return await svc.post("alice", f"/api/v1/missions/{mid}/validate")


def _read(svc):
    snap = svc.runtime.fleet.latest(1)
    return snap is not None and snap.return_alt_m is not None and snap.return_alt_m


@pytest.mark.parametrize("kind", VEHICLE_KINDS)
async def test_the_vehicles_own_return_altitude_is_read_and_judged(tmp_path, kind):
    async with running_service(
        tmp_path,
        docks=[(0.0, 0.0)],
        vehicles=kind,
        speed=speed_for(kind),
        zones=[ROOF],
        return_alt_m=SETTING_M,
    ) as svc:
        assert await until(lambda: _read(svc), 30, "RTL_RETURN_ALT read over the link") == pytest.approx(30.0)
        r = await _validate(svc)
        assert r.status_code == 200, r.text  # home at 30 m, under the roof


async def test_a_vehicle_returning_at_60_m_is_refused_the_way_home_under_the_roof(tmp_path):
    config = SimConfig(params={"RTL_RETURN_ALT": 60.0})
    async with running_service(
        tmp_path,
        docks=[(0.0, 0.0)],
        vehicles=SIM,
        speed=10.0,
        zones=[ROOF],
        sim_config=config,
        return_alt_m=25.0,
    ) as svc:
        assert await until(lambda: _read(svc), 30, "RTL_RETURN_ALT read over the link") == pytest.approx(60.0)
        r = await _validate(svc)
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "return leg" in message and "stadium roof" in message, message


async def test_without_an_answer_the_setting_is_used_and_the_reason_logged(tmp_path, monkeypatch, caplog):
    def unanswered(self, name):  # the vehicle never answers the read (fault injection at MAVSDK)
        raise ParamError(ParamResult.TIMEOUT, "get_param_float()", name)

    monkeypatch.setattr(Param, "get_param_float", unanswered)
    caplog.set_level(logging.WARNING, logger="mission.link.mavsdk_link")
    async with running_service(
        tmp_path, docks=[(0.0, 0.0)], vehicles=SIM, speed=10.0, zones=[ROOF], return_alt_m=SETTING_M
    ) as svc:
        await until(
            lambda: any("RTL_RETURN_ALT" in r.getMessage() for r in caplog.records), 30, "the logged fallback"
        )
        logged = next(r.getMessage() for r in caplog.records if "RTL_RETURN_ALT" in r.getMessage())
        assert "the gate judges its returns at the service's setting" in logged, logged
        assert svc.runtime.fleet.latest(1).return_alt_m is None
        r = await _validate(svc)
        assert r.status_code == 422 and "stadium roof" in r.json()["error"]["message"], r.text
