"""Regenerate docs/screenshots/{en,zh-CN}/*.png: every view of the panel in both languages, drones in flight.

Run: ``.venv/bin/python -m tests.browser.screenshots`` (starts its own service with 3 sim drones). Chinese
text needs a CJK font (Debian: ``fonts-wqy-microhei`` or ``fonts-noto-cjk``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Service, running_service, signed_in_page

SHOTS = ROOT / "docs" / "screenshots"
LOCALES = ("en", "zh-CN")


def _square(lon: float, lat: float, *, dlon: float, dlat: float) -> dict[str, object]:
    ring = [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _until_ok(call, timeout_s: float = 60.0) -> object:  # type: ignore[no-untyped-def]
    """Retry a call the vehicles are not ready for yet (no charge reported) until it succeeds."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = call()
        if status < 300 or time.monotonic() > deadline:
            assert status < 300, body
            return body
        time.sleep(1)


def _in_air(svc: Service, token: str, vehicle_id: int) -> bool:
    status, body = svc.api("GET", f"/vehicles/{vehicle_id}", token=token)
    return status == 200 and isinstance(body, dict) and bool((body.get("health") or {}).get("in_air"))


def _one_sortie(svc: Service, token: str, *, vehicle_id: int, timeout_s: float = 120.0) -> None:
    """Take off, climb and land again: a finished sortie, so the report shows the charge it consumed."""
    svc.api("POST", f"/vehicles/{vehicle_id}/control", token=token)
    takeoff = {"command": "takeoff", "params": {"alt_m": 30}}
    _until_ok(lambda: svc.api("POST", f"/vehicles/{vehicle_id}/commands", takeoff, token=token))
    deadline = time.monotonic() + timeout_s
    while not _in_air(svc, token, vehicle_id):
        assert time.monotonic() < deadline, "no take-off"
        time.sleep(0.5)
    time.sleep(20)  # a short hover: a few percent of charge
    _until_ok(lambda: svc.api("POST", f"/vehicles/{vehicle_id}/commands", {"command": "land"}, token=token))
    while _in_air(svc, token, vehicle_id):
        assert time.monotonic() < deadline, "no landing"
        time.sleep(0.5)
    svc.api("DELETE", f"/vehicles/{vehicle_id}/control", token=token)


def _fly(svc: Service) -> None:
    """Drone 3 on a perimeter mission, drone 1 (speaker and spotlight) taken off for the pilot; a patrol; an
    incident; the speaker's library in both languages."""
    pilot = svc.login("pilot")
    status, vehicle = svc.api("GET", "/vehicles/3", token=pilot)
    assert status == 200 and isinstance(vehicle, dict), vehicle
    lon3, lat3 = vehicle["home_lon"], vehicle["home_lat"]
    plan = {"kind": "perimeter", "geometry": _square(lon3 - 0.010, lat3 - 0.008, dlon=0.008, dlat=0.006)}
    status, mission = svc.api(
        "POST", "/missions", {"name": "Civic Center perimeter", "vehicle_id": 3, "plan": plan}, token=pilot
    )
    assert status == 201 and isinstance(mission, dict), mission
    for action in ("validate", "launch"):
        url = f"/missions/{mission['id']}/{action}"
        _until_ok(lambda url=url: svc.api("POST", url, token=pilot))
    admin = svc.login("admin")
    _one_sortie(svc, admin, vehicle_id=2)
    svc.api("POST", "/vehicles/1/control", token=admin)
    takeoff = {"command": "takeoff", "params": {"alt_m": 40}}
    _until_ok(lambda: svc.api("POST", "/vehicles/1/commands", takeoff, token=admin))
    library = [
        ("请立即离开", "tts", "这里是公安机关\uff0c请立即离开该区域。", None, "zh-CN"),
        ("Leave the area", "tts", "Police. Leave the area now.", None, "en"),
        ("禁止通行", "recorded", "", "no_entry_zh.wav", "zh-CN"),
    ]
    for slot, (name, kind, text, audio, language) in enumerate(library, start=1):
        msg = {
            "name": name,
            "slot": slot,
            "kind": kind,
            "text": text,
            "audio_ref": audio,
            "language": language,
        }
        svc.api("POST", "/payload/messages", msg, token=admin)
    svc.api("POST", "/payload/vehicles/1/actions", {"action": "speaker.play", "message_id": 1}, token=admin)
    svc.api("POST", "/payload/vehicles/1/actions", {"action": "spotlight.strobe"}, token=admin)
    dispatcher = svc.login("dispatcher")
    patrol = {
        "name": "Night patrol - Market",
        "plan": {"kind": "perimeter", "geometry": _square(109.925, 39.806, dlon=0.02, dlat=0.012)},
        "cron": "0 */2 * * *",
        "timezone": "Asia/Shanghai",
        "window_start": "20:00",
        "window_end": "06:00",
    }
    svc.api("POST", "/patrols", patrol, token=dispatcher)
    incident = {"lat": 39.8455, "lon": 109.945, "kind": "suspicious", "priority": 2}
    status, body = svc.api("POST", "/incidents", incident, token=dispatcher)
    assert status == 201, body


