"""How the video service behaves; built from the service settings (the ``video_*`` block)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class VideoConfig:
    enabled: bool = True
    storage_dir: Path = Path("video")
    segment_s: float = 10.0
    retention_days: float = 30.0
    observers_allowed: bool = False
    idle_stop_s: float = 5.0  # an ingest nobody watches or records stops after this long
    open_timeout_s: float = 6.0  # a viewer waits at most this long for a stream to come up
    read_timeout_s: float = 4.0  # no packet for this long = the stream stalled
    rtsp_transport: str = "tcp"
    transcode: bool = True  # a codec browsers cannot play is encoded again as H.264 (once per stream)
    max_viewers: int = 32  # per stream
    viewer_queue_frames: int = 30
    viewer_stall_s: float = 5.0  # a viewer that cannot take frames for this long is dropped
    auto_record: bool = True  # record when dispatch assigns a drone to an incident
    gimbal_on_scene: bool = True  # point the gimbal at the incident on arrival
    discovery_timeout_s: float = 3.0  # how long to wait for VIDEO_STREAM_INFORMATION when asked

    @classmethod
    def from_settings(cls, settings: Any) -> VideoConfig:
        """The ``video_*`` settings; missing ones keep their defaults, and no ``video_enabled`` means off."""
        values: dict[str, Any] = {"enabled": bool(getattr(settings, "video_enabled", False))}
        for name in cls.__dataclass_fields__:
            value = getattr(settings, f"video_{name}", None)
            if value is not None:
                values[name] = Path(value) if name == "storage_dir" else value
        return cls(**values)
