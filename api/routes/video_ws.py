"""WebRTC signaling for live video: the websocket ``/ws/video``, authenticated as the telemetry one is
(``api.ws.authenticate_socket``: the panel's cookie, an Authorization header or a first auth message, never a
token in the URL) and closed when its session ends.

Client -> server: ``{"type":"watch","id":"tile-1","vehicle_id":3,"sdp":"<offer>"}`` (a receive-only video
offer; H.264 must be among its codecs), ``{"type":"stop","id":"tile-1"}``.
Server -> client: ``{"type":"hello","user":..,"role":..,"can_watch":bool}`` once;
``{"type":"answer","id":..,"viewer":..,"vehicle_id":..,"sdp":..}``;
``{"type":"unavailable","id":..,"vehicle_id":..,"reason":"no video: stream unreachable (...)"}`` (also
"codec H.265 unsupported", "camera not announced", forbidden roles); ``{"type":"closed","id":..,"reason":..}``
when the service drops a viewer (stalled, connection failed); ``{"type":"status","vehicles":[..]}`` every 2 s
(the REST status shape). Closing the socket hangs up every viewer it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.routes.video import _status_out
from api.ws import CLOSE_TRY_LATER, CLOSE_UNAUTHORIZED, WsUser, authenticate_socket, watch_socket
from mission.errors import SkywardenError
from mission.video.service import VideoService

log = logging.getLogger(__name__)
router = APIRouter()
_SEND_TIMEOUT_S = 10.0
_STATUS_PERIOD_S = 2.0


class WatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    id: str = Field(min_length=1, max_length=64)
    vehicle_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    sdp: str | None = Field(default=None, max_length=100_000)


class _Session:
    """One signaling socket and the viewers it opened (client id -> viewer id)."""

    def __init__(self, ws: WebSocket, video: VideoService, user: WsUser) -> None:
        self.ws = ws
        self.video = video
        self.user = user
        self.viewers: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await asyncio.wait_for(self.ws.send_text(json.dumps(message)), _SEND_TIMEOUT_S)

    async def watch(self, request: WatchIn) -> None:
        if request.vehicle_id is None or not request.sdp:
            await self.send({"type": "error", "id": request.id, "message": "watch needs vehicle_id and sdp"})
            return
        old = self.viewers.pop(request.id, None)
        if old is not None:
            await self.video.close_viewer(old, reason="replaced")
        try:
            answer = await self.video.open_viewer(
                request.vehicle_id, offer_sdp=request.sdp, user=self.user.username, role=self.user.role
            )
        except SkywardenError as err:
            await self.send(
                {
                    "type": "unavailable",
                    "id": request.id,
                    "vehicle_id": request.vehicle_id,
                    "reason": str(err),
                }
            )
            return
        self.viewers[request.id] = answer.viewer_id
        await self.send(
            {
                "type": "answer",
                "id": request.id,
                "viewer": answer.viewer_id,
                "vehicle_id": request.vehicle_id,
                "sdp": answer.sdp,
            }
        )

    async def stop(self, client_id: str) -> None:
        viewer = self.viewers.pop(client_id, None)
        if viewer is not None:
            await self.video.close_viewer(viewer)

    async def statuses(self) -> None:
        while True:
            vehicles = [_status_out(s).model_dump(mode="json") for s in self.video.statuses()]
            await self.send({"type": "status", "vehicles": vehicles})
            for client_id, viewer in list(self.viewers.items()):
                reason = self.video.viewer_reason(viewer)
                if reason is not None:
                    del self.viewers[client_id]
                    await self.send({"type": "closed", "id": client_id, "reason": reason})
            await asyncio.sleep(_STATUS_PERIOD_S)

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for viewer in list(self.viewers.values()):
            await self.video.close_viewer(viewer, reason="signaling closed")
        self.viewers.clear()


@router.websocket("/ws/video")
async def video_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    user = await authenticate_socket(websocket)
    if user is None:
        return
    runtime = getattr(websocket.app.state, "runtime", None)
    video = getattr(runtime, "video", None)
    if not isinstance(video, VideoService):
        await websocket.send_text(json.dumps({"type": "error", "message": "live video is not running"}))
        await websocket.close(code=CLOSE_TRY_LATER, reason="live video is not running")
        return
    session = _Session(websocket, video, user)

    async def end(reason: str) -> None:
        with contextlib.suppress(Exception):
            await session.send({"type": "session_ended", "message": reason})
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="session ended")

    unwatch = watch_socket(websocket, user, end)
    try:
        can_watch = True
        try:
            video.check_watcher(user.role)
        except SkywardenError:
            can_watch = False
        await session.send(
            {"type": "hello", "user": user.username, "role": user.role, "can_watch": can_watch}
        )
        session.spawn(session.statuses(), f"video-ws-status:{user.username}")
        while True:
            raw = await websocket.receive_text()
            try:
                request = WatchIn.model_validate_json(raw)
            except ValidationError as err:
                first = err.errors()[0]
                await session.send(
                    {"type": "error", "message": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}
                )
                continue
            if request.type == "watch":
                session.spawn(session.watch(request), f"video-ws-watch:{request.id}")
            elif request.type == "stop":
                await session.stop(request.id)
            else:
                await session.send(
                    {"type": "error", "id": request.id, "message": f"unknown type {request.type!r}"}
                )
    except (WebSocketDisconnect, TimeoutError, RuntimeError, OSError):
        pass
    finally:
        unwatch()
        with contextlib.suppress(Exception):
            await session.close()
