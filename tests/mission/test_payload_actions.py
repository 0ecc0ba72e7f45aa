"""Sound and light actions map to the vehicle's actuator outputs with distinct, documented values."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from flightplans.items import SetActuator
from mission.errors import Conflict
from mission.payload.actions import MAX_MESSAGE_SLOTS, PayloadAction, actuator_command, message_value
from mission.payload.models import MessageCreate, PayloadRequest

ACTUATORS = {"speaker": 3, "spotlight": 5}


@pytest.mark.parametrize(
    ("action", "index", "value"),
    [
        (PayloadAction.SIREN_ON, 3, 1.0),
        (PayloadAction.SIREN_OFF, 3, -1.0),
        (PayloadAction.SPEAKER_STOP, 3, -1.0),
        (PayloadAction.SPOTLIGHT_ON, 5, 1.0),
        (PayloadAction.SPOTLIGHT_OFF, 5, -1.0),
        (PayloadAction.SPOTLIGHT_STROBE, 5, 0.0),
    ],
)
def test_each_action_drives_its_payload_output(action, index, value):
    cmd = actuator_command(action, actuators=ACTUATORS, vehicle="uav-1")
    assert (cmd.index, cmd.value) == (index, value)
    assert cmd.mission_item() == SetActuator(index=index, value=value)


def test_every_message_slot_has_its_own_value_between_silence_and_siren():
    values = [message_value(k) for k in range(1, MAX_MESSAGE_SLOTS + 1)]
    assert len(set(values)) == MAX_MESSAGE_SLOTS
    assert all(-1.0 < v < 1.0 for v in values) and values == sorted(values)
    assert min(b - a for a, b in itertools.pairwise(values)) > 0.1
    cmd = actuator_command(PayloadAction.SPEAKER_PLAY, actuators=ACTUATORS, vehicle="uav-1", message_slot=4)
    assert (cmd.index, cmd.value) == (3, message_value(4))
    with pytest.raises(ValueError, match=r"message slot must be an integer 1\.\.16"):
        message_value(17)


def test_missing_payload_or_message_is_refused_with_the_reason():
    with pytest.raises(
        Conflict, match=r"uav-2 has no spotlight mapped to an actuator output \(mapped: speaker\)"
    ):
        actuator_command(PayloadAction.SPOTLIGHT_ON, actuators={"speaker": 1}, vehicle="uav-2")
    with pytest.raises(Conflict, match="needs a message"):
        actuator_command(PayloadAction.SPEAKER_PLAY, actuators=ACTUATORS, vehicle="uav-1")
    with pytest.raises(ValidationError, match=r"speaker\.play needs message_id"):
        PayloadRequest(action=PayloadAction.SPEAKER_PLAY)
    with pytest.raises(ValidationError, match="text-to-speech message needs text"):
        MessageCreate(name="x", slot=1, kind="tts")
    with pytest.raises(ValidationError, match="recorded message needs audio_ref"):
        MessageCreate(name="x", slot=1, kind="recorded")
