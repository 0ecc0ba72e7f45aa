"""Taking one camera stream in: one demuxer thread per stream, whatever the number of viewers and recordings.

``StreamIngest`` opens the stream URI with PyAV (FFmpeg's RTSP client; RTP over UDP through a generated SDP),
reads packets without decoding them, writes them to the attached recorders in its own thread and hands them to
the event loop, where ``PacketSink``s (one per viewer) take them. A codec browsers cannot play (H.265,
MJPEG...) is transcoded to H.264 once, in that same thread, whatever the number of viewers; recordings keep
the camera's own packets. It reconnects with backoff after the stream drops; a codec that cannot even be
transcoded (or transcoding turned off) ends it with that reason. Status is always readable without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from mission.link.types import VideoStreamInfo
from mission.video.recorder import SegmentRecorder

log = logging.getLogger(__name__)

RELAYABLE = frozenset({"h264"})
_CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "h265": "H.265", "mjpeg": "MJPEG", "mpeg4": "MPEG-4"}
_FFMPEG_NAMES = {"h265": "hevc"}  # MAVLink's encoding names where FFmpeg's differ
_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def codec_label(name: str) -> str:
    """A codec name as people write it (hevc -> H.265)."""
    return _CODEC_NAMES.get(name.lower(), name.upper())


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One encoded picture as demuxed (an ``av.Packet``), with when it arrived."""

    packet: Any
    keyframe: bool
    arrived_at: float


class PacketSink:
    """A bounded packet queue for one consumer (a viewer); one that falls behind skips to a keyframe."""

    def __init__(self, *, max_frames: int, name: str) -> None:
        self.name = name
        self._queue: deque[VideoPacket] = deque()
        self._max = max_frames
        self._event = asyncio.Event()
        self._waiting_keyframe = True
        self.delivered = 0
        self.dropped = 0
        self.backlogged_since: float | None = None
        self.closed = False

    def offer(self, item: VideoPacket) -> None:
        """From the ingest (on the loop): queue, or drop to the next keyframe when full."""
        if self.closed:
            return
        if self._waiting_keyframe:
            if not item.keyframe:
                return
            self._waiting_keyframe = False
        if len(self._queue) >= self._max:
            self.dropped += len(self._queue)
            self._queue.clear()
            if self.backlogged_since is None:
                self.backlogged_since = time.monotonic()
            if not item.keyframe:
                self._waiting_keyframe = True
                return
        self._queue.append(item)
        self._event.set()

    async def get(self) -> VideoPacket:
        """The next packet (waits); raises EOFError once closed."""
        while not self._queue:
            if self.closed:
                raise EOFError(self.name)
            self._event.clear()
            await self._event.wait()
        item = self._queue.popleft()
        self.delivered += 1
        if not self._queue:
            self.backlogged_since = None
        return item

    def close(self) -> None:
        """No more packets; a waiting ``get`` ends."""
        self.closed = True
        self._queue.clear()
        self._event.set()


