"""Large-event benchmark: the demo stadium event flown in the simulator by N drones through the service.

    python -m bench.event --drones 6 --json bench/results/event.json

The service as production builds it (settings, lifespan, the one executor), N simulated drones on the
Stadium workstation's dock, the event planned around the stadium (a ring, overwatch posts, the pre-doors
sweep), started, flown until it ends (drones relieved on battery as they drain), stood down. The figures
come from the runner's live measures, i.e. from telemetry:

- ``sweep_done_before_doors``; ``sweep_coverage_flown`` (share of the venue within half a swath of a flown
  sweep track); ``ring_gap_s_max`` (worst revisit gap flown over any ring checkpoint, simulated s) against
  ``ring_target_s``; ``posts_manned_share`` (time-weighted, from the posts' first manning); ``reliefs``;
  ``incursions`` (a non-exempt vehicle inside the event zone: must be 0).

Goals: sweep done, coverage >= 0.98, worst gap <= target, posts manned >= 0.99. Peak RSS is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._proc import ProcessMeter
from mission.scenario import STADIUM
from tests.support.geo import EARTH_M, HOME, offset
from tests.support.service import running_service
from tests.support.wait import until

KEYS = (
    "sweep_done_before_doors",
    "sweep_coverage_flown",
    "ring_gap_s_max",
    "ring_target_s",
    "posts_manned_share",
    "reliefs",
    "incursions",
)


def _north_east(lat: float, lon: float) -> tuple[float, float]:
    north = math.radians(lat - HOME[0]) * EARTH_M
    east = math.radians(lon - HOME[1]) * EARTH_M * math.cos(math.radians(HOME[0]))
    return north, east


def venue(centre: tuple[float, float]) -> dict[str, Any]:
    """The stadium bowl: a 320 x 220 m octagon around the stadium's centre."""
    n0, e0 = centre
    pts = [
        offset(n0 + 110 * math.cos(math.radians(a)), e0 + 160 * math.sin(math.radians(a)))
        for a in range(0, 360, 45)
    ]
    pts.append(pts[0])
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in pts]]}


async def fly(*, drones: int, speed: float, window_s: float, lead_s: float) -> dict[str, Any]:
    centre = _north_east(STADIUM.center[1], STADIUM.center[0])
    dock = (centre[0] - 700.0, centre[1] - 300.0)  # the stadium workstation, south-west of the bowl
    docks = [(dock[0] + 25.0 * (i // 3), dock[1] + 25.0 * (i % 3)) for i in range(drones)]
    with tempfile.TemporaryDirectory() as tmp:
        async with running_service(
            Path(tmp),
            docks=docks,
            speed=speed,
            dispatch_auto_launch=False,
            vehicle={"endurance_s": 1500.0, "battery_wh": 90.0},
        ) as svc:
            now = datetime.now(UTC)
            body = {
                "name": "stadium match",
                "venue": venue(centre),
                "doors_open_at": (now + timedelta(seconds=lead_s)).isoformat(),
                "starts_at": (now + timedelta(seconds=lead_s)).isoformat(),
                "ends_at": (now + timedelta(seconds=lead_s + window_s)).isoformat(),
                "ring_radii_m": [300],
                "revisit_s": 120,
                "overwatch_points": 2,
                "swath_m": 40,
                "speed_m_s": 10,
                "vehicles": list(range(1, drones + 1)),
            }
            r = await svc.post("dan", "/api/v1/security-events", body)
            assert r.status_code == 201, r.text
            eid = r.json()["id"]
            r = await svc.post("dan", f"/api/v1/security-events/{eid}/start")
            assert r.status_code == 200, r.text

            async def ended() -> bool:
                ev = (await svc.get("olga", f"/api/v1/security-events/{eid}")).json()
                return ev["state"] == "ended"

            await until(ended, lead_s + window_s + 240, "the event ended", every_s=1.0)
            figures = svc.runtime.events.measures(eid)
            flights = (await svc.get("root", "/api/v1/flights", limit=200)).json()["items"]
            figures["flights"] = [
                {k: f[k] for k in ("id", "vehicle_id", "state", "leg_index", "reason", "outcome")}
                for f in flights
            ]
            return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drones", type=int, default=6)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--window-s", type=float, default=100.0, help="wall seconds from doors to the end")
    parser.add_argument("--lead-s", type=float, default=40.0, help="wall seconds from start to doors")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--timeline", action="store_true", help="print the runner's timeline")
    args = parser.parse_args(argv)
    meter = ProcessMeter().start()
    figures = asyncio.run(
        fly(drones=args.drones, speed=args.speed, window_s=args.window_s, lead_s=args.lead_s)
    )
    usage = meter.stop()
    if args.timeline:
        for entry in figures.get("timeline", []):
            print(json.dumps(entry))
        print(json.dumps(figures.get("slots")))
        for f in figures.get("flights", []):
            print(json.dumps(f))
    result = {k: figures.get(k) for k in KEYS}
    for key in KEYS:
        print(f"{key:<24} {result[key]}")
    print(f"{'holes_filled':<24} {figures.get('holes_filled')}")
    print(f"{'wall_s':<24} {usage.wall_s:.0f}")
    print(f"{'rss_peak_mb':<24} {usage.rss_peak_mb:.0f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
