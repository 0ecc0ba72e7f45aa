"""The camera's picture pipeline: render, stamp and encode at the frame rate, only while someone watches.

One thread per camera (PyAV and Pillow release the GIL for the heavy parts) renders the vehicle's view at
wall-clock frame times and hands each access unit to the event loop. It starts with the first RTSP client and
stops ``idle_stop_wall_s`` after the last one left, so an unwatched fleet costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from sim.camera.codec import RTP_CLOCK_HZ, AccessUnit, Encoder
from sim.camera.config import CameraConfig
from sim.camera.render import CameraPose, Peer, Renderer

_log = logging.getLogger("sim.camera")


class VideoSource:
    """Frames for one camera; ``want``/``unwant`` count the clients, ``on_access_unit`` runs on the loop."""

    def __init__(
        self,
        *,
        config: CameraConfig,
        pose: Callable[[], CameraPose],
        peers: Callable[[], Sequence[Peer]],
        on_access_unit: Callable[[AccessUnit], None],
        name: str,
    ) -> None:
        self.config = config
        self._pose = pose
        self._peers = peers
        self._on_au = on_access_unit
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._renderer = Renderer(
            width=config.width, height=config.height, hfov_deg=config.hfov_deg, world=config.world
        )
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._keyframe = threading.Event()
        self._clients = 0
        self._idle_handle: asyncio.TimerHandle | None = None
        self.frames_encoded = 0
        self.frames_skipped = 0
        self._epoch = time.monotonic()

    @property
    def running(self) -> bool:
        """True while the render/encode thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def encoder(self) -> Encoder:
        """The encoder (made on first use); its parameter sets are known once it has made a keyframe."""
        with self._lock:
            if self._encoder is None:
                c = self.config
                self._encoder = Encoder(
                    codec=c.codec,
                    width=c.width,
                    height=c.height,
                    fps=c.fps,
                    bitrate_bps=c.bitrate_bps,
                    gop=c.gop_frames,
                )
                # A warm-up keyframe gives the parameter sets for the SDP; each new client gets a fresh one.
                black = np.zeros((c.height, c.width, 3), np.uint8)
                self._encoder.encode(black, rtp_ts=0, capture_ms=0, keyframe=True)
            return self._encoder

    def want(self) -> None:
        """A client started playing: run, and start it with a keyframe."""
        self._loop = asyncio.get_running_loop()
        self._clients += 1
        self._keyframe.set()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"sim-camera-{self._name}", daemon=True)
            self._thread.start()

    def unwant(self) -> None:
        """A client left: stop after the idle delay when it was the last one."""
        self._clients = max(0, self._clients - 1)
        if self._clients == 0 and self._loop is not None and self._idle_handle is None:
            self._idle_handle = self._loop.call_later(self.config.idle_stop_wall_s, self._idle_stop)

    def _idle_stop(self) -> None:
        self._idle_handle = None
        if self._clients == 0:
            self._stop.set()

    async def close(self) -> None:
        """Stop the thread and wait for it."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        self._stop.set()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)
            self._thread = None

    def _run(self) -> None:
        period = 1.0 / self.config.fps
        encoder = self.encoder()
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_at:
                self._stop.wait(next_at - now)
                continue
            if now - next_at > period:
                skipped = int((now - next_at) / period)
                self.frames_skipped += skipped
                next_at += skipped * period  # keep the wall-clock cadence, drop what we could not make
            next_at += period
            try:
                capture_ms = int(time.time() * 1000)
                rtp_ts = int((now - self._epoch) * RTP_CLOCK_HZ)
                frame = self._renderer.render(self._pose(), peers=self._peers(), utc_ms=capture_ms)
                keyframe = self._keyframe.is_set()
                self._keyframe.clear()
                units = encoder.encode(frame, rtp_ts=rtp_ts, capture_ms=capture_ms, keyframe=keyframe)
            except Exception:  # a bad frame must not end the stream
                _log.exception("camera %s: frame failed", self._name)
                continue
            self.frames_encoded += 1
            loop = self._loop
            if loop is None:
                continue
            for au in units:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(self._on_au, au)