def _zoom(page: Page, steps: int) -> None:
    page.wait_for_timeout(600)  # let the pan to the selected vehicle finish first
    for _ in range(steps):
        page.click(".leaflet-control-zoom-in")
        page.wait_for_timeout(300)


def _shoot(browser, svc: Service, locale: str) -> None:  # type: ignore[no-untyped-def]
    out = SHOTS / locale
    out.mkdir(parents=True, exist_ok=True)
    svc.api("PUT", "/me/locale", {"locale": locale}, token=svc.login("admin"))
    login = browser.new_page(viewport={"width": 1366, "height": 768}, locale=locale)
    login.goto(svc.url + "/")
    login.wait_for_selector("#login-form")
    login.select_option("#login-locale", locale)
    login.wait_for_timeout(300)
    login.screenshot(path=str(out / "login.png"))
    login.close()
    page = signed_in_page(browser, svc, "admin")
    page.wait_for_selector(f"html[lang={locale}]")
    page.on("dialog", lambda dialog: dialog.dismiss())

    # Pilot: drone 1 under control, the map menu open next to it, the payload panel and its timeline.
    page.locator("[data-testid=vehicle-card][data-vehicle-id='1']").click()
    _zoom(page, 2)
    page.wait_for_selector("[data-testid=payload-panel]")
    page.wait_for_selector("[data-testid=control-release]")  # the panel knows the admin holds drone 1
    box = page.locator("#map").bounding_box()
    # Left of the drone: the live video dock covers the map's top right.
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3, button="right")
    page.wait_for_selector("[data-testid=map-menu] [data-act=goto]")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "pilot.png"))
    page.keyboard.press("Escape")
    page.locator("[data-testid=payload-timeline]").scroll_into_view_if_needed()  # sound and light
    page.click("#shortcuts-button")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "shortcuts.png"))
    page.click("#shortcuts-button")

    page.click(".tab[data-tab=pilot]")
    page.select_option("[data-testid=mission-vehicle]", "2")
    page.click("[data-kind=sweep]")
    page.click("[data-testid=draw-plan]")
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    for dx, dy in [(0, 0), (130, -20), (150, 70), (30, 100)]:
        page.mouse.click(x0 + dx, y0 + dy)
        page.wait_for_timeout(150)
    page.click("#draw-finish")
    page.wait_for_selector("[data-testid=plan-metrics]")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "missions.png"))

    page.click(".tab[data-tab=dispatch]")
    page.locator("[data-testid=incident-card]").first.click()
    page.wait_for_selector("[data-testid=candidates]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "dispatch.png"))

    page.click(".tab[data-tab=airspace]")
    page.click("[data-testid=patrol-new]")
    page.fill("[data-testid=patrol-name]", "Riverside evening")
    page.select_option("[data-testid=patrol-zone]", index=1)
    page.fill("[data-testid=patrol-cron]", "30 20 * * 1-5")
    page.wait_for_selector("[data-testid=patrol-preview-runs] li")
    page.wait_for_timeout(600)
    page.screenshot(path=str(out / "patrols.png"))
    page.locator("[data-testid=patrol-form] button.ghost").click()
    page.locator("[data-testid=zone-card]:has-text('Hospital')").first.click()
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "zones.png"))

    page.click(".tab[data-tab=reports]")
    page.wait_for_selector("[data-testid=chart-drones]")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "reports.png"))
    # The drones section: flight hours, sorties, charge used and battery cycles.
    page.locator("[data-testid=chart-drones]").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "reports-drones.png"))

    page.click(".tab[data-tab=feed]")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "feed.png"))
    page.click(".tab[data-tab=audit]")
    page.click("[data-testid=audit-verify]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "audit.png"))
    page.click("[data-testid=tab-users]")
    page.wait_for_selector("[data-testid=library-row]")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "users.png"))
    page.context.close()


def main() -> None:
    """Start the service, fly, and shoot each view at 1366x768 in each language."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_service(Path(tmp), sim_speed=3.0) as svc,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _fly(svc)
        time.sleep(10)
        for locale in LOCALES:
            _shoot(browser, svc, locale)
        browser.close()
    print(f"screenshots in {SHOTS}")


if __name__ == "__main__":
    main()
