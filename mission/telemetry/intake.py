"""Incidents reported by other systems (MQTT intake): the validated boundary model, its sink, and who may
report: each MQTT user is mapped to a skywarden user with the dispatcher role (or admin), or refused.

Refusals are audited without letting a flood of them flood the log: per sender, the first refusal of each
``audit_interval_s`` is written at once, later ones are counted into the next entry; overall at most
``max_entries_per_interval`` entries per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Engine

from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.models import UserRead
from mission.auth.roles import Role
from mission.db import session_scope
from mission.errors import PermissionDenied

log = logging.getLogger(__name__)

INTAKE_ROLES = frozenset({Role.dispatcher, Role.admin})


class IncidentLocation(BaseModel):
    """A WGS84 point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)


class IncidentIn(BaseModel):
    """An incident to respond to: where, how urgent (1 most .. 5 least), what, and who reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    location: IncidentLocation
    priority: int = Field(ge=1, le=5, strict=True)
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_.\-]+$")]
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""
    source: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    ref: Annotated[str, StringConstraints(max_length=128)] | None = None  # the reporter's own id, echoed back


class IncidentSink(Protocol):
    """Takes a validated incident into the domain (the dispatch service implements this)."""

    async def submit(self, incident: IncidentIn, *, actor: str) -> int:
        """Create the incident reported by skywarden user ``actor``; returns its id. Raises a
        ``mission.errors`` error when it cannot be taken."""
        ...


class SenderCheck(Protocol):
    """Decides who may report incidents over MQTT and audits refusals (``IncidentSenders`` implements it)."""

    @property
    def enabled(self) -> bool: ...

    async def actor_for(self, mqtt_user: str) -> str: ...

    async def refused(self, *, mqtt_user: str | None, topic: str, reason: str) -> bool: ...


@dataclass(slots=True)
class _Refusals:
    window_start: float
    suppressed: int = 0


class IncidentSenders:
    """Who may report incidents over MQTT: ``users`` maps MQTT usernames to skywarden usernames."""

    def __init__(
        self,
        *,
        engine: Engine,
        users: Mapping[str, str],
        audit_interval_s: float = 60.0,
        max_entries_per_interval: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.users = dict(users)
        self.audit_interval_s = audit_interval_s
        self.max_entries_per_interval = max_entries_per_interval
        self.clock = clock
        self._refusals: dict[str, _Refusals] = {}
        self._window_start = -float("inf")
        self._window_entries = 0
        self.audit_entries = 0

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    async def actor_for(self, mqtt_user: str) -> str:
        """The skywarden user that ``mqtt_user``'s incidents are reported as; PermissionDenied with the
        reason otherwise."""
        username = self.users.get(mqtt_user)
        if username is None:
            raise PermissionDenied(
                f"MQTT user {mqtt_user!r} may not report incidents (not mapped to a user)",
                code="telemetry.mqtt_user_may_report",
                params={"mqtt_user": repr(mqtt_user)},
            )
        user = await asyncio.to_thread(self._user, username)
        if user is None:
            raise PermissionDenied(
                f"MQTT user {mqtt_user!r} is mapped to {username!r}, who does not exist",
                code="telemetry.mqtt_user_mapped_who",
                params={"mqtt_user": repr(mqtt_user), "username": repr(username)},
            )
        if user.disabled:
            raise PermissionDenied(
                f"MQTT user {mqtt_user!r} is mapped to {username!r}, who is disabled",
                code="telemetry.mqtt_user_mapped_who_2",
                params={"mqtt_user": repr(mqtt_user), "username": repr(username)},
            )
        if user.role not in INTAKE_ROLES:
            raise PermissionDenied(
                f"MQTT user {mqtt_user!r} is mapped to {username!r}, whose role {user.role.value} may not "
                "report incidents (dispatcher or admin)",
                code="telemetry.mqtt_user_mapped_whose",
                params={"mqtt_user": repr(mqtt_user), "username": repr(username), "value": user.role.value},
            )
        return user.username

    def _user(self, username: str) -> UserRead | None:
        with session_scope(self.engine) as session:
            return auth.get_user(session=session, username=username)

    async def refused(self, *, mqtt_user: str | None, topic: str, reason: str) -> bool:
        """Audit a refused report unless this sender was audited within the interval (then count it);
        whether an entry was written."""
        now = self.clock()
        key = mqtt_user or ""
        state = self._refusals.get(key)
        if state is not None and now - state.window_start < self.audit_interval_s:
            state.suppressed += 1
            return False
        if now - self._window_start >= self.audit_interval_s:
            self._window_start, self._window_entries = now, 0
        if self._window_entries >= self.max_entries_per_interval:
            if state is not None:
                state.suppressed += 1
            return False
        suppressed = state.suppressed if state is not None else 0
        self._refusals[key] = _Refusals(window_start=now)
        if len(self._refusals) > 10_000:  # forget the oldest senders rather than grow without bound
            self._refusals.pop(next(iter(self._refusals)))
        self._window_entries += 1
        details: dict[str, object] = {
            "mqtt_user": mqtt_user,
            "topic": topic,
            "reason": reason,
            "suppressed_before": suppressed,
        }
        await asyncio.to_thread(self._audit, f"mqtt:{mqtt_user or '?'}"[:100], details)
        self.audit_entries += 1
        return True

    def _audit(self, actor: str, details: dict[str, object]) -> None:
        with session_scope(self.engine) as session:
            audit.record(session=session, actor=actor, action="mqtt.incident_refused", details=details)
