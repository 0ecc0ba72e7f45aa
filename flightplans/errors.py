"""The one error flightplans raises for bad input."""

from __future__ import annotations


class PlanningError(ValueError):
    """Bad planning input or an impossible plan; the message names what is wrong and where.

    ``where`` is an optional WGS84 or metric (x, y) point, or a short geometry label, that a caller can show.
    ``code`` is a stable name of the message (``"plan.validate.zero_area"``) and ``params`` its figures, so a
    client can show it in its user's language.
    """

    def __init__(
        self,
        message: str,
        *,
        where: object | None = None,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.where = where
        self.code = code
        self.params = dict(params or {})
