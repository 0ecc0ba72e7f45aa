"""Battery cycles in the report are the charge really consumed by flown sorties, read from telemetry."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from mission.reports.models import Sortie
from sim import SimFleet
from tests.api.test_missions_support import HOME, free_udp_ports, running_service
from tests.support.wait import until as wait_for

pytestmark = pytest.mark.timeout(120)


async def _cmd(svc, command, **params):
    r = await svc.post("alice", "/api/v1/vehicles/1/commands", {"command": command, "params": params})
    assert r.status_code == 200, r.text
    return r


async def test_a_flown_sortie_from_60_to_about_20_percent_is_about_0_4_cycles(tmp_path):
    port = free_udp_ports(1)
    async with (
        SimFleet(count=1, base_port=port, speed=10.0, home=(HOME[0], HOME[1], 1100.0)) as fleet,
        running_service(tmp_path) as svc,
    ):
        vehicle = fleet.vehicles[0]
        await svc.add_vehicle(sysid=1, port=port)
        link = await svc.runtime.fleet.wait_link(1, timeout_s=15)
        await link.wait_ready(timeout_s=15)
        assert (await svc.post("alice", "/api/v1/vehicles/1/control")).status_code == 200
        # A pack at 60 % on the ground, as the service sees it (MAVLink reports whole percent).
        vehicle.battery_sag(vehicle.state.battery_pct - 60.9)
        await wait_for(lambda: svc.runtime.fleet.latest(1).battery_pct == 60, 10, "60 % seen")
        await _cmd(svc, "arm")
        await _cmd(svc, "takeoff", alt_m=25)
        await wait_for(lambda: vehicle.state.alt_rel_m > 20, 20, "take-off")
        await _cmd(svc, "goto", lat=HOME[0] + 0.002, lon=HOME[1], alt_m=25)
        await wait_for(lambda: abs(vehicle.state.lat - (HOME[0] + 0.002)) < 0.0002, 30, "arrival")
        # A heavy flight's worth in one go, down to about 25 %: then home.
        vehicle.battery_sag(vehicle.state.battery_pct - 25)
        await _cmd(svc, "return")
        await wait_for(lambda: not vehicle.state.armed and vehicle.state.alt_rel_m < 1, 60, "landing at home")
        await wait_for(lambda: not svc.runtime.fleet.latest(1).in_air, 10, "landed telemetry")
        landed_pct = svc.runtime.fleet.latest(1).battery_pct
        await svc.runtime.sorties.drained()
        with Session(svc.engine) as session:
            sorties = list(session.exec(select(Sortie)))
        assert len(sorties) == 1 and sorties[0].landed_at is not None, sorties
        sortie = sorties[0]
        assert sortie.start_pct == 60
        # The end is the reading when it was seen landed (the idle drain since then is a hair).
        assert sortie.end_pct == pytest.approx(landed_pct, abs=1) and 15 < sortie.end_pct < 26
        used = sortie.start_pct - sortie.end_pct
        drone = (await svc.get("dan", "/api/v1/reports")).json()["drones"][0]
        assert drone["sorties"] == 1
        assert drone["charge_used_pct"] == pytest.approx(used, abs=0.05)
        assert drone["battery_cycles"] == pytest.approx(used / 100, abs=0.001)
        assert 0.34 < drone["battery_cycles"] < 0.46  # about 0.4, not "1 sortie"
        csv_text = (await svc.get("dan", "/api/v1/reports/drones.csv")).text
        assert "sorties,charge_used_pct,battery_cycles" in csv_text.splitlines()[0]
