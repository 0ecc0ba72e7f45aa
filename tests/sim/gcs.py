"""A minimal pymavlink ground station for black-box tests of sim/ over UDP."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

NAN = float("nan")


@dataclass(frozen=True)
class Item:
    """A mission item to upload (lat/lon in degrees, z per frame)."""

    command: int
    lat: float = 0.0
    lon: float = 0.0
    z: float = 0.0
    frame: int = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, NAN)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, gcs: Gcs) -> None:
        self._gcs = gcs

    def datagram_received(self, data: bytes, addr: tuple[Any, int]) -> None:
        self._gcs._received(data, addr)


class Gcs:
    """Listens on a UDP port like MAVSDK's udpin and talks to the vehicle that sends there."""

    def __init__(self, *, sysid: int = 245, compid: int = 190) -> None:
        self._mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        self._parser = mavlink.MAVLink(None)
        self._parser.robust_parsing = True
        self._transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.messages: list[Any] = []
        self.arrivals: list[float] = []
        self._new = asyncio.Event()
        self.target_system = 1

    async def open(self, port: int = 0) -> int:
        """Bind 127.0.0.1:port (0 = any free port) and return the port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self), local_addr=("127.0.0.1", port)
        )
        self._transport = transport
        return int(transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, data: bytes, addr: tuple[Any, int]) -> None:
        self.peer = (addr[0], addr[1])
        for msg in self._parser.parse_buffer(data) or []:
            if msg.get_type() != "BAD_DATA":
                self.messages.append(msg)
                self.arrivals.append(time.monotonic())
        self._new.set()

    def send(self, msg: Any) -> None:
        """Send one message to the vehicle (it must have sent something first)."""
        assert self._transport is not None and self.peer is not None, "no packet from the vehicle yet"
        self._transport.sendto(msg.pack(self._mav), self.peer)
        self._mav.seq = (self._mav.seq + 1) & 0xFF

    def mark(self) -> int:
        """Position in the message log; `expect` after a mark sees only newer messages."""
        return len(self.messages)

    async def expect(
        self,
        msg_type: str,
        where: Callable[[Any], bool] = lambda m: True,
        *,
        since: int | None = None,
        timeout_s: float = 3.0,
    ) -> Any:
        """The first message of `msg_type` matching `where` received after `since` (default: now)."""
        index = len(self.messages) if since is None else since
        deadline = time.monotonic() + timeout_s
        while True:
            while index < len(self.messages):
                msg = self.messages[index]
                index += 1
                if msg.get_type() == msg_type and where(msg):
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {msg_type} matching the condition within {timeout_s} s")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def wait_connected(self, timeout_s: float = 3.0) -> Any:
        """The first HEARTBEAT (so `peer` is known)."""
        return await self.expect("HEARTBEAT", since=0, timeout_s=timeout_s)

    def arrival_of(self, msg: Any) -> float:
        """Monotonic wall time `msg` arrived."""
        return self.arrivals[next(i for i, m in enumerate(self.messages) if m is msg)]

    def count(self, msg_type: str, since: int) -> int:
        """How many `msg_type` arrived after `since`."""
        return sum(1 for m in self.messages[since:] if m.get_type() == msg_type)

    # ------------------------------------------------------------------ commands
    async def command_long(
        self, command: int, *params: float, confirmation: int = 0, timeout_s: float = 3.0
    ) -> int:
        """COMMAND_LONG; returns the COMMAND_ACK result."""
        p = list(params) + [0.0] * (7 - len(params))
        since = self.mark()
        self.send(self._mav.command_long_encode(self.target_system, 1, command, confirmation, *p))
        ack = await self.expect(
            "COMMAND_ACK", lambda m: m.command == command, since=since, timeout_s=timeout_s
        )
        return int(ack.result)

    async def command_int(
        self,
        command: int,
        *,
        frame: int = mavlink.MAV_FRAME_GLOBAL_INT,
        params: tuple[float, float, float, float] = (NAN, NAN, NAN, NAN),
        lat: float = 0.0,
        lon: float = 0.0,
        z: float = NAN,
    ) -> int:
        """COMMAND_INT; returns the COMMAND_ACK result."""
        since = self.mark()
        self.send(
            self._mav.command_int_encode(
                self.target_system, 1, frame, command, 0, 0, *params, round(lat * 1e7), round(lon * 1e7), z
            )
        )
        ack = await self.expect("COMMAND_ACK", lambda m: m.command == command, since=since)
        return int(ack.result)

    async def set_mode(self, main: int, sub: int = 0) -> int:
        """DO_SET_MODE with a PX4 custom mode."""
        return await self.command_long(mavlink.MAV_CMD_DO_SET_MODE, 1, main, sub)

    async def heartbeat_mode(self, timeout_s: float = 3.0) -> tuple[int, int, bool]:
        """(main, sub, armed) from the next HEARTBEAT."""
        hb = await self.expect("HEARTBEAT", timeout_s=timeout_s)
        return (hb.custom_mode >> 16) & 0xFF, (hb.custom_mode >> 24) & 0xFF, bool(hb.base_mode & 128)

    # ------------------------------------------------------------------ params
    async def set_param(
        self, name: str, value: float, param_type: int = mavlink.MAV_PARAM_TYPE_REAL32
    ) -> Any:
        """PARAM_SET; returns the PARAM_VALUE echo."""
        since = self.mark()
        self.send(self._mav.param_set_encode(self.target_system, 1, name.encode(), value, param_type))
        return await self.expect("PARAM_VALUE", lambda m: m.param_id == name, since=since)

    async def get_param(self, name: str) -> Any:
        """PARAM_REQUEST_READ by name."""
        since = self.mark()
        self.send(self._mav.param_request_read_encode(self.target_system, 1, name.encode(), -1))
        return await self.expect("PARAM_VALUE", lambda m: m.param_id == name, since=since)

    # ------------------------------------------------------------------ missions
    def item_msg(self, seq: int, item: Item, mission_type: int = 0) -> Any:
        """MISSION_ITEM_INT for `item`."""
        return self._mav.mission_item_int_encode(
            self.target_system, 1, seq, item.frame, item.command, 1 if seq == 0 else 0, 1,
            *item.params, round(item.lat * 1e7), round(item.lon * 1e7), item.z, mission_type,
        )  # fmt: skip

    def count_msg(self, count: int, mission_type: int = 0) -> Any:
        """MISSION_COUNT."""
        return self._mav.mission_count_encode(self.target_system, 1, count, mission_type)

    async def upload(self, items: list[Item], mission_type: int = 0, timeout_s: float = 3.0) -> int:
        """The whole upload handshake; returns MISSION_ACK type (0 = accepted)."""
        since = self.mark()
        self.send(self.count_msg(len(items), mission_type))
        deadline = time.monotonic() + timeout_s
        index = since
        sent: set[int] = set()
        while True:
            while index < len(self.messages):
                msg = self.messages[index]
                index += 1
                if msg.get_type() == "MISSION_ACK" and msg.mission_type == mission_type:
                    return int(msg.type)
                if msg.get_type() == "MISSION_REQUEST_INT" and msg.mission_type == mission_type:
                    self.send(self.item_msg(msg.seq, items[msg.seq], mission_type))
                    sent.add(msg.seq)
            if time.monotonic() > deadline:
                raise TimeoutError(f"upload stalled after items {sorted(sent)}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), max(0.0, deadline - time.monotonic()))

    async def download(self, mission_type: int = 0) -> list[Any]:
        """MISSION_REQUEST_LIST -> MISSION_COUNT -> MISSION_REQUEST_INT each -> MISSION_ACK."""
        since = self.mark()
        self.send(self._mav.mission_request_list_encode(self.target_system, 1, mission_type))
        count = await self.expect("MISSION_COUNT", lambda m: m.mission_type == mission_type, since=since)
        items = []
        for seq in range(count.count):
            since = self.mark()
            self.send(self._mav.mission_request_int_encode(self.target_system, 1, seq, mission_type))
            items.append(
                await self.expect(
                    "MISSION_ITEM_INT",
                    lambda m, s=seq: m.seq == s and m.mission_type == mission_type,
                    since=since,
                )
            )
        self.send(self._mav.mission_ack_encode(self.target_system, 1, 0, mission_type))
        return items

    async def position(self, timeout_s: float = 3.0) -> Any:
        """The next GLOBAL_POSITION_INT."""
        return await self.expect("GLOBAL_POSITION_INT", timeout_s=timeout_s)

    async def wait_for(self, msg_type: str, where: Callable[[Any], bool], timeout_s: float = 10.0) -> Any:
        """Wait for a future message matching `where` (a state reached over the wire)."""
        return await self.expect(msg_type, where, timeout_s=timeout_s)


def finite(value: float) -> bool:
    """True for a finite float."""
    return math.isfinite(value)
