"""Commands that arrive from outside the HTTP API (the MQTT commands topic), run as a named skywarden user.

The transport proves who sent the message (the broker's ACL); this module makes the command go through
exactly the same checks as ``POST /vehicles/{id}/commands``: the user's role, control authority, airspace,
battery reserve, and the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from mission.auth import service as users
from mission.auth.models import Principal
from mission.commands import service
from mission.commands.models import CommandRequest
from mission.db import session_scope
from mission.errors import BadRequest, PermissionDenied
from mission.flights.executor import FlightExecutor
from mission.missions.supervisor import MissionSupervisor


class UserCommandSink:
    """Runs a command on behalf of an existing, enabled skywarden user."""

    def __init__(
        self,
        *,
        engine: Engine,
        flights: FlightExecutor,
        hub: Any,
        missions: MissionSupervisor,
    ) -> None:
        self._engine, self._flights, self._hub, self._missions = engine, flights, hub, missions

    async def submit_command(
        self, *, vehicle_id: int, command: str, params: Mapping[str, Any], actor: str
    ) -> None:
        """Check and send ``command``; domain errors (refusals included) propagate with their reason."""
        with session_scope(self._engine) as session:
            user = users.get_user(session=session, username=actor)
        if user is None or user.disabled:
            raise PermissionDenied(
                f"skywarden user {actor!r} does not exist or is disabled",
                code="commands.skywarden_user_does_exist",
                params={"actor": repr(actor)},
            )
        try:
            request = CommandRequest.model_validate({"command": command, "params": dict(params)})
            service.PARAMS[request.command].model_validate(request.params)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadRequest(
                f"{where}: {first['msg']}",
                code="commands.failed",
                params={"where": where, "msg": first["msg"]},
            ) from None
        principal = Principal(user_id=user.id, username=user.username, role=user.role)
        await service.execute(
            engine=self._engine,
            flights=self._flights,
            missions=self._missions,
            hub=self._hub,
            vehicle_id=vehicle_id,
            request=request,
            principal=principal,
        )
