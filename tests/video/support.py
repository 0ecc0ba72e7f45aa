"""The service as production runs it (Settings, the app's lifespan, uvicorn on a free port) with sim drones
whose cameras stream over RTSP, users of every role, and a WebRTC viewer (aiortc) that decodes what it gets.
Reused by bench/video.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from api.app import create_app
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role
from mission.db import session_scope
from sim import SimConfig, SimFleet
from sim.camera import CameraConfig
from sim.camera import stamp as time_stamp
from tests.support.net import free_tcp_port, free_udp_base

HOME = (39.82, 109.98, 1320.0)
USERS = {"root": Role.admin, "alice": Role.pilot, "dan": Role.dispatcher, "olga": Role.observer}
TEST_CAMERA = CameraConfig(width=480, height=270, fps=10.0, bitrate_bps=400_000)


async def until(predicate: Callable[[], Any], *, timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
    """The first truthy value of ``predicate``; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)


@dataclass
class Rig:
    """The running service and its sim fleet."""

    url: str
    app: Any
    fleet: SimFleet
    tokens: dict[str, str]
    client: httpx.AsyncClient
    vehicle_ids: list[int] = field(default_factory=list)

    @property
    def video(self) -> Any:
        return self.app.state.runtime.video

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def api(self, method: str, path: str, user: str = "root", body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return await self.client.request(method, f"/api/v1{path}", json=body, headers=headers)

    def ws_url(self, user: str) -> tuple[str, str]:
        """The signaling socket's URL and the token it authenticates with (in a header, never the URL)."""
        return self.url.replace("http://", "ws://") + "/ws/video", self.tokens[user]


@contextlib.asynccontextmanager
async def video_rig(
    tmp_path: Path,
    *,
    vehicles: int = 1,
    camera: CameraConfig | None = TEST_CAMERA,
    speed: float = 10.0,
    **settings: Any,
) -> AsyncIterator[Rig]:
    """Sim drones with cameras, and the service (its lifespan, uvicorn) with them registered and connected."""
    base = free_udp_base(vehicles)
    port = free_tcp_port()
    config = SimConfig(camera=camera)
    homes = [(HOME[0] + 0.0004 * i, HOME[1], HOME[2]) for i in range(vehicles)]
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'skywarden.db'}",
        "video_storage_dir": tmp_path / "video",
        "registry_poll_s": 0.5,
        "video_segment_s": 2.0,
        "video_idle_stop_s": 1.0,
        "video_open_timeout_s": 20.0,  # an encoder starting on a loaded 2-core machine (12 s: short in CI)
        "video_read_timeout_s": 6.0,
        "sim_speed": speed,
        **settings,
    }
    app = create_app(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    async with SimFleet(count=vehicles, base_port=base, speed=speed, homes=homes, config=config) as fleet:
        task = asyncio.create_task(server.serve(), name="test:uvicorn")
        try:
            await until(lambda: server.started or task.done(), timeout_s=30, what="the service to start")
            if task.done():
                task.result()
            tokens = {}
            with session_scope(app.state.engine) as session:
                for name, role in USERS.items():
                    user = auth.create_user(session=session, username=name, password="secret-pw", role=role)
                    tokens[name] = auth.issue_token(
                        session=session, name=name, role=role, user_id=user.id
                    ).token
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                rig = Rig(url=f"http://127.0.0.1:{port}", app=app, fleet=fleet, tokens=tokens, client=client)
                for i in range(vehicles):
                    r = await rig.api(
                        "POST",
                        "/vehicles",
                        body={
                            "name": f"drone-{i + 1}",
                            "connection_url": f"udpin://0.0.0.0:{base + i}",
                            "sysid": i + 1,
                            "home_lat": homes[i][0],
                            "home_lon": homes[i][1],
                            "home_alt_m": homes[i][2],
                        },
                    )
                    assert r.status_code == 201, r.text
                    rig.vehicle_ids.append(r.json()["id"])
                for vid in rig.vehicle_ids:
                    link = await rig.runtime.fleet.wait_link(vid, timeout_s=20)
                    await link.wait_ready(timeout_s=20)
                yield rig
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)


