"""A large event's live measures go to skywarden/events/security/{id}; other kinds stay on one level."""

from __future__ import annotations

from api.mqtt_bridge import _topic_level


def test_security_event_measures_have_their_own_topic_per_event() -> None:
    assert _topic_level("security/12") == "security/12"
    assert _topic_level("security/1/2") == "security_1_2"
    assert _topic_level("security/#") == "security/_"
    assert _topic_level("flight.started") == "flight.started"
    assert _topic_level("a/b") == "a_b"
