"""A small RTSP server (RFC 2326) for one camera stream: DESCRIBE, SETUP (TCP interleaved or UDP), PLAY.

Enough for FFmpeg/ffplay, VLC and GStreamer clients: OPTIONS, DESCRIBE (SDP), SETUP, PLAY, PAUSE, TEARDOWN and
GET_PARAMETER (keep-alive). RTP packets are cut once per picture and fanned out to every playing session;
a TCP client whose socket backs up is skipped until the next keyframe instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

_log = logging.getLogger("sim.camera")
_MAX_TCP_BACKLOG = 2 * 1024 * 1024
_MAX_REQUEST = 16 * 1024
PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER"


@dataclass(eq=False)
class _Session:
    id: str
    writer: asyncio.StreamWriter
    tcp_channel: int | None = None  # interleaved RTP channel over the RTSP connection
    udp_addr: tuple[str, int] | None = None
    playing: bool = False
    waiting_keyframe: bool = True
    sent_packets: int = 0


@dataclass
class RtspStats:
    """What a test can see of the server."""

    connections: int = 0
    playing: int = 0
    sessions_started: int = 0
    packets_sent: int = 0
    keyframe_waits: int = 0


class RtspServer:
    """Serves ``rtsp://host:port/live``; ``describe()`` returns (rtpmap, fmtp) for the SDP."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        describe: Callable[[], tuple[str, str]],
        on_play: Callable[[], None],
        on_leave: Callable[[], None],
        title: str = "skywarden sim camera",
    ) -> None:
        self.host = host
        self.port = port
        self._describe = describe
        self._on_play = on_play
        self._on_leave = on_leave
        self._title = title
        self._server: asyncio.base_events.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._sessions: dict[str, _Session] = {}
        self._connections: set[asyncio.StreamWriter] = set()
        self.stats = RtspStats()

    @property
    def url(self) -> str:
        """The stream's URI, as the camera announces it."""
        return f"rtsp://{self.host}:{self.port}/live"

    @property
    def playing(self) -> int:
        """Sessions receiving packets now."""
        return sum(1 for s in self._sessions.values() if s.playing)

    async def start(self) -> None:
        """Listen (port 0 picks a free port, then ``port`` holds it)."""
        loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.host, 0)
        )

    async def close(self) -> None:
        """Stop listening and drop every client."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        for session in list(self._sessions.values()):
            self._drop(session)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def broadcast(self, packets: list[bytes], *, keyframe: bool) -> None:
        """Send one picture's RTP packets to every playing session (from the event loop)."""
        for session in self._sessions.values():
            if not session.playing:
                continue
            if session.waiting_keyframe and not keyframe:
                continue
            if session.tcp_channel is not None:
                transport = session.writer.transport
                if transport.is_closing():
                    continue
                if transport.get_write_buffer_size() > _MAX_TCP_BACKLOG:
                    session.waiting_keyframe = True  # a slow reader skips to the next keyframe
                    self.stats.keyframe_waits += 1
                    continue
                channel = session.tcp_channel
                session.writer.write(
                    b"".join(b"$" + bytes((channel,)) + len(p).to_bytes(2, "big") + p for p in packets)
                )
            elif session.udp_addr is not None and self._udp is not None:
                for p in packets:
                    self._udp.sendto(p, session.udp_addr)
            session.waiting_keyframe = False
            session.sent_packets += len(packets)
            self.stats.packets_sent += len(packets)

    # ---- protocol --------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        self.stats.connections += 1
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        mine: set[str] = set()
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved RTCP from the client: read and ignore
                    header = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(header[1:3], "big"))
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                if len(head) > _MAX_REQUEST:
                    return
                method, url, headers = _parse(head)
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(min(length, _MAX_REQUEST))
                reply = self._handle(method, url, headers, writer, peer[0], mine)
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            for sid in mine:
                session = self._sessions.get(sid)
                if session is not None:
                    self._drop(session)
            self._connections.discard(writer)
            writer.close()

    def _handle(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        writer: asyncio.StreamWriter,
        peer_host: str,
        mine: set[str],
    ) -> bytes:
        cseq = headers.get("cseq", "0")
        if method == "OPTIONS":
            return _reply(cseq, {"Public": PUBLIC})
        if method == "DESCRIBE":
            if not url.rstrip("/").endswith("/live"):
                return _reply(cseq, {}, status="404 Not Found")
            rtpmap, fmtp = self._describe()
            sdp = (
                "v=0\r\n"
                f"o=- {secrets.randbelow(2**31)} 1 IN IP4 {self.host}\r\n"
                f"s={self._title}\r\n"
                "c=IN IP4 0.0.0.0\r\n"
                "t=0 0\r\n"
                "a=control:*\r\n"
                "a=range:npt=0-\r\n"
                "m=video 0 RTP/AVP 96\r\n"
                f"a=rtpmap:96 {rtpmap}\r\n"
                f"a=fmtp:96 {fmtp}\r\n"
                "a=control:trackID=0\r\n"
            ).encode()
            return _reply(
                cseq,
                {"Content-Base": self.url + "/", "Content-Type": "application/sdp"},
                body=sdp,
            )
        if method == "SETUP":
            transport = headers.get("transport", "")
            session = _Session(id=secrets.token_hex(8), writer=writer)
            if "TCP" in transport.upper():
                channel = _param(transport, "interleaved", "0-1").split("-")[0]
                session.tcp_channel = int(channel) if channel.isdigit() else 0
                answer = f"RTP/AVP/TCP;unicast;interleaved={session.tcp_channel}-{session.tcp_channel + 1}"
            else:
                ports = _param(transport, "client_port", "")
                if not ports or not ports.split("-")[0].isdigit():
                    return _reply(cseq, {}, status="461 Unsupported Transport")
                rtp_port = int(ports.split("-")[0])
                session.udp_addr = (peer_host, rtp_port)
                server_port = self._udp.get_extra_info("sockname")[1] if self._udp else 0
                answer = f"RTP/AVP;unicast;client_port={ports};server_port={server_port}-{server_port + 1}"
            self._sessions[session.id] = session
            mine.add(session.id)
            return _reply(cseq, {"Transport": answer, "Session": f"{session.id};timeout=60"})
        found = self._sessions.get(headers.get("session", "").split(";")[0].strip())
        if method == "GET_PARAMETER":
            return _reply(cseq, {"Session": found.id} if found else {})
        if found is None:
            return _reply(cseq, {}, status="454 Session Not Found")
        session = found
        if method == "PLAY":
            if not session.playing:
                session.playing = True
                session.waiting_keyframe = True
                self.stats.sessions_started += 1
                self._on_play()
            return _reply(cseq, {"Session": session.id, "Range": "npt=0.000-"})
        if method == "PAUSE":
            if session.playing:
                session.playing = False
                self._on_leave()
            return _reply(cseq, {"Session": session.id})
        if method == "TEARDOWN":
            self._drop(session)
            mine.discard(session.id)
            return _reply(cseq, {"Session": session.id})
        return _reply(cseq, {}, status="405 Method Not Allowed")

    def _drop(self, session: _Session) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        if session.playing:
            session.playing = False
            self._on_leave()


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("utf-8", "replace").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("RTSP/"):
        raise ValueError(f"not an RTSP request: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return parts[0].upper(), parts[1], headers


def _param(transport: str, name: str, default: str) -> str:
    for part in transport.split(";"):
        if part.strip().startswith(name + "="):
            return part.split("=", 1)[1].strip()
    return default


def _reply(cseq: str, headers: dict[str, str], *, status: str = "200 OK", body: bytes = b"") -> bytes:
    lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", "Server: skywarden-sim"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
