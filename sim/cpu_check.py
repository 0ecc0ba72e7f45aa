"""`python -m sim.cpu_check --count 50 --speed 5`: CPU of a `python -m sim` fleet idle and all flying.

Starts the fleet as a subprocess, listens on its ports like a GCS, measures the process's CPU over a
window on the ground, then arms every vehicle, takes off and sends each on a long DO_REPOSITION leg and
measures again. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import psutil
from pymavlink.dialects.v20 import common as mavlink

_HOME = (39.82, 109.98, 1100.0)


class _Listener:
    def __init__(self, *, count: int, base_port: int) -> None:
        self.socks = []
        self.selector = selectors.DefaultSelector()
        for i in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", base_port + i))
            sock.setblocking(False)
            self.socks.append(sock)
            self.selector.register(sock, selectors.EVENT_READ, i)
        self.peers: dict[int, tuple[str, int]] = {}
        self.received = 0
        self._mav = mavlink.MAVLink(None, srcSystem=245, srcComponent=190)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.selector.select(0.05):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    while True:
                        _data, addr = sock.recvfrom(2048)
                        self.peers[key.data] = addr
                        self.received += 1
                except BlockingIOError:
                    pass

    def airborne(self, seconds: float) -> int:
        """Vehicles whose GLOBAL_POSITION_INT shows them above 15 m within `seconds`."""
        parser = mavlink.MAVLink(None)
        seen: set[int] = set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.selector.select(0.05):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    while True:
                        data, _addr = sock.recvfrom(2048)
                        for msg in parser.parse_buffer(data) or []:
                            if msg.get_type() == "GLOBAL_POSITION_INT" and msg.relative_alt > 15000:
                                seen.add(key.data)
                except BlockingIOError:
                    pass
        return len(seen)

    def send(self, index: int, msg: mavlink.MAVLink_message) -> None:
        self.socks[index].sendto(msg.pack(self._mav), self.peers[index])
        self._mav.seq = (self._mav.seq + 1) & 0xFF

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def _measure(proc: psutil.Process, listener: _Listener, window_s: float) -> tuple[float, float]:
    proc.cpu_percent(None)
    before = listener.received
    listener.pump(window_s)
    return proc.cpu_percent(None), (listener.received - before) / window_s


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m sim.cpu_check")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--speed", type=float, default=5.0)
    parser.add_argument("--base-port", type=int, default=15100)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per measurement")
    args = parser.parse_args(argv)
    listener = _Listener(count=args.count, base_port=args.base_port)
    child = subprocess.Popen(
        [sys.executable, "-m", "sim", "--count", str(args.count), "--base-port", str(args.base_port),
         "--speed", str(args.speed), "--home", ",".join(map(str, _HOME))],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        proc = psutil.Process(child.pid)
        listener.pump(3.0)
        print(f"vehicles heard: {len(listener.peers)}/{args.count}")
        cpu, rate = _measure(proc, listener, args.window)
        rss_mib = proc.memory_info().rss / 2**20
        print(f"on the ground: {cpu:.1f} % of one core, {rate:.0f} msg/s, RSS {rss_mib:.0f} MiB")
        nan = float("nan")
        for i in range(args.count):
            listener.send(i, listener._mav.param_set_encode(i + 1, 1, b"MIS_TAKEOFF_ALT", 20.0, 9))
            listener.send(i, listener._mav.command_long_encode(i + 1, 1, 400, 0, 1, 0, 0, 0, 0, 0, 0))
        listener.pump(0.5)
        for i in range(args.count):
            listener.send(i, listener._mav.command_long_encode(i + 1, 1, 22, 0, *[nan] * 7))
        listener.pump(20.0 / args.speed + 1.0)
        for i in range(args.count):
            lat = round((_HOME[0] + 0.03 + 0.0001 * i) * 1e7)
            reposition = listener._mav.command_int_encode(
                i + 1, 1, 0, 192, 0, 0, -1, 1, 0, nan, lat, round(_HOME[1] * 1e7), _HOME[2] + 30
            )
            listener.send(i, reposition)
        listener.pump(2.0)
        cpu, rate = _measure(proc, listener, args.window)
        airborne = listener.airborne(0.5)
        print(f"all flying: {cpu:.1f} % of one core, {rate:.0f} msg/s; airborne: {airborne}/{args.count}")
    finally:
        child.terminate()
        child.wait(10)
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
