"""The sound-and-light payload controller on a simulated vehicle: it reads its actuator outputs as a real
payload board would and reports what it does (what the speaker plays, the siren, the spotlight).

Outputs (configurable in ``SimConfig``): the speaker on output 1, the spotlight on output 2. Their values
(-1..1, as DO_SET_ACTUATOR sends them):

- speaker: -1 silence, +1 siren; message slot k (1..16) as ``-1 + 2k/17`` plays it once, and
  ``-1 + (2k + 1)/17`` plays it in a loop until another value arrives.
- spotlight: -1 off, +1 on, 0 strobe.

Each change is reported three ways: a STATUSTEXT to the ground station ("Speaker: message 3 loop"), a
line on the simulator's standard output (``sim sysid=2 speaker: playing message 3 in a loop``) and a
``PayloadReport`` in ``SimVehicle.payload_reports``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

SLOTS = 16


@dataclass(frozen=True, slots=True)
class PayloadReport:
    """What a payload started doing, at what simulated time."""

    sim_time_s: float
    device: Literal["speaker", "spotlight"]
    state: str  # speaker: silent, siren, message; spotlight: off, on, strobe
    message_slot: int | None = None
    loop: bool = False

    def text(self) -> str:
        """The report as a person reads it."""
        if self.device == "speaker" and self.state == "message":
            return f"speaker: playing message {self.message_slot}" + (" in a loop" if self.loop else " once")
        return f"{self.device}: {self.state}"

    def status_text(self) -> str:
        """The report as a STATUSTEXT (50 characters at most)."""
        if self.device == "speaker" and self.state == "message":
            return f"Speaker: message {self.message_slot} {'loop' if self.loop else 'once'}"
        return f"{self.device.capitalize()}: {self.state}"


def decode_speaker(value: float) -> tuple[str, int | None, bool]:
    """(state, message slot, loop) for a speaker output value.

    >>> decode_speaker(-1.0), decode_speaker(1.0), decode_speaker(-0.8824), decode_speaker(-0.8235)
    (('silent', None, False), ('siren', None, False), ('message', 1, False), ('message', 1, True))
    """
    half_steps = round((value + 1.0) * (SLOTS + 1))  # in units of 1/17: 2k = once, 2k + 1 = loop
    if half_steps <= 0:
        return "silent", None, False
    if half_steps >= 2 * (SLOTS + 1):
        return "siren", None, False
    slot, loop = divmod(half_steps, 2)
    if not 1 <= slot <= SLOTS:
        return "silent", None, False
    return "message", slot, bool(loop)


def decode_spotlight(value: float) -> str:
    """off, on or strobe for a spotlight output value."""
    if value <= -0.5:
        return "off"
    if value >= 0.5:
        return "on"
    return "strobe"


class PayloadBoard:
    """The vehicle's payload controller: decodes outputs, remembers and reports each change."""

    def __init__(self, *, speaker_output: int, spotlight_output: int) -> None:
        self.speaker_output = speaker_output
        self.spotlight_output = spotlight_output
        self.reports: list[PayloadReport] = []
        self.speaker: PayloadReport | None = None
        self.spotlight: PayloadReport | None = None
        self.label = "sim"

    def actuator(self, index: int, value: float, *, sim_time_s: float) -> PayloadReport | None:
        """An output was set; the report of what the payload now does (None: no payload on that output)."""
        if index == self.speaker_output:
            state, slot, loop = decode_speaker(value)
            report = PayloadReport(sim_time_s, "speaker", state, slot, loop)
            self.speaker = report
        elif index == self.spotlight_output:
            report = PayloadReport(sim_time_s, "spotlight", decode_spotlight(value))
            self.spotlight = report
        else:
            return None
        self.reports.append(report)
        print(f"{self.label} {report.text()}", file=sys.stdout, flush=True)
        return report
