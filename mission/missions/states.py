"""The mission state machine: which action moves a mission from which state to which."""

from __future__ import annotations

from enum import StrEnum


class MissionState(StrEnum):
    DRAFT = "draft"
    VALIDATED = "validated"
    UPLOADING = "uploading"
    READY = "ready"
    ACTIVE = "active"
    PAUSED = "paused"
    RETURNING = "returning"
    COMPLETED = "completed"
    ABORTED = "aborted"
    FAILED = "failed"


S = MissionState

TERMINAL: frozenset[MissionState] = frozenset({S.COMPLETED, S.ABORTED, S.FAILED})
# States in which the vehicle holds (or is receiving) this mission: the runtime tracks and reconciles these.
IN_FLIGHT: frozenset[MissionState] = frozenset({S.UPLOADING, S.READY, S.ACTIVE, S.PAUSED, S.RETURNING})

# action -> (allowed source states, target state). User actions and the runtime's own share one table.
TRANSITIONS: dict[str, tuple[frozenset[MissionState], MissionState]] = {
    "validate": (frozenset({S.DRAFT, S.VALIDATED}), S.VALIDATED),
    "launch": (frozenset({S.VALIDATED}), S.UPLOADING),
    "uploaded": (frozenset({S.UPLOADING}), S.READY),
    "upload_failed": (frozenset({S.UPLOADING}), S.VALIDATED),
    "start": (frozenset({S.READY}), S.ACTIVE),
    "start_failed": (frozenset({S.READY}), S.VALIDATED),
    "pause": (frozenset({S.ACTIVE}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.ACTIVE),
    "return": (frozenset({S.ACTIVE, S.PAUSED, S.READY}), S.RETURNING),
    "complete": (frozenset({S.ACTIVE, S.RETURNING}), S.COMPLETED),
    "abort": (
        frozenset({S.DRAFT, S.VALIDATED, S.UPLOADING, S.READY, S.ACTIVE, S.PAUSED, S.RETURNING}),
        S.ABORTED,
    ),
    "fail": (frozenset(IN_FLIGHT), S.FAILED),
}

# Actions an operator may ask for over the API; the rest are the runtime's.
USER_ACTIONS: frozenset[str] = frozenset({"validate", "launch", "pause", "resume", "abort", "return"})


def target_of(action: str) -> MissionState:
    """The state ``action`` leads to."""
    return TRANSITIONS[action][1]


def can(action: str, state: MissionState) -> bool:
    """Whether ``action`` is allowed from ``state``."""
    sources, _ = TRANSITIONS[action]
    return state in sources


def allowed_from(action: str) -> str:
    """The states ``action`` is possible from, comma-separated."""
    sources, _ = TRANSITIONS[action]
    return ", ".join(sorted(s.value for s in sources))


def explain_refusal(action: str, state: MissionState, *, mission_id: int) -> str:
    """A reason a user can act on when ``action`` is not allowed from ``state``."""
    allowed = allowed_from(action)
    return f"mission {mission_id} is {state.value}; {action} is only possible from: {allowed}"
