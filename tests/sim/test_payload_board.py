"""The simulated payload board: DO_SET_ACTUATOR on the speaker and spotlight outputs is decoded as the
service encodes it, and each change is reported (STATUSTEXT to the ground station, a line on stdout, a
report in ``payload_reports``)."""

from __future__ import annotations

import math

import pytest
from pymavlink.dialects.v20 import common as mavlink

from sim.payload import decode_speaker
from tests.sim.conftest import FlyFactory

NAN = math.nan


def _value(slot: int, *, loop: bool = False) -> float:
    """The service's encoding (mission/payload/actions.py; sim imports nothing of ours)."""
    return round(-1.0 + (2.0 * slot + (1.0 if loop else 0.0)) / 17, 4)


@pytest.mark.parametrize("slot", range(1, 17))
def test_every_slot_decodes_once_and_in_a_loop(slot: int) -> None:
    assert decode_speaker(_value(slot)) == ("message", slot, False)
    assert decode_speaker(_value(slot, loop=True)) == ("message", slot, True)


async def test_the_speaker_reports_what_it_plays(fly: FlyFactory, capsys: pytest.CaptureFixture[str]) -> None:
    _fleet, vehicle, gcs = await fly()
    since = gcs.mark()
    for values in ((_value(3, loop=True), NAN), (1.0, NAN), (-1.0, 0.0)):
        result = await gcs.command_long(mavlink.MAV_CMD_DO_SET_ACTUATOR, *values, NAN, NAN, NAN, NAN, 0)
        assert result == mavlink.MAV_RESULT_ACCEPTED
    await gcs.expect("STATUSTEXT", lambda m: m.text.startswith("Spotlight"), since=since, timeout_s=5)
    texts = [m.text for m in gcs.messages[since:] if m.get_type() == "STATUSTEXT"]
    reports = [(r.device, r.state, r.message_slot, r.loop) for r in vehicle.payload_reports]
    assert reports == [
        ("speaker", "message", 3, True),
        ("speaker", "siren", None, False),
        ("speaker", "silent", None, False),
        ("spotlight", "strobe", None, False),
    ]
    out = capsys.readouterr().out
    assert f"sim sysid={vehicle.sysid} speaker: playing message 3 in a loop" in out
    assert "speaker: siren" in out and "spotlight: strobe" in out
    assert texts == ["Speaker: message 3 loop", "Speaker: siren", "Speaker: silent", "Spotlight: strobe"]
