"""Encoding the camera picture (H.264 or H.265 with PyAV) and carrying it in RTP (RFC 6184 / RFC 7798).

``Encoder`` turns RGB frames into access units (Annex B bytes); ``Packetizer`` cuts an access unit into RTP
payloads (single NAL unit packets, FU-A / H.265 FU fragments) with the marker bit on the last one; and
``sdp_fmtp`` describes the stream for RTSP DESCRIBE with the parameter sets the decoder needs.
"""

from __future__ import annotations

import base64
import fractions
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

RTP_CLOCK_HZ = 90_000
RTP_PAYLOAD_TYPE = 96
_MAX_PAYLOAD = 1200  # below any path MTU, as WebRTC stacks do
_H265_FU = 49


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One encoded picture: Annex B bytes, whether it is a keyframe, and its RTP timestamp."""

    data: bytes
    keyframe: bool
    rtp_ts: int
    capture_ms: int


def split_nals(annexb: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B byte stream, without their start codes."""
    i, n = 0, len(annexb)
    starts: list[tuple[int, int]] = []
    while i + 3 <= n:
        if annexb[i] == 0 and annexb[i + 1] == 0:
            if annexb[i + 2] == 1:
                starts.append((i, i + 3))
                i += 3
                continue
            if i + 4 <= n and annexb[i + 2] == 0 and annexb[i + 3] == 1:
                starts.append((i, i + 4))
                i += 4
                continue
        i += 1
    for k, (_, begin) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else n
        if end > begin:
            yield annexb[begin:end]


class Encoder:
    """libx264 / libx265 tuned for live low-latency streaming: no B-frames, fixed GOP, in-band headers."""

    def __init__(
        self, *, codec: str, width: int, height: int, fps: float, bitrate_bps: int, gop: int
    ) -> None:
        self.codec = codec
        name = "libx264" if codec == "h264" else "libx265"
        ctx: Any = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = fractions.Fraction(1, RTP_CLOCK_HZ)
        ctx.framerate = fractions.Fraction(round(fps * 1000), 1000)
        ctx.bit_rate = bitrate_bps
        ctx.gop_size = gop
        ctx.max_b_frames = 0
        if codec == "h264":
            # constrained baseline: what every WebRTC H.264 decoder takes (profile-level-id 42e0xx)
            ctx.profile = "Baseline"
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
            }
        else:
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:log-level=error",
            }
        ctx.open()
        self._ctx = ctx
        self._frame_period = RTP_CLOCK_HZ / fps
        self._count = 0
        self.parameter_sets: list[bytes] = []

    def encode(
        self, rgb: np.ndarray, *, rtp_ts: int, capture_ms: int, keyframe: bool = False
    ) -> list[AccessUnit]:
        """Encode one RGB frame; the access units it produced (usually exactly one)."""
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = rtp_ts
        frame.time_base = self._ctx.time_base
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        out = []
        for packet in self._ctx.encode(frame):
            data = bytes(packet)
            if packet.is_keyframe:
                self._remember_parameter_sets(data)
            out.append(
                AccessUnit(data=data, keyframe=bool(packet.is_keyframe), rtp_ts=rtp_ts, capture_ms=capture_ms)
            )
        return out

    def _remember_parameter_sets(self, data: bytes) -> None:
        sets = [nal for nal in split_nals(data) if nal_is_parameter_set(self.codec, nal)]
        if sets:
            self.parameter_sets = sets


def nal_is_parameter_set(codec: str, nal: bytes) -> bool:
    """SPS/PPS (H.264) or VPS/SPS/PPS (H.265)."""
    if not nal:
        return False
    if codec == "h264":
        return nal[0] & 0x1F in (7, 8)
    return (nal[0] >> 1) & 0x3F in (32, 33, 34)


def sdp_fmtp(codec: str, parameter_sets: list[bytes]) -> tuple[str, str]:
    """(rtpmap, fmtp) attribute values for payload type 96."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    if codec == "h264":
        sps = next((n for n in parameter_sets if n[0] & 0x1F == 7), None)
        params = ["packetization-mode=1"]
        if sps is not None and len(sps) >= 4:
            params.append(f"profile-level-id={sps[1:4].hex()}")
            params.append("sprop-parameter-sets=" + ",".join(b64(n) for n in parameter_sets))
        else:
            params.append("profile-level-id=42e01f")
        return "H264/90000", ";".join(params)
    names = {32: "sprop-vps", 33: "sprop-sps", 34: "sprop-pps"}
    params = [f"{names[(n[0] >> 1) & 0x3F]}={b64(n)}" for n in parameter_sets]
    return "H265/90000", ";".join(params) or "profile-id=1"


class Packetizer:
    """RTP packets of one stream: sequence numbers, SSRC, fragments, the marker on a picture's last packet."""

    def __init__(self, codec: str, *, ssrc: int | None = None) -> None:
        self.codec = codec
        self.ssrc = ssrc if ssrc is not None else random.getrandbits(32)
        self.seq = random.getrandbits(16)

    def packets(self, au: AccessUnit) -> list[bytes]:
        """Whole RTP packets (12-byte header + payload) for one access unit."""
        payloads: list[bytes] = []
        for nal in split_nals(au.data):
            payloads.extend(self._payloads(nal))
        out = []
        for k, payload in enumerate(payloads):
            marker = 0x80 if k == len(payloads) - 1 else 0
            header = struct.pack(
                "!BBHII", 0x80, marker | RTP_PAYLOAD_TYPE, self.seq, au.rtp_ts & 0xFFFFFFFF, self.ssrc
            )
            self.seq = (self.seq + 1) & 0xFFFF
            out.append(header + payload)
        return out

    def _payloads(self, nal: bytes) -> list[bytes]:
        if len(nal) <= _MAX_PAYLOAD:
            return [nal]
        if self.codec == "h264":  # FU-A: indicator (NRI of the NAL, type 28), then S/E bits and the NAL type
            nal_type, prefix, body = nal[0] & 0x1F, bytes(((nal[0] & 0xE0) | 28,)), nal[1:]
        else:  # H.265 FU: payload header of type 49 (layer and TID kept), then S/E bits and the NAL type
            nal_type, prefix, body = (
                (nal[0] >> 1) & 0x3F,
                bytes(((nal[0] & 0x81) | (_H265_FU << 1), nal[1])),
                nal[2:],
            )
        size = _MAX_PAYLOAD - len(prefix) - 1
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        out = []
        for k, chunk in enumerate(chunks):
            flags = (0x80 if k == 0 else 0) | (0x40 if k == len(chunks) - 1 else 0)
            out.append(prefix + bytes((flags | nal_type,)) + chunk)
        return out
