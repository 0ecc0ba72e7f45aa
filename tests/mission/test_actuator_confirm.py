"""Payload commands are confirmed only by the vehicle's own output reports, never by the ack alone."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mission.link.mavsdk_link import _outputs, _OutputWatch


@dataclass
class _Msg:
    fields_json: str


def _servo(**channels: int) -> _Msg:
    fields = {"message_name": "SERVO_OUTPUT_RAW", "port": 0, **{f"servo{n}_raw": 900 for n in range(1, 17)}}
    fields.update({f"servo{k.removeprefix('ch')}_raw": v for k, v in channels.items()})
    return _Msg(json.dumps(fields))


def test_a_channel_moving_to_the_commanded_value_confirms() -> None:
    watch = _OutputWatch()
    watch.on_message(_servo())
    watch.mark_sent()
    assert watch.moved_to(1750.0, 25.0) is None
    watch.on_message(_servo(ch6=1748))
    assert watch.seen and watch.moved_to(1750.0, 25.0) == 6


def test_a_channel_already_at_the_value_does_not_confirm() -> None:
    watch = _OutputWatch()
    watch.on_message(_servo(ch5=1500))
    watch.mark_sent()
    watch.on_message(_servo(ch5=1500))
    assert watch.moved_to(1500.0, 25.0) is None


def test_no_reports_and_unparsable_reports_leave_it_unconfirmed() -> None:
    watch = _OutputWatch()
    watch.mark_sent()
    watch.on_message(_Msg("not json"))
    assert not watch.seen and watch.moved_to(1500.0, 25.0) is None


def test_actuator_output_status_counts_only_active_channels() -> None:
    fields = {"message_name": "ACTUATOR_OUTPUT_STATUS", "active": 2, "actuator": [1000.0, 1750.0, 1750.0]}
    assert _outputs(fields) == {1: 1000.0, 2: 1750.0}
    assert _outputs({"message_name": "SERVO_OUTPUT_RAW", "port": 1, "servo2_raw": 1200}) == {18: 1200.0}