class Transcoder:
    """Decoded pictures of a codec browsers cannot play, encoded again as H.264 the relay can pass.

    One per ingest: its viewers share the encoder. Constrained baseline with no B-frames and a keyframe a
    second (or at once when ``want_keyframe`` is set, for a new viewer), as the sim camera encodes.
    """

    TIME_BASE = fractions.Fraction(1, 90_000)

    def __init__(self, *, fps: float) -> None:
        self._fps = fps if 1.0 <= fps <= 120.0 else 15.0
        self._encoder: Any = None
        self._last_pts = -1
        self.want_keyframe = threading.Event()
        self.frames = 0

    @staticmethod
    def can_decode(codec_name: str) -> bool:
        """Whether this FFmpeg build has a decoder for ``codec_name``."""
        try:
            av.codec.Codec(codec_name, "r")
        except (av.error.FFmpegError, ValueError):
            return False
        return True

    def _open(self, width: int, height: int) -> None:
        encoder: Any = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = self.TIME_BASE
        encoder.framerate = fractions.Fraction(round(self._fps * 1000), 1000)
        encoder.bit_rate = max(300_000, int(width * height * self._fps * 0.15))
        encoder.max_b_frames = 0
        encoder.profile = "Baseline"
        gop = max(1, round(self._fps))
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
        }
        encoder.open()
        self._encoder = encoder

    def encode(self, frame: Any) -> list[Any]:
        """H.264 packets (Annex B, pts in 1/90000) for one decoded picture."""
        if self._encoder is None:
            self._open(frame.width, frame.height)
        pts = round(frame.time * 90_000) if frame.time is not None else self._last_pts + 1
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        picture = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        if (picture.width, picture.height) != (self._encoder.width, self._encoder.height):
            picture = picture.reformat(width=self._encoder.width, height=self._encoder.height)
        picture.pts = pts
        picture.time_base = self.TIME_BASE
        picture.pict_type = av.video.frame.PictureType.NONE
        if self.want_keyframe.is_set():
            self.want_keyframe.clear()
            picture.pict_type = av.video.frame.PictureType.I
        packets = self._encoder.encode(picture)
        for packet in packets:
            packet.time_base = self.TIME_BASE
        self.frames += 1
        return packets


def open_args(stream: VideoStreamInfo, *, rtsp_transport: str) -> tuple[str, str | None, dict[str, str]]:
    """(url, container format, options) for PyAV to read ``stream`` with little delay."""
    options = {"fflags": "nobuffer", "flags": "low_delay", "max_delay": "0", "analyzeduration": "1000000"}
    uri = stream.uri
    if uri.startswith("rtsp://") or uri.startswith("rtsps://"):
        options["rtsp_transport"] = rtsp_transport
        options["reorder_queue_size"] = "0"
        # The SDP of DESCRIBE names the codec and carries its parameter sets (sprop-parameter-sets), so the
        # first packet is enough: probing a second of pictures delayed every first viewer by a second more.
        options["probesize"] = "32"
        return uri, None, options
    if uri.startswith("udp://"):
        # RTP over UDP as PX4/QGC camera setups stream it (udp://0.0.0.0:5600): describe it in an SDP.
        port = int(uri.rsplit(":", 1)[1].split("/")[0].split("?")[0])
        codec = "H265" if stream.encoding == "h265" else "H264"
        sdp = f"v=0\r\nc=IN IP4 0.0.0.0\r\nm=video {port} RTP/AVP 96\r\na=rtpmap:96 {codec}/90000\r\n"
        path = Path(tempfile.gettempdir()) / f"skywarden-udp-{port}.sdp"
        path.write_text(sdp)
        options["protocol_whitelist"] = "file,udp,rtp"
        return str(path), "sdp", options
    return uri, None, options


