"""Live video in the panel, in headless Chromium: the <video> really decodes the drone's H.264 over WebRTC
(frame count rising, dimensions set, the burned-in time stamp readable and recent), recording indicator,
snapshot, gimbal point-on-map, the multiview grid of airborne drones, and the observer rule."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

# Reads the frame's burned-in stamp (sim/camera/stamp.py) from a canvas: glass-to-glass delay in the browser.
READ_FRAME = """async (sel) => {
  const v = document.querySelector(sel);
  const q1 = v.getVideoPlaybackQuality().totalVideoFrames;
  await new Promise((r) => setTimeout(r, 1500));
  const q2 = v.getVideoPlaybackQuality().totalVideoFrames;
  const w = v.videoWidth, h = v.videoHeight;
  const c = document.createElement("canvas"); c.width = w; c.height = h;
  const g = c.getContext("2d"); g.drawImage(v, 0, 0);
  const now = Date.now();
  const cell = Math.max(4, Math.floor(w / 54)), x0 = 2 * cell, y0 = h - 2 * cell;
  const q = Math.max(1, Math.floor(cell / 4));
  const px = g.getImageData(0, y0, w, cell).data;
  const bits = [];
  for (let i = 0; i < 50; i++) {
    let sum = 0, n = 0;
    for (let y = q; y < cell - q; y++) for (let x = x0 + i * cell + q; x < x0 + (i + 1) * cell - q; x++) {
      const k = (y * w + x) * 4; sum += 0.299 * px[k] + 0.587 * px[k + 1] + 0.114 * px[k + 2]; n++;
    }
    bits.push(sum / n >= 128 ? 1 : 0);
  }
  let value = 0; for (let i = 2; i < 42; i++) value = value * 2 + bits[i];
  const wrap = 2 ** 40, base = now - ((now - value) % wrap);
  return { w, h, q1, q2, marker: bits[0] === 1 && bits[1] === 0, latency_ms: now - base };
}"""


def _api(service, method, path, role, body=None):  # type: ignore[no-untyped-def]
    return service.api(method, path, body, token=service.login(role))


def test_vehicle_video_decodes_records_snapshots_and_points_the_gimbal(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("dispatcher")
    page.locator("[data-testid=vehicle-card][data-vehicle-id='1']").click()
    page.wait_for_selector("[data-testid=video-dock] [data-testid=video-status]:text('live')", timeout=30_000)
    video = "[data-testid=video-dock] video"
    page.wait_for_function(f'() => document.querySelector("{video}").videoWidth > 0', timeout=20_000)
    frame = page.evaluate(READ_FRAME, video)
    assert (frame["w"], frame["h"]) == (640, 360), frame
    assert frame["q2"] > frame["q1"] + 5, frame  # decoding, not a frozen picture
    assert frame["marker"] and 0 <= frame["latency_ms"] < 2000, frame  # a live picture, timed by its stamp
    # record: the indicator shows, then stops
    page.click("[data-testid=video-record]")
    page.wait_for_selector("[data-testid=video-dock] [data-testid=rec-indicator]:visible", timeout=10_000)
    page.click("[data-testid=video-snapshot]")
    page.wait_for_selector("[data-testid=snapshot-link]", timeout=15_000)
    page.click("[data-testid=video-record-stop]")
    page.wait_for_selector(
        "[data-testid=video-dock] [data-testid=rec-indicator]", state="hidden", timeout=10_000
    )
    status, recs = _api(service, "GET", "/video/recordings?vehicle_id=1", "dispatcher")
    assert status == 200 and recs["items"][0]["state"] == "stopped" and recs["items"][0]["segment_count"] >= 1
    # gimbal point-on-map: pick a point, the command goes out
    page.click("[data-testid=gimbal-point]")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.wait_for_selector("#toast:text('gimbal pointed at')", timeout=10_000)
    status, audit = _api(service, "GET", "/audit?action=cmd.camera", "admin")
    assert status == 200 and audit["total"] >= 1


def test_multiview_grid_shows_every_airborne_drone(page_for, service) -> None:  # type: ignore[no-untyped-def]
    pilot = service.login("pilot")
    for vid in (2, 3):
        assert service.api("POST", f"/vehicles/{vid}/control", token=pilot)[0] == 200
        for command in ({"command": "arm", "params": {}}, {"command": "takeoff", "params": {"alt_m": 30}}):
            status, body = service.api("POST", f"/vehicles/{vid}/commands", command, token=pilot)
            assert status == 200, body
    page = page_for("pilot")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and page.locator(".veh-icon").count() < 3:
        time.sleep(0.2)
    page.click("button[data-tab=video]")
    page.wait_for_selector("[data-testid=video-grid] .video-tile[data-vehicle-id='2']", timeout=30_000)
    page.wait_for_selector("[data-testid=video-grid] .video-tile[data-vehicle-id='3']", timeout=30_000)
    for vid in (2, 3):
        sel = f"[data-testid=video-grid] video[data-vehicle-id='{vid}']"
        page.wait_for_function(f'() => document.querySelector("{sel}").videoWidth > 0', timeout=30_000)
        frame = page.evaluate(READ_FRAME, sel)
        assert frame["q2"] > frame["q1"] + 5 and frame["w"] == 640, frame
    assert (
        page.locator("[data-testid=video-grid] .video-tile[data-vehicle-id='1']").count() == 0
    )  # on the ground


def test_observers_are_told_why_there_is_no_video(page_for) -> None:  # type: ignore[no-untyped-def]
    page = page_for("observer")
    page.locator("[data-testid=vehicle-card][data-vehicle-id='1']").click()
    page.wait_for_selector(
        "[data-testid=video-dock] [data-testid=video-status]:text('observers may not watch')", timeout=20_000
    )
    assert page.locator("[data-testid=video-snapshot]").count() == 0
