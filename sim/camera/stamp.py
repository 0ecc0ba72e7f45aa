"""A machine-readable wall-clock stamp burned into each frame, for glass-to-glass delay.

A row of square cells at the bottom of the picture on a black band: a start marker (white, black), the
frame's capture time as 40 bits of Unix milliseconds (mod 2^40, MSB first), then a CRC-8 of those 5 bytes.
White = 1. Cells are large enough to survive H.264 at a few hundred kbit/s; ``read`` samples the middle of
each cell. The geometry follows from the frame size only, so any decoder (Python, a browser canvas) finds it.

>>> import numpy as np
>>> frame = np.zeros((360, 640, 3), np.uint8)
>>> draw(frame, 1_780_000_000_123)
>>> read(frame[:, :, 0], now_ms=1_780_000_000_500)
1780000000123
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATA_BITS = 40
CRC_BITS = 8
MARKER = (1, 0)
CELLS = len(MARKER) + DATA_BITS + CRC_BITS
_WRAP = 1 << DATA_BITS


@dataclass(frozen=True, slots=True)
class StampGeometry:
    """Where the cells are in a width x height frame."""

    cell_px: int
    x0: int
    y0: int
    band_y0: int

    @classmethod
    def for_frame(cls, width: int, height: int) -> StampGeometry:
        """The layout every encoder and decoder of a width x height frame uses."""
        cell = max(4, width // (CELLS + 4))
        y0 = height - 2 * cell
        return cls(cell_px=cell, x0=2 * cell, y0=y0, band_y0=max(0, y0 - cell // 2))


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, init 0)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def bits_for(ms: int) -> list[int]:
    """The cell values (marker, 40 time bits, 8 CRC bits) for Unix time ``ms``."""
    value = ms % _WRAP
    data = value.to_bytes(DATA_BITS // 8, "big")
    out = list(MARKER)
    out += [(value >> (DATA_BITS - 1 - i)) & 1 for i in range(DATA_BITS)]
    crc = crc8(data)
    out += [(crc >> (CRC_BITS - 1 - i)) & 1 for i in range(CRC_BITS)]
    return out


def draw(frame: np.ndarray, ms: int) -> None:
    """Burn the stamp for ``ms`` into an RGB (h, w, 3) or grey (h, w) uint8 frame in place."""
    height, width = frame.shape[:2]
    geo = StampGeometry.for_frame(width, height)
    frame[geo.band_y0 :, :] = 0
    c = geo.cell_px
    for i, bit in enumerate(bits_for(ms)):
        if bit:
            x = geo.x0 + i * c
            frame[geo.y0 : geo.y0 + c, x : x + c] = 255


def read(luma: np.ndarray, *, now_ms: int) -> int | None:
    """The Unix ms stamped in a grey (h, w) frame (the value nearest ``now_ms``); None if unreadable."""
    height, width = luma.shape[:2]
    geo = StampGeometry.for_frame(width, height)
    c = geo.cell_px
    q = max(1, c // 4)
    ys = slice(geo.y0 + q, geo.y0 + c - q)
    bits = []
    for i in range(CELLS):
        x = geo.x0 + i * c
        cell = luma[ys, x + q : x + c - q]
        if cell.size == 0:
            return None
        bits.append(1 if float(cell.mean()) >= 128.0 else 0)
    if tuple(bits[:2]) != MARKER:
        return None
    value = 0
    for bit in bits[2 : 2 + DATA_BITS]:
        value = (value << 1) | bit
    crc = 0
    for bit in bits[2 + DATA_BITS :]:
        crc = (crc << 1) | bit
    if crc8(value.to_bytes(DATA_BITS // 8, "big")) != crc:
        return None
    base = now_ms - ((now_ms - value) % _WRAP)
    return base if now_ms - base <= _WRAP // 2 else base + _WRAP
