"""The panel's Events page: an event's assigned drones and exemptions, start (live ring gaps, sweep
coverage, posts, timeline) and stand-down, driven by a dispatcher in headless Chromium."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from mission.scenario import STADIUM

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _venue() -> dict:
    lon0, lat0 = STADIUM.center
    pts = []
    for a in range(0, 360, 45):
        north, east = 100 * math.cos(math.radians(a)), 150 * math.sin(math.radians(a))
        pts.append([lon0 + east / (111320 * math.cos(math.radians(lat0))), lat0 + north / 111320])
    pts.append(pts[0])
    return {"type": "Polygon", "coordinates": [pts]}


def test_dispatcher_starts_watches_and_stands_down_an_event(page_for, service, tmp_path) -> None:  # type: ignore[no-untyped-def]
    token = service.login("dispatcher")
    now = datetime.now(UTC)
    body = {
        "name": "cup final",
        "venue": _venue(),
        "doors_open_at": (now + timedelta(seconds=60)).isoformat(),
        "starts_at": (now + timedelta(seconds=60)).isoformat(),
        "ends_at": (now + timedelta(minutes=10)).isoformat(),
        "ring_radii_m": [250],
        "revisit_s": 200,
        "overwatch_points": 1,
        "vehicles": [1, 2, 3],
    }
    status, ev = service.api("POST", "/security-events", body, token=token)
    assert status == 201, ev
    page = page_for("dispatcher")
    page.click("[data-testid=tab-events]")
    page.wait_for_selector("[data-testid=event-assigned] li", timeout=10_000)
    assert page.locator("[data-testid=event-assigned] li").count() == 3
    page.click("[data-testid=event-start]")
    page.wait_for_selector("[data-testid=event-measures]", timeout=15_000)
    page.wait_for_selector("[data-testid=event-timeline] li", timeout=15_000)
    assert "Sweep coverage flown" in page.locator("[data-testid=event-measures]").inner_text()
    page.screenshot(path=str(tmp_path / "events.png"))
    page.click("[data-testid=event-stand-down]")
    page.wait_for_selector("text=ended", timeout=90_000)
    status, after = service.api("GET", f"/security-events/{ev['id']}", token=token)
    assert all(x["revoked_at"] for x in after["exemptions"])
