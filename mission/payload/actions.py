"""Sound and light actions and the DO_SET_ACTUATOR value each one sends.

A vehicle's configuration maps a payload (``speaker``, ``spotlight``) to an actuator output 1..6. The
payload controller on the vehicle reads that output's value (-1..1) as a command:

- spotlight: -1 off, +1 on, 0 strobe.
- speaker: -1 silence, +1 siren, and message slot k (1..16) of the library as ``-1 + 2k/17``, so every
  message has its own value strictly between silence and siren, far enough apart for a PWM output; the
  same message played in a loop (until stopped) is half a step above it, ``-1 + (2k + 1)/17``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flightplans.items import SetActuator
from mission.errors import Conflict

MAX_MESSAGE_SLOTS = 16


class PayloadAction(StrEnum):
    SPEAKER_PLAY = "speaker.play"
    SPEAKER_LOOP = "speaker.loop"
    SPEAKER_STOP = "speaker.stop"
    SIREN_ON = "siren.on"
    SIREN_OFF = "siren.off"
    SPOTLIGHT_ON = "spotlight.on"
    SPOTLIGHT_OFF = "spotlight.off"
    SPOTLIGHT_STROBE = "spotlight.strobe"


# action -> (payload that performs it, fixed value or None when the value is the message's)
_ACTIONS: dict[PayloadAction, tuple[str, float | None]] = {
    PayloadAction.SPEAKER_PLAY: ("speaker", None),
    PayloadAction.SPEAKER_LOOP: ("speaker", None),
    PayloadAction.SPEAKER_STOP: ("speaker", -1.0),
    PayloadAction.SIREN_ON: ("speaker", 1.0),
    PayloadAction.SIREN_OFF: ("speaker", -1.0),
    PayloadAction.SPOTLIGHT_ON: ("spotlight", 1.0),
    PayloadAction.SPOTLIGHT_OFF: ("spotlight", -1.0),
    PayloadAction.SPOTLIGHT_STROBE: ("spotlight", 0.0),
}


def message_value(slot: int, *, loop: bool = False) -> float:
    """The speaker output value that plays library slot ``slot`` (1..16), once or in a loop.

    >>> message_value(1), message_value(16), message_value(1, loop=True)
    (-0.8824, 0.8824, -0.8235)
    """
    if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= MAX_MESSAGE_SLOTS:
        raise ValueError(f"message slot must be an integer 1..{MAX_MESSAGE_SLOTS}, got {slot!r}")
    return round(-1.0 + (2.0 * slot + (1.0 if loop else 0.0)) / (MAX_MESSAGE_SLOTS + 1), 4)


@dataclass(frozen=True, slots=True)
class ActuatorCommand:
    """What goes to the vehicle: output ``index`` to ``value``, and which payload that is."""

    payload: str
    index: int
    value: float

    def mission_item(self) -> SetActuator:
        """The same command as a DO_SET_ACTUATOR mission item."""
        return SetActuator(index=self.index, value=self.value)


def actuator_command(
    action: PayloadAction, *, actuators: dict[str, int], vehicle: str, message_slot: int | None = None
) -> ActuatorCommand:
    """The command for ``action`` given the vehicle's ``actuators``; Conflict if it lacks the payload."""
    payload, value = _ACTIONS[action]
    index = actuators.get(payload)
    if index is None:
        carried = ", ".join(sorted(actuators)) or "none"
        raise Conflict(
            f"{vehicle} has no {payload} mapped to an actuator output (mapped: {carried})",
            code="payload.no_actuator",
            params={"vehicle": vehicle, "payload": payload},
        )
    if value is None:
        if message_slot is None:
            raise Conflict(f"{action.value} needs a message from the library", code="payload.no_message")
        value = message_value(message_slot, loop=action is PayloadAction.SPEAKER_LOOP)
    return ActuatorCommand(payload=payload, index=index, value=value)
