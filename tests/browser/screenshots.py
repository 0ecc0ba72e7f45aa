"""Regenerate docs/screenshots/*.png: the panel's main views with drones in flight.

Run: ``.venv/bin/python -m tests.browser.screenshots`` (starts its own service with 3 sim drones).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Service, running_service, signed_in_page

SHOTS = ROOT / "docs" / "screenshots"


def _square(lon: float, lat: float, *, dlon: float, dlat: float) -> dict[str, object]:
    ring = [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _fly(svc: Service) -> None:
    """Drones 2 and 3 on sweeps near the dock (drone 1 stays docked for the dispatch view); one patrol."""
    pilot = svc.login("pilot")
    homes = {}
    for vehicle_id in (2, 3):
        status, vehicle = svc.api("GET", f"/vehicles/{vehicle_id}", token=pilot)
        assert status == 200 and isinstance(vehicle, dict), vehicle
        homes[vehicle_id] = (vehicle["home_lon"], vehicle["home_lat"])
    (lon2, lat2), (lon3, lat3) = homes[2], homes[3]
    plans = [
        (
            "Old Town sweep",
            2,
            {"kind": "sweep", "geometry": _square(lon2 + 0.002, lat2 + 0.002, dlon=0.006, dlat=0.004)},
        ),
        (
            "Civic Center perimeter",
            3,
            {"kind": "perimeter", "geometry": _square(lon3 - 0.010, lat3 - 0.008, dlon=0.008, dlat=0.006)},
        ),
    ]
    for name, vehicle_id, plan in plans:
        status, mission = svc.api(
            "POST", "/missions", {"name": name, "vehicle_id": vehicle_id, "plan": plan}, token=pilot
        )
        assert status == 201, mission
        assert isinstance(mission, dict)
        for action in ("validate", "launch"):
            status, body = svc.api("POST", f"/missions/{mission['id']}/{action}", token=pilot)
            assert status == 200, body
    dispatcher = svc.login("dispatcher")
    patrol = {
        "name": "Night patrol - Market",
        "plan": {"kind": "perimeter", "geometry": _square(109.925, 39.806, dlon=0.02, dlat=0.012)},
        "cron": "0 */2 * * *",
        "window_start": "20:00",
        "window_end": "06:00",
    }
    svc.api("POST", "/patrols", patrol, token=dispatcher)


def _zoom(page: Page, steps: int) -> None:
    page.wait_for_timeout(600)  # let the pan to the selected vehicle finish first
    for _ in range(steps):
        page.click(".leaflet-control-zoom-in")
        page.wait_for_timeout(300)


def main() -> None:
    """Start the service, fly, and shoot each view at 1366x768 (and the fleet at tablet width)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_service(Path(tmp), sim_speed=3.0) as svc,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        login = browser.new_page(viewport={"width": 1366, "height": 768})
        login.goto(svc.url + "/")
        login.wait_for_selector("#login-form")
        login.screenshot(path=str(SHOTS / "login.png"))
        _fly(svc)
        time.sleep(12)
        page = signed_in_page(browser, svc, "admin")
        time.sleep(4)  # trails grow
        page.locator("[data-testid=vehicle-card][data-vehicle-id='2']").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "fleet.png"))

        page.locator("[data-testid=vehicle-card][data-vehicle-id='1']").click()
        _zoom(page, 2)
        page.click(".tab[data-tab=pilot]")
        page.select_option("[data-testid=mission-vehicle]", "1")
        page.fill("[data-testid=mission-name]", "Riverside car park sweep")
        box = page.locator("#map").bounding_box()
        page.click("[data-testid=draw-plan]")
        x0, y0 = box["x"] + box["width"] * 0.56, box["y"] + box["height"] * 0.28
        for dx, dy in [(0, 0), (130, -20), (150, 70), (30, 100)]:
            page.mouse.click(x0 + dx, y0 + dy)
            page.wait_for_timeout(150)
        page.click("#draw-finish")
        page.wait_for_selector("[data-testid=plan-metrics]")
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "missions.png"))

        page.click(".tab[data-tab=dispatch]")
        page.fill("[data-testid=incident-lat]", "39.8455")
        page.fill("[data-testid=incident-lon]", "109.9450")
        page.select_option("[data-testid=incident-kind]", "suspicious")
        page.fill("input[placeholder=notes]", "Caller reports two people on a warehouse roof")
        page.click("[data-testid=incident-create]")
        page.wait_for_selector("[data-testid=candidates]")
        page.click(".leaflet-control-zoom-out")
        page.wait_for_timeout(300)
        page.click(".leaflet-control-zoom-out")
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "dispatch.png"))

        page.click(".tab[data-tab=airspace]")
        page.locator("[data-testid=zone-card]:has-text('Stadium')").first.click()
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "airspace.png"))

        page.click(".tab[data-tab=feed]")
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / "feed.png"))
        page.click(".tab[data-tab=audit]")
        page.click("[data-testid=audit-verify]")
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "audit.png"))

        tablet = signed_in_page(browser, svc, "pilot", width=1024, height=768)
        tablet.locator("[data-testid=vehicle-card][data-vehicle-id='3']").click()
        _zoom(tablet, 1)
        tablet.wait_for_timeout(1500)
        tablet.screenshot(path=str(SHOTS / "fleet-tablet.png"))
        browser.close()
    print(f"screenshots in {SHOTS}")


if __name__ == "__main__":
    main()
