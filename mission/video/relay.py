"""WebRTC to the browser with aiortc: the camera's H.264 passed through as it is, never re-encoded.

A browser sends an SDP offer (receive-only video); ``open_viewer`` answers with one H.264 sender whose
track yields the ingest's packets (aiortc packetizes pre-encoded ``av.Packet``s without touching them). Each
viewer has its own bounded ``PacketSink``, so a slow or stalled viewer only ever loses its own frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from mission.video.errors import VideoUnavailable
from mission.video.ingest import PacketSink

log = logging.getLogger(__name__)


class PacketTrack(MediaStreamTrack):
    """A video track of encoded packets from one sink."""

    kind = "video"

    def __init__(self, sink: PacketSink) -> None:
        super().__init__()
        self._sink = sink

    async def recv(self) -> Any:  # av.Packet: aiortc's H.264 encoder packs it without re-encoding
        if self.readyState != "live":
            raise MediaStreamError
        try:
            item = await self._sink.get()
        except EOFError:
            self.stop()
            raise MediaStreamError from None
        return item.packet


@dataclass(eq=False)
class Viewer:
    """One browser (or any WebRTC peer) watching one vehicle."""

    id: str
    vehicle_id: int
    user: str
    sink: PacketSink
    pc: RTCPeerConnection
    started_at: float = field(default_factory=time.time)
    closed_reason: str = ""

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)


def offers_h264(sdp: str) -> bool:
    """Whether an SDP offer lets us send H.264 (packetization-mode 1)."""
    return "H264/90000" in sdp.upper()


async def open_viewer(*, vehicle_id: int, user: str, offer_sdp: str, sink: PacketSink) -> tuple[Viewer, str]:
    """Answer ``offer_sdp`` with an H.264 sender fed by ``sink``; (viewer, answer SDP)."""
    if not offers_h264(offer_sdp):
        raise VideoUnavailable(
            "codec H.264 unsupported by this browser (the relay passes the camera's H.264 as it is)",
            vehicle_id=vehicle_id,
            code="video.browser_lacks_h264",
        )
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = Viewer(id=secrets.token_hex(8), vehicle_id=vehicle_id, user=user, sink=sink, pc=pc)
    try:
        # The sender comes first, with H.264 as its only codec: the offer's video section is matched to it
        # and the answer can then only carry H.264, whatever the browser listed first.
        transceiver = pc.addTransceiver(PacketTrack(sink), direction="sendonly")
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/h264"]
        transceiver.setCodecPreferences(h264)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except BaseException:
        sink.close()
        await pc.close()
        raise
    return viewer, pc.localDescription.sdp


async def close_viewer(viewer: Viewer, *, reason: str) -> None:
    """Hang up (idempotent)."""
    if not viewer.closed_reason:
        viewer.closed_reason = reason
    viewer.sink.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(viewer.pc.close(), 5.0)
