"""The speaker message library and the record of every payload use (who, where, when, what)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow
from mission.payload.actions import MAX_MESSAGE_SLOTS, PayloadAction


class MessageKind(StrEnum):
    RECORDED = "recorded"
    TTS = "tts"


class PayloadMessage(SQLModel, table=True):
    __tablename__ = "payload_messages"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    slot: int = Field(unique=True)  # the speaker's message slot 1..16
    kind: str = Field(max_length=16)
    text: str = Field(default="", max_length=1000)  # what text-to-speech says, or a transcript
    audio_ref: str | None = Field(default=None, max_length=300)  # the recording on the vehicle's player
    language: str = Field(default="zh-CN", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PayloadUse(SQLModel, table=True):
    """Every payload action sent, live or in a mission, with the vehicle's position at that moment."""

    __tablename__ = "payload_uses"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    actor: str = Field(max_length=64)
    vehicle_id: int = Field(index=True)
    action: str = Field(max_length=32)
    message_id: int | None = Field(default=None)
    actuator_index: int
    value: float
    via: str = Field(default="live", max_length=16)  # live | mission
    lat: float | None = None
    lon: float | None = None
    alt_rel_m: float | None = None
    incident_id: int | None = Field(default=None, index=True)
    mission_id: int | None = Field(default=None)
    ok: bool = True
    error: str = Field(default="", max_length=500)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    @property
    def delivery(self) -> str:
        """``confirmed`` (output feedback showed it), ``accepted`` (acked only), ``planned`` or ``failed``."""
        if not self.ok:
            return "failed"
        default = "planned" if self.via == "mission" else "accepted"
        return str((self.details or {}).get("delivery", default))

    @property
    def delivery_note(self) -> str:
        """Why a use is not confirmed (or which output confirmed it)."""
        return str((self.details or {}).get("delivery_note", ""))


class MessageCreate(BaseModel):
    """A library message: recorded (``audio_ref`` on the vehicle's player) or text-to-speech (``text``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = PydField(min_length=1, max_length=100)
    slot: int = PydField(ge=1, le=MAX_MESSAGE_SLOTS)
    kind: MessageKind
    text: str = PydField(default="", max_length=1000)
    audio_ref: str | None = PydField(default=None, max_length=300)
    language: str = PydField(default="zh-CN", max_length=16)

    @model_validator(mode="after")
    def _content(self) -> MessageCreate:
        if self.kind is MessageKind.TTS and not self.text:
            raise ValueError("a text-to-speech message needs text")
        if self.kind is MessageKind.RECORDED and not self.audio_ref:
            raise ValueError("a recorded message needs audio_ref")
        return self


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    slot: int
    kind: MessageKind
    text: str
    audio_ref: str | None
    language: str
    created_at: UtcDatetime


class PayloadRequest(BaseModel):
    """A live payload action on one vehicle."""

    model_config = ConfigDict(extra="forbid")

    action: PayloadAction
    message_id: int | None = PydField(default=None, description="library message for speaker.play")
    incident_id: int | None = None

    @model_validator(mode="after")
    def _message(self) -> PayloadRequest:
        if self.action is PayloadAction.SPEAKER_PLAY and self.message_id is None:
            raise ValueError("speaker.play needs message_id")
        return self


class PayloadUseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: UtcDatetime
    actor: str
    vehicle_id: int
    action: PayloadAction
    message_id: int | None
    actuator_index: int
    value: float
    via: str
    lat: float | None
    lon: float | None
    alt_rel_m: float | None
    incident_id: int | None
    mission_id: int | None
    ok: bool
    error: str
    delivery: str = PydField(
        description="confirmed: the vehicle's output report followed the command; accepted: only its"
        " COMMAND_ACK (no output feedback, or no output mapped); planned: a mission item; failed"
    )
    delivery_note: str = ""
