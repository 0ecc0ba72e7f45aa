"""Tuning of a simulated vehicle's camera: picture, encoder, RTSP endpoint and what it sees."""

from __future__ import annotations

from dataclasses import dataclass

from sim.camera.world import CameraWorld

CODECS = ("h264", "h265")


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    """A MAVLink camera (component 100) with a gimbal, streaming RTSP on host:port (port 0 = any free)."""

    width: int = 640
    height: int = 360
    fps: float = 15.0
    bitrate_bps: int = 800_000
    gop_s: float = 1.0  # a keyframe every second: a new viewer waits at most this long
    codec: str = "h264"
    hfov_deg: float = 78.0
    rtsp_host: str = "127.0.0.1"
    rtsp_port_base: int | None = None  # vehicle i serves on base + i; None = an ephemeral port each
    idle_stop_wall_s: float = 2.0  # the encoder stops this long after the last RTSP client left
    world: CameraWorld | None = None
    vendor: str = "skywarden-sim"
    model: str = "SIM-CAM-1"

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 3840 and 16 <= self.height <= 2160) or self.width % 2 or self.height % 2:
            raise ValueError(
                f"camera size must be even and within 16..3840 x 16..2160, got {self.width}x{self.height}"
            )
        if not 1.0 <= self.fps <= 60.0:
            raise ValueError(f"camera fps must be within 1..60, got {self.fps}")
        if self.codec not in CODECS:
            raise ValueError(f"camera codec must be one of {CODECS}, got {self.codec!r}")
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"camera hfov_deg must be within 10..150, got {self.hfov_deg}")
        if self.bitrate_bps < 50_000:
            raise ValueError(f"camera bitrate_bps must be >= 50000, got {self.bitrate_bps}")
        if self.gop_s <= 0:
            raise ValueError(f"camera gop_s must be > 0, got {self.gop_s}")

    @property
    def gop_frames(self) -> int:
        """Frames between keyframes."""
        return max(1, round(self.gop_s * self.fps))
