"""Audit entries and the chain head that guards against truncating the log's tail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime

GENESIS_HASH = "0" * 64


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    actor: str = Field(max_length=100, index=True)
    action: str = Field(max_length=100, index=True)
    target: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # unique: two entries can never claim the same predecessor, so the chain cannot fork.
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row (id 1): the last entry's seq and hash. Its row lock serialises writers."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0)
    hash: str = Field(default=GENESIS_HASH, max_length=64)


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: UtcDatetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditProblem(BaseModel):
    """One break in the chain: which entry and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    seq: int
    kind: str  # "edited" | "missing" | "relinked"
    message: str


class AuditReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    head_seq: int
    problems: list[AuditProblem]
