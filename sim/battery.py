"""LiPo pack model: energy bookkeeping, a cell voltage curve and sag under load."""

from __future__ import annotations

import bisect

# open-circuit cell voltage against state of charge (0..1), typical LiPo
_SOC_POINTS = (0.0, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80, 0.95, 1.0)
_CELL_V = (3.30, 3.50, 3.60, 3.70, 3.78, 3.86, 3.98, 4.12, 4.20)


def cell_voltage(soc: float) -> float:
    """Open-circuit voltage of one cell at state of charge `soc` (0..1)."""
    soc = min(1.0, max(0.0, soc))
    i = bisect.bisect_right(_SOC_POINTS, soc)
    if i >= len(_SOC_POINTS):
        return _CELL_V[-1]
    s0, s1 = _SOC_POINTS[i - 1], _SOC_POINTS[i]
    v0, v1 = _CELL_V[i - 1], _CELL_V[i]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


class Battery:
    """A pack of `cells` in series holding `capacity_wh`."""

    def __init__(self, *, capacity_wh: float, cells: int, internal_ohm: float) -> None:
        self.capacity_wh = capacity_wh
        self.cells = cells
        self.internal_ohm = internal_ohm
        self.energy_wh = capacity_wh
        self.power_w = 0.0
        self.current_a = 0.0
        self.consumed_mah = 0.0

    @property
    def soc(self) -> float:
        """State of charge 0..1."""
        return max(0.0, self.energy_wh / self.capacity_wh)

    @property
    def cell_v(self) -> float:
        """Loaded cell voltage (open-circuit minus internal resistance drop)."""
        return max(0.0, cell_voltage(self.soc) - self.current_a * self.internal_ohm / self.cells)

    @property
    def voltage_v(self) -> float:
        """Loaded pack voltage."""
        return self.cell_v * self.cells

    def drain(self, *, power_w: float, dt_s: float) -> None:
        """Draw `power_w` for `dt_s` simulated seconds."""
        self.power_w = power_w
        ocv = cell_voltage(self.soc) * self.cells
        self.current_a = power_w / ocv if ocv > 0 else 0.0
        self.energy_wh = max(0.0, self.energy_wh - power_w * dt_s / 3600.0)
        self.consumed_mah += self.current_a * dt_s / 3.6

    def sag(self, percent: float) -> None:
        """Lose `percent` points of remaining charge at once (a failing cell, a cold pack)."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"battery sag percent must be within 0..100, got {percent}")
        self.energy_wh = max(0.0, self.energy_wh - self.capacity_wh * percent / 100.0)