@dataclass
class Viewer:
    """A WebRTC viewer (aiortc) that decodes every frame and reads the burned-in time stamp."""

    vehicle_id: int
    pc: RTCPeerConnection
    frames: int = 0
    width: int = 0
    height: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    closed_reason: str | None = None
    task: asyncio.Task[None] | None = None

    def fps(self, *, since: float) -> float:
        times = [t for t in self.arrivals if t >= since]
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


class Signaling:
    """One ``/ws/video`` connection: ``watch`` opens viewers on it."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.statuses: list[dict[str, Any]] = []
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closed: dict[str, str] = {}
        self.hello: dict[str, Any] = {}
        self._reader = asyncio.create_task(self._read(), name="test:video-ws")
        self._n = 0

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "hello":
                    self.hello = msg
                elif kind == "status":
                    self.statuses.append(msg)
                elif kind in ("answer", "unavailable", "error") and msg.get("id") in self.answers:
                    self.answers[msg["id"]].set_result(msg) if not self.answers[msg["id"]].done() else None
                elif kind == "closed":
                    self.closed[msg["id"]] = msg["reason"]

    async def watch(
        self,
        vehicle_id: int,
        *,
        decode: bool = True,
        connect: bool = True,
        stamp_every: int = 1,
        timeout_s: float = 30.0,
    ) -> Viewer:
        """Offer, get the answer, and consume the track; AssertionError with the reason if refused."""
        self._n += 1
        client_id = f"v{self._n}"
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        viewer = Viewer(vehicle_id=vehicle_id, pc=pc)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answers[client_id] = future
        await self.ws.send(
            json.dumps(
                {"type": "watch", "id": client_id, "vehicle_id": vehicle_id, "sdp": pc.localDescription.sdp}
            )
        )
        msg = await asyncio.wait_for(future, timeout_s)
        if msg["type"] != "answer":
            await pc.close()
            raise Refused(msg.get("reason") or msg.get("message") or str(msg))
        if not connect:  # signaled, never connected: a browser that froze right after asking
            return viewer
        got_track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pc.on("track", lambda track: got_track.done() or got_track.set_result(track))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        track = await asyncio.wait_for(got_track, timeout_s)
        viewer.task = asyncio.create_task(
            _consume(viewer, track, decode=decode, stamp_every=stamp_every), name=f"test:viewer:{client_id}"
        )
        return viewer

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


class Refused(Exception):
    """The service answered a watch with no video; ``str`` is its reason."""


async def _consume(viewer: Viewer, track: Any, *, decode: bool, stamp_every: int) -> None:
    with contextlib.suppress(Exception):
        while True:
            frame = await track.recv()
            now = time.time()
            viewer.frames += 1
            viewer.width, viewer.height = frame.width, frame.height
            viewer.arrivals.append(time.monotonic())
            if decode and viewer.frames % stamp_every == 0:
                luma = frame.to_ndarray(format="gray")
                ms = time_stamp.read(luma, now_ms=int(now * 1000))
                if ms is not None:
                    viewer.latencies_ms.append(now * 1000 - ms)


@contextlib.asynccontextmanager
async def signaling(where: tuple[str, str]) -> AsyncIterator[Signaling]:
    url, token = where
    ws = await websockets.connect(
        url, max_size=2**22, additional_headers={"Authorization": f"Bearer {token}"}
    )
    sig = Signaling(ws)
    viewers: list[Viewer] = []
    original = sig.watch

    async def watch(vehicle_id: int, **kw: Any) -> Viewer:
        viewer = await original(vehicle_id, **kw)
        viewers.append(viewer)
        return viewer

    sig.watch = watch  # type: ignore[method-assign]
    try:
        yield sig
    finally:
        for viewer in viewers:
            if viewer.task is not None:
                viewer.task.cancel()
            await viewer.pc.close()
        await asyncio.gather(*(v.task for v in viewers if v.task), return_exceptions=True)
        await sig.close()
