"""The synthetic camera picture: a top-down view of the district around where the gimbal looks.

The view is centred on the ground point the optical axis hits (straight below at pitch -90, the region
of interest when one is set), turned so that the camera's bearing is up, and scaled from the slant range
and the horizontal field of view. It shows the street grid, roads, zones, markers, the region of interest
(the incident when dispatch points the gimbal there) and the other drones, with a burned-in overlay
(vehicle, UTC time, position, gimbal) and the machine-readable time stamp (``sim.camera.stamp``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sim.camera import stamp
from sim.camera.world import CameraWorld
from sim.geo import EARTH_RADIUS_M

_M_PER_DEG = math.radians(1.0) * EARTH_RADIUS_M
_GROUND = (44, 47, 52)  # asphalt between the blocks
_BLOCKS = ((70, 84, 66), (92, 88, 78), (78, 80, 90), (96, 78, 66), (66, 76, 80), (84, 94, 74))
_ZONE_COLORS = {"patrol": (63, 167, 255), "no_fly": (255, 92, 92), "event": (196, 140, 255)}
_MAX_BLOCKS = 600
_ToPx = Callable[[Any], list[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class Peer:
    """Another drone of the fleet, as the camera may see it."""

    sysid: int
    lat: float
    lon: float
    alt_rel_m: float


@dataclass(frozen=True, slots=True)
class CameraPose:
    """Where the vehicle is and where its gimbal points."""

    sysid: int
    lat: float
    lon: float
    alt_rel_m: float
    heading_deg: float
    gimbal_pitch_deg: float = -90.0  # -90 straight down, 0 the horizon
    gimbal_yaw_deg: float = 0.0  # relative to the vehicle's heading
    roi: tuple[float, float] | None = None  # (lat, lon) the gimbal tracks
    recording: bool = False  # recording on the vehicle's own storage


def _local(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    return (lat - lat0) * _M_PER_DEG, (lon - lon0) * _M_PER_DEG * math.cos(math.radians(lat0))


class Renderer:
    """Draws frames of one camera; reuse it (fonts and the frame buffer are kept)."""

    def __init__(self, *, width: int, height: int, hfov_deg: float, world: CameraWorld | None) -> None:
        self.width = width
        self.height = height
        self.hfov_deg = hfov_deg
        self.world = world or CameraWorld()
        self._font = ImageFont.load_default(size=max(10, height // 28))
        self._small = ImageFont.load_default(size=max(9, height // 34))

    def view(self, pose: CameraPose) -> tuple[float, float, float, float]:
        """(look-at lat, look-at lon, bearing deg, metres per pixel) for ``pose``."""
        h = max(1.5, pose.alt_rel_m)
        if pose.roi is not None:
            north, east = _local(pose.roi[0], pose.roi[1], pose.lat, pose.lon)
            dist = math.hypot(north, east)
            bearing = math.degrees(math.atan2(east, north)) if dist > 1.0 else pose.heading_deg
            look = pose.roi
        else:
            bearing = pose.heading_deg + pose.gimbal_yaw_deg
            depression = min(90.0, max(10.0, -pose.gimbal_pitch_deg))
            dist = h / math.tan(math.radians(depression)) if depression < 90.0 else 0.0
            b = math.radians(bearing)
            look = (
                pose.lat + dist * math.cos(b) / _M_PER_DEG,
                pose.lon + dist * math.sin(b) / (_M_PER_DEG * math.cos(math.radians(pose.lat))),
            )
        slant = math.hypot(h, dist)
        mpp = 2.0 * slant * math.tan(math.radians(self.hfov_deg) / 2.0) / self.width
        return look[0], look[1], bearing % 360.0, mpp

    def render(self, pose: CameraPose, *, peers: Sequence[Peer] = (), utc_ms: int) -> np.ndarray:
        """One RGB frame (height, width, 3) with the overlay and the time stamp for ``utc_ms``."""
        lat0, lon0, bearing, mpp = self.view(pose)
        w, h = self.width, self.height
        cos_b, sin_b = math.cos(math.radians(bearing)), math.sin(math.radians(bearing))
        cos0 = math.cos(math.radians(lat0))

        def to_px(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
            arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
            north = (arr[:, 0] - lat0) * _M_PER_DEG
            east = (arr[:, 1] - lon0) * _M_PER_DEG * cos0
            fwd = north * cos_b + east * sin_b
            right = -north * sin_b + east * cos_b
            xs = w / 2 + right / mpp
            ys = h / 2 - fwd / mpp
            return list(zip(xs.tolist(), ys.tolist(), strict=True))

        img = Image.new("RGB", (w, h), _GROUND)
        draw = ImageDraw.Draw(img)
        self._street_grid(draw, lat0, lon0, mpp, to_px)
        for road in self.world.roads:
            draw.line(to_px(road.points), fill=(30, 32, 36), width=max(2, int(road.width_m / mpp)))
        for zone in self.world.zones:
            color = _ZONE_COLORS.get(zone.kind, (220, 220, 220))
            pts = to_px(zone.ring)
            draw.line([*pts, pts[0]], fill=color, width=3)
            cx, cy = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
            if 0 <= cx < w and 0 <= cy < h:
                draw.text((cx, cy), zone.name, fill=color, font=self._small, anchor="mm")
        for marker in self.world.markers:
            ((x, y),) = to_px([(marker.lat, marker.lon)])
            if -50 <= x < w + 50 and -50 <= y < h + 50:
                draw.rectangle((x - 6, y - 6, x + 6, y + 6), outline=(255, 214, 79), width=2)
                draw.text((x + 9, y), marker.name, fill=(255, 214, 79), font=self._small, anchor="lm")
        if pose.roi is not None:
            ((x, y),) = to_px([pose.roi])
            r = max(10.0, 6.0 / mpp)
            draw.ellipse((x - r, y - r, x + r, y + r), outline=(255, 60, 60), width=3)
            draw.line((x - r * 1.6, y, x + r * 1.6, y), fill=(255, 60, 60), width=2)
            draw.line((x, y - r * 1.6, x, y + r * 1.6), fill=(255, 60, 60), width=2)
            draw.text((x + r + 4, y - r), "ROI / INCIDENT", fill=(255, 90, 90), font=self._small)
        for peer in peers:
            ((x, y),) = to_px([(peer.lat, peer.lon)])
            if -40 <= x < w + 40 and -40 <= y < h + 40:
                s = max(7.0, 0.6 / mpp)
                draw.line((x - s, y - s, x + s, y + s), fill=(240, 240, 240), width=2)
                draw.line((x - s, y + s, x + s, y - s), fill=(240, 240, 240), width=2)
                for dx, dy in ((-s, -s), (s, -s), (-s, s), (s, s)):
                    draw.ellipse(
                        (x + dx - s / 3, y + dy - s / 3, x + dx + s / 3, y + dy + s / 3),
                        outline=(79, 195, 247),
                    )
                draw.text(
                    (x + s + 4, y),
                    f"UAV {peer.sysid} {peer.alt_rel_m:.0f} m",
                    fill=(79, 195, 247),
                    font=self._small,
                    anchor="lm",
                )
        cx, cy = w / 2, h / 2
        draw.line((cx - 12, cy, cx - 4, cy), fill=(255, 255, 255), width=1)
        draw.line((cx + 4, cy, cx + 12, cy), fill=(255, 255, 255), width=1)
        draw.line((cx, cy - 12, cx, cy - 4), fill=(255, 255, 255), width=1)
        draw.line((cx, cy + 4, cx, cy + 12), fill=(255, 255, 255), width=1)
        self._overlay(draw, pose, utc_ms, bearing)
        frame = np.asarray(img).copy()
        stamp.draw(frame, utc_ms)
        return frame

    def _street_grid(
        self, draw: ImageDraw.ImageDraw, lat0: float, lon0: float, mpp: float, to_px: _ToPx
    ) -> None:
        world = self.world
        spacing = world.street_spacing_m
        g_lat, g_lon = world.grid_origin
        cos_g = math.cos(math.radians(g_lat))
        n0, e0 = (lat0 - g_lat) * _M_PER_DEG, (lon0 - g_lon) * _M_PER_DEG * cos_g
        reach = mpp * math.hypot(self.width, self.height) / 2.0 + spacing
        i_lo, i_hi = math.floor((n0 - reach) / spacing), math.floor((n0 + reach) / spacing)
        j_lo, j_hi = math.floor((e0 - reach) / spacing), math.floor((e0 + reach) / spacing)
        if (i_hi - i_lo + 1) * (j_hi - j_lo + 1) > _MAX_BLOCKS:
            return  # too high up to tell streets apart
        polys: list[tuple[tuple[int, ...], list[tuple[float, float]]]] = []
        for i in range(i_lo, i_hi + 1):
            for j in range(j_lo, j_hi + 1):
                half_n = 14.0 if i % world.avenue_every == 0 else 6.0
                half_s = 14.0 if (i + 1) % world.avenue_every == 0 else 6.0
                half_w = 14.0 if j % world.avenue_every == 0 else 6.0
                half_e = 14.0 if (j + 1) % world.avenue_every == 0 else 6.0
                s_m, n_m = i * spacing + half_n, (i + 1) * spacing - half_s
                w_m, e_m = j * spacing + half_w, (j + 1) * spacing - half_e
                color = _BLOCKS[(i * 7 + j * 13) % len(_BLOCKS)]
                polys.append((color, [(s_m, w_m), (s_m, e_m), (n_m, e_m), (n_m, w_m)]))
                # a few buildings per block make motion and rotation easy to see
                step_n, step_e = (n_m - s_m) / 3.0, (e_m - w_m) / 3.0
                for a in range(3):
                    for b in range(3):
                        if (i + j + a * 3 + b) % 4 == 0:
                            continue  # an open lot
                        bs, bw = s_m + a * step_n + 4.0, w_m + b * step_e + 4.0
                        bn, be = bs + step_n - 8.0, bw + step_e - 8.0
                        shade = 18 + 14 * ((a + 2 * b + i) % 3)
                        roof: tuple[int, ...] = tuple(min(255, c + shade) for c in color)
                        polys.append((roof, [(bs, bw), (bs, be), (bn, be), (bn, bw)]))
        if not polys:
            return
        metres = np.asarray([p for _, corners in polys for p in corners], dtype=np.float64)
        latlon = np.column_stack(
            (g_lat + metres[:, 0] / _M_PER_DEG, g_lon + metres[:, 1] / (_M_PER_DEG * cos_g))
        )
        pixels = to_px(latlon)
        for k, (fill, _) in enumerate(polys):
            draw.polygon(pixels[4 * k : 4 * k + 4], fill=fill)

    def _overlay(self, draw: ImageDraw.ImageDraw, pose: CameraPose, utc_ms: int, bearing: float) -> None:
        when = datetime.fromtimestamp(utc_ms / 1000.0, tz=UTC)
        gimbal = (
            f"ROI {pose.roi[0]:.5f}, {pose.roi[1]:.5f}"
            if pose.roi is not None
            else f"GIMBAL P{pose.gimbal_pitch_deg:+.0f} Y{pose.gimbal_yaw_deg:+.0f}"
        )
        lines = [
            f"UAV {pose.sysid}  SKYWARDEN SIM CAM",
            when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d} UTC",
            f"{abs(pose.lat):.5f}{'NS'[pose.lat < 0]} {abs(pose.lon):.5f}{'EW'[pose.lon < 0]}"
            f"  ALT {pose.alt_rel_m:.0f} m  HDG {pose.heading_deg:03.0f}",
            f"{gimbal}  VIEW {bearing:03.0f}",
        ]
        line_h = int(getattr(self._font, "size", 12)) + 3
        draw.rectangle((0, 0, int(self.width * 0.62), 6 + line_h * len(lines)), fill=(0, 0, 0))
        for k, text in enumerate(lines):
            draw.text((6, 4 + k * line_h), text, fill=(255, 255, 255), font=self._font)
        if pose.recording:
            x = self.width - 70
            draw.ellipse((x, 8, x + 12, 20), fill=(255, 40, 40))
            draw.text((x + 16, 6), "REC", fill=(255, 255, 255), font=self._font)
