"""Why there is no video, as one error the API maps to 409 with the reason."""

from __future__ import annotations

from mission.errors import VehicleUnavailable


class VideoUnavailable(VehicleUnavailable):
    """No video from this vehicle now; the message starts with "no video:" and says why."""

    def __init__(
        self,
        reason: str,
        *,
        vehicle_id: int,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(
            f"no video: {reason}", code=code, params={"vehicle_id": vehicle_id, **(params or {})}
        )
        self.reason = reason
        self.vehicle_id = vehicle_id