class StreamIngest:
    """One stream taken in; ``subscribe`` for live packets, ``attach`` recorders, ``stop`` when unused."""

    def __init__(
        self,
        *,
        vehicle_id: int,
        stream: VideoStreamInfo,
        rtsp_transport: str,
        open_timeout_s: float,
        read_timeout_s: float,
        on_state: Callable[[StreamIngest], None],
        transcode: bool = True,
    ) -> None:
        self.vehicle_id = vehicle_id
        self._transcode = transcode
        self.stream = stream
        self._rtsp_transport = rtsp_transport
        self._open_timeout_s = open_timeout_s
        self._read_timeout_s = read_timeout_s
        self._on_state = on_state
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sinks: set[PacketSink] = set()
        self._recorders: list[SegmentRecorder] = []
        self._recorders_lock = threading.Lock()
        self._fresh: set[SegmentRecorder] = set()  # attached, not fed yet: they start with the current GOP
        self._source_gop: list[tuple[Any, float]] = []  # the camera's packets since its last keyframe
        self._live = asyncio.Event()
        self._ended = asyncio.Event()
        self.state = "starting"
        self.reason = ""
        self.codec: str | None = None  # the camera's codec
        self.transcoding = False  # True while its pictures are encoded again as H.264 for the relay
        self._transcoder: Transcoder | None = None
        self.width = 0
        self.height = 0
        self.packets = 0
        self.reconnects = 0
        self.last_packet_at = 0.0
        self._arrivals: deque[float] = deque(maxlen=64)
        self.gop: list[VideoPacket] = []  # the current group of pictures, for snapshots

    # ---- lifecycle (loop) --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the demuxer thread."""
        self._thread = threading.Thread(target=self._run, name=f"video-ingest-{self.vehicle_id}", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """End the thread, close recorders' open segments and every sink."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, self._read_timeout_s + self._open_timeout_s + 2.0)
        for sink in list(self._sinks):
            sink.close()
        self._sinks.clear()

    async def wait_live(self, timeout_s: float) -> bool:
        """Until the first packet (True), the ingest ended (False) or ``timeout_s`` passed (False)."""
        live, ended = asyncio.ensure_future(self._live.wait()), asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({live, ended}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            live.cancel()
            ended.cancel()
        return self._live.is_set() and self.state == "live"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def fps(self) -> float:
        """Frames per second over the last few seconds."""
        arrivals = self._arrivals
        if len(arrivals) < 2 or time.monotonic() - arrivals[-1] > 2.0:
            return 0.0
        return (len(arrivals) - 1) / max(1e-6, arrivals[-1] - arrivals[0])

    def subscribe(self, *, max_frames: int, name: str) -> PacketSink:
        """A new sink that gets every packet from the next keyframe on."""
        sink = PacketSink(max_frames=max_frames, name=name)
        self._sinks.add(sink)
        if (
            self._transcoder is not None
        ):  # our own encoder: the new viewer need not wait for the next keyframe
            self._transcoder.want_keyframe.set()
        return sink

    def unsubscribe(self, sink: PacketSink) -> None:
        sink.close()
        self._sinks.discard(sink)

    @property
    def sinks(self) -> frozenset[PacketSink]:
        return frozenset(self._sinks)

    def attach(self, recorder: SegmentRecorder) -> None:
        """Start feeding ``recorder`` from the last keyframe on.

        A recording then holds the moment it was asked for, not only what follows the next keyframe (a GOP
        can be several seconds on real cameras).
        """
        with self._recorders_lock:
            self._recorders.append(recorder)
            self._fresh.add(recorder)

    def detach(self, recorder: SegmentRecorder) -> None:
        with self._recorders_lock:
            if recorder in self._recorders:
                self._recorders.remove(recorder)
            self._fresh.discard(recorder)

    @property
    def recorders(self) -> list[SegmentRecorder]:
        with self._recorders_lock:
            return list(self._recorders)

    # ---- loop side of the thread -------------------------------------------------------------------
    def _set_state(self, state: str, reason: str = "") -> None:
        changed = (state, reason) != (self.state, self.reason)
        self.state, self.reason = state, reason
        if state == "live":
            self._live.set()
        if changed:
            self._on_state(self)

    def _publish(self, item: VideoPacket) -> None:
        self.packets += 1
        self.last_packet_at = item.arrived_at
        self._arrivals.append(time.monotonic())
        if self.state != "live":
            self._set_state("live")
        if item.keyframe:
            self.gop = [item]
        elif self.gop and len(self.gop) < 600:
            self.gop.append(item)
        for sink in list(self._sinks):
            sink.offer(item)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(fn, *args)

    # ---- the thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                outcome = self._session()
                if outcome == "unsupported" or self._stop.is_set():
                    break
                attempt = 0 if outcome == "played" else attempt + 1
                if outcome == "played":
                    self.reconnects += 1
                self._stop.wait(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
        finally:
            for recorder in self.recorders:
                recorder.close()
            self._call(self._ended.set)

    def _session(self) -> str:
        """One connection: 'unreachable', 'unsupported', 'played' (then dropped) or 'stopped'."""
        url, fmt, options = open_args(self.stream, rtsp_transport=self._rtsp_transport)
        self._source_gop = []
        started = time.monotonic()
        try:
            container = av.open(
                url, format=fmt, options=options, timeout=(self._open_timeout_s, self._read_timeout_s)
            )
        except (av.error.FFmpegError, OSError) as err:
            # FFmpeg reports its own timeout as whatever the half-read answer looked like
            timed_out = time.monotonic() - started >= self._open_timeout_s - 0.25
            why = f"no answer in time ({self._open_timeout_s:.0f} s)" if timed_out else _why(err)
            self._call(self._set_state, "unavailable", f"stream unreachable ({self.stream.uri}: {why})")
            return "unreachable"
        played = False
        try:
            if not container.streams.video:
                self._call(self._set_state, "unavailable", f"no video track in {self.stream.uri}")
                return "unsupported"
            stream = container.streams.video[0]
            name = stream.codec_context.name
            self.codec = name
            self.width, self.height = stream.codec_context.width, stream.codec_context.height
            transcoder = None
            if name not in RELAYABLE:
                why = untranscodable(name, transcode=self._transcode)
                if why:
                    self._call(self._set_state, "unavailable", why)
                    return "unsupported"
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                transcoder = self._transcoder = Transcoder(fps=float(rate) if rate else 15.0)
                self.transcoding = True
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return "stopped"
                if packet.size == 0 or (packet.pts is None and packet.dts is None):
                    continue
                played = True
                now = time.time()
                keyframe = bool(packet.is_keyframe)
                self._record(packet, now=now, keyframe=keyframe)
                if transcoder is None:
                    self._call(self._publish, VideoPacket(packet=packet, keyframe=keyframe, arrived_at=now))
                    continue
                for out in self._transcoded(transcoder, packet):
                    item = VideoPacket(packet=out, keyframe=bool(out.is_keyframe), arrived_at=now)
                    self._call(self._publish, item)
            self._call(self._set_state, "stalled", f"stream ended ({self.stream.uri})")
        except (av.error.FFmpegError, OSError) as err:
            if not self._stop.is_set():
                what = "stream stalled" if played else "stream unreachable"
                self._call(
                    self._set_state,
                    "stalled" if played else "unavailable",
                    f"{what} ({self.stream.uri}: {_why(err)})",
                )
        finally:
            with contextlib.suppress(Exception):
                container.close()
        return "played" if played else "unreachable"

    def _record(self, packet: Any, *, now: float, keyframe: bool) -> None:
        """The camera's own packet (never our re-encoding) to every recorder; new ones get the GOP first."""
        gop = self._source_gop
        if keyframe:
            gop = self._source_gop = [(packet, now)]
        elif gop and len(gop) < 600:
            gop.append((packet, now))
        with self._recorders_lock:
            recorders, fresh = list(self._recorders), self._fresh
            self._fresh = set()
        for recorder in recorders:
            items = gop if recorder in fresh and gop and gop[-1][0] is packet else [(packet, now)]
            try:
                for item, arrived_at in items:
                    recorder.write(item, arrived_at=arrived_at)
            except Exception:  # a disk problem must not stop the live picture
                log.exception("vehicle %d: recording %d write failed", self.vehicle_id, recorder.recording_id)

    def _transcoded(self, transcoder: Transcoder, packet: Any) -> list[Any]:
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:  # a damaged picture (a lost RTP packet): the next keyframe heals it
            return []
        return [out for frame in frames for out in transcoder.encode(frame)]


def untranscodable(codec_name: str, *, transcode: bool) -> str:
    """Why a stream in ``codec_name`` cannot reach a browser, or "" when it can (as it is or transcoded)."""
    if codec_name in RELAYABLE:
        return ""
    label = codec_label(codec_name)
    if not transcode:
        return f"codec {label} unsupported (the relay passes H.264; transcoding is off: video_transcode)"
    if not Transcoder.can_decode(_FFMPEG_NAMES.get(codec_name, codec_name)):
        return f"codec {label} unsupported (no decoder for it here to transcode it to H.264)"
    return ""


def _why(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    if "Immediate exit" in text or "timed out" in text.lower():
        return "no answer in time"
    return text
