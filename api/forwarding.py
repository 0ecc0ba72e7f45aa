"""Several instances: a request that moves a vehicle is answered by the instance that owns the vehicle.

``OwnerForwarding`` (ASGI middleware) looks at each state-changing request on a vehicle's route (its
commands, control, payload actions, camera, a mission's launch/pause/resume/return/abort). When another live
instance holds the vehicle's lease, the request goes to it over HTTP as it came (method, path, query, body,
the caller's cookie or token and CSRF header) and its answer is returned as it is: the owner authenticates,
judges, audits (once) and commands. A forwarded request is marked, and a marked request is never forwarded
again (the mark grants nothing: the owner authenticates the caller's own credentials); with no live owner
the request is handled here, and the fence refuses it if this instance does not hold the vehicle.

Large-event and cordon requests (every method: their live measures are kept by the runner) go the same way
to the instance that leads ``operations``, the singleton that runs the event and cordon runners.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mission.missions.models import Mission

log = logging.getLogger(__name__)

FORWARDED_HEADER = "x-skywarden-forwarded-by"
_VEHICLE_ROUTES = (
    re.compile(r"^/api/v1/vehicles/(\d+)/(commands|control(/handoff)?)$"),
    re.compile(r"^/api/v1/payload/vehicles/(\d+)/(actions|mission-item)$"),
    re.compile(r"^/api/v1/video/vehicles/(\d+)/camera/[a-z-]+$"),
)
_MISSION_ROUTE = re.compile(r"^/api/v1/missions/(\d+)/(launch|pause|resume|return|abort)$")
_OPERATIONS_ROUTE = re.compile(r"^/api/v1/(security-events|cordons)(/.*)?$")
OPERATIONS = "operations"  # the singleton running the event and cordon runners (mission.runtime)
_PASSED_HEADERS = ("cookie", "authorization", "x-csrf-token", "content-type", "accept", "x-forwarded-for")
_TIMEOUT_S = 60.0  # a launch uploads a mission and waits for the take-off


class OwnerForwarding:
    """ASGI middleware: forward vehicle-moving requests to the vehicle's owner instance."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operations = scope["type"] == "http" and _OPERATIONS_ROUTE.match(scope["path"]) is not None
        if scope["type"] != "http" or (
            scope["method"] not in ("POST", "PUT", "PATCH", "DELETE") and not operations
        ):
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        cluster = getattr(runtime, "cluster", None)
        if runtime is None or cluster is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if FORWARDED_HEADER in headers:
            await self.app(scope, receive, send)  # already forwarded once: answer here
            return
        if operations:
            target = await asyncio.to_thread(_leader_url, cluster)
            if target is None:
                await self.app(scope, receive, send)
                return
            body = await _read_body(receive)
            await self._forward(scope, send, target, headers, body, cluster.instance_id, None)
            return
        target, vehicle_id = await asyncio.to_thread(_owner_url, scope["path"], runtime.engine, cluster)
        if target is None or vehicle_id is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        await self._forward(scope, send, target, headers, body, cluster.instance_id, vehicle_id)

    async def _forward(
        self,
        scope: Scope,
        send: Send,
        target: str,
        headers: dict[str, str],
        body: bytes,
        me: str,
        vehicle_id: int | None,
    ) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=_TIMEOUT_S)
        passed = {k: v for k, v in headers.items() if k in _PASSED_HEADERS}
        passed[FORWARDED_HEADER] = me
        if "x-forwarded-for" not in passed and scope.get("client"):
            passed["x-forwarded-for"] = scope["client"][0]
        url = target.rstrip("/") + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            answer = await self._client.request(scope["method"], url, content=body, headers=passed)
        except httpx.HTTPError as err:
            whose = "event operations run on" if vehicle_id is None else f"vehicle {vehicle_id} is owned by"

            log.warning("%s %s: forwarding failed: %s", whose, target, err)
            message = (
                f'{{"detail": "{whose} the instance at {target}, which did not '
                f'answer ({type(err).__name__}); try again"}}'
            ).encode()
            await _reply(send, 503, message, "application/json")
            return
        await _reply(send, answer.status_code, answer.content, answer.headers.get("content-type", ""))


def _leader_url(cluster: Any) -> str | None:
    """The base URL of the instance leading event operations, if it is another live one."""
    if cluster.leads(OPERATIONS):
        return None
    leader = cluster.leader_of(OPERATIONS)
    if leader is None or leader == cluster.instance_id:
        return None  # nobody leads (yet): answered here, where nothing runs until an instance leads
    return cluster.peers().get(leader) or None


def _owner_url(path: str, engine: Any, cluster: Any) -> tuple[str | None, int | None]:
    """The base URL of the live instance that owns the request's vehicle, if it is not this one."""
    vehicle_id = _vehicle_of(path, engine)
    if vehicle_id is None or cluster.owns(vehicle_id):
        return None, vehicle_id
    lease = cluster.owner_of(vehicle_id)
    if lease is None or lease.owner == cluster.instance_id:
        return None, vehicle_id
    return cluster.peers().get(lease.owner) or None, vehicle_id


def _vehicle_of(path: str, engine: Any) -> int | None:
    for pattern in _VEHICLE_ROUTES:
        match = pattern.match(path)
        if match:
            return int(match.group(1))
    match = _MISSION_ROUTE.match(path)
    if match:
        with Session(engine) as session:
            mission = session.get(Mission, int(match.group(1)))
            return None if mission is None else mission.vehicle_id
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
