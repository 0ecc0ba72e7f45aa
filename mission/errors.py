"""The domain's error tree; api/errors.py maps each to one HTTP status with the reason."""

from __future__ import annotations

from collections.abc import Sequence


class SkywardenError(Exception):
    """Base of every domain error; ``str(err)`` is a reason a user can act on.

    ``code`` is a stable name of the message (``"authority.control"``, ``"cron.invalid"``) and ``params``
    its figures, so a client can show it in the user's language; ``details`` are the gate's refusals.
    """

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        params: dict[str, object] | None = None,
        details: Sequence[object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})
        self.details = list(details or [])


class BadRequest(SkywardenError):
    """The request itself is malformed (a field out of range, an unknown command). -> 422"""


class NotFound(SkywardenError):
    """A named thing (vehicle, mission, zone) does not exist. -> 404"""


class InvalidTransition(SkywardenError):
    """A mission or incident cannot move from its current state by that action. -> 409"""


class Conflict(SkywardenError):
    """The request clashes with the current state (control held by another pilot, duplicate name). -> 409"""


class AirspaceViolation(SkywardenError):
    """A plan or command would break airspace, altitude or energy rules. -> 422"""

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[object] | None = None,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, code=code, params=params, details=violations)
        self.violations = list(violations or [])


class PermissionDenied(SkywardenError):
    """The caller's role or control authority does not allow this. -> 403"""


class VehicleUnavailable(SkywardenError):
    """No vehicle can do this now (disconnected, busy, battery too low). -> 409 or 503"""


class LinkError(SkywardenError):
    """A MAVLink command failed or timed out; the message says which vehicle and what failed. -> 503"""

    def __init__(
        self,
        message: str,
        *,
        vehicle_id: int | None = None,
        action: str | None = None,
        code: str | None = "link.failed",
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(
            message, code=code, params={"vehicle_id": vehicle_id, "action": action, **(params or {})}
        )
        self.vehicle_id = vehicle_id
        self.action = action


class RateLimited(SkywardenError):
    """Too many attempts (failed sign-ins, a busy queue); try again after ``retry_after_s``. -> 429"""

    def __init__(self, message: str, *, retry_after_s: int, code: str = "rate.limited") -> None:
        super().__init__(message, code=code, params={"s": retry_after_s})
        self.retry_after_s = retry_after_s
