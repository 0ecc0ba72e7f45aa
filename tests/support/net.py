"""Free local ports, so parallel tests (and a developer's own service) never collide."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_low() -> int:
    """Where the kernel starts handing out ports to sockets bound to port 0 (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_udp_base(count: int = 1) -> int:
    """A base port with ``count`` consecutive free UDP ports (above PX4's and the demo's 145xx/146xx).

    Below the kernel's ephemeral range: a port found free there is soon taken by any process's unbound
    socket (MAVSDK, aiortc, a browser on the same machine), and the service's later bind then fails.
    """
    rng = random.Random()
    high = max(21000, min(_ephemeral_low(), 60000))
    for _ in range(200):
        base = rng.randrange(20000, high - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("0.0.0.0", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError(f"no {count} consecutive free UDP ports found")


def free_tcp_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
