"""The web panel in a real headless Chromium against the running service with simulated drones."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

SWEEP_VEHICLE = "drone-2"


def _marker_position(page, vehicle_id: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    el = page.locator(f".veh-icon[data-vehicle-id='{vehicle_id}']")
    return float(el.get_attribute("data-lat")), float(el.get_attribute("data-lon"))


def test_login_shows_the_fleet_and_the_offline_map(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("observer")
    assert page.locator("[data-testid=vehicle-card]").count() == 3
    assert page.locator("[data-testid=role]").inner_text() == "observer"
    # No tiles on this network: zones, scale bar and vehicles on the neutral background.
    assert "Offline map" in page.locator("[data-testid=tile-state]").inner_text()
    assert page.locator(".leaflet-control-scale-line").is_visible()
    assert page.locator(".zone-label").count() >= 7
    page.locator("[data-testid=vehicle-card]").first.click()
    detail = page.locator("[data-testid=vehicle-detail]")
    assert "Battery" in detail.inner_text()


def test_unreachable_tile_server_falls_back_to_the_offline_view(browser, service) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    # As if tile_url pointed at a server this closed network cannot reach (nothing listens on port 9).
    config = {"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "version": "test"}
    page.route("**/panel/config.json", lambda route: route.fulfill(json=config))
    page.goto(service.url + "/")
    page.fill("#login-user", "observer")
    page.fill("#login-pass", service.passwords["observer"])
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=tile-state]:text('tile server unreachable')", timeout=15_000)
    assert page.locator(".map-wrap.no-tiles").count() == 1
    assert page.locator(".leaflet-tile-loaded").count() == 0
    assert page.locator(".zone-label").count() >= 7
    context.close()


def test_wrong_password_is_refused(browser, service) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(service.url + "/")
    page.fill("#login-user", "pilot")
    page.fill("#login-pass", "not-the-password")
    page.click("#login-submit")
    error = page.locator("#login-error")
    error.wait_for(state="visible")
    expect(error).to_contain_text("Wrong username or password")  # says what it showed instead, if anything
    assert page.locator("#app").is_hidden()
    context.close()


def _settled_inside_map(page, card, vehicle_id: int, *, offsets) -> tuple[float, float]:  # type: ignore
    """The vehicle icon's centre once the map has stopped moving with every offset click inside the map.

    Under load the centring pan can still be running (or be cut short by the zoom), leaving the drone near an
    edge where a click would land on the header instead of the map: re-centre until it is well inside.
    """
    icon = page.locator(f".veh-icon[data-vehicle-id='{vehicle_id}']")
    deadline = time.monotonic() + 15
    last = None
    while time.monotonic() < deadline:
        box, area = icon.bounding_box(), page.locator("#map").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        inside = all(
            area["x"] + 20 < x + dx < area["x"] + area["width"] - 20
            and area["y"] + 20 < y + dy < area["y"] + area["height"] - 20
            for dx, dy in offsets
        )
        if inside and last is not None and abs(last[0] - x) < 1 and abs(last[1] - y) < 1:
            return x, y
        if not inside:
            card.click()  # centre on it again
        last = (x, y)
        page.wait_for_timeout(400)
    raise AssertionError("the map never settled with the drone away from its edges")


def test_pilot_draws_a_sweep_launches_it_and_watches_it_complete(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("pilot")
    card = page.locator(f"[data-testid=vehicle-card]:has-text('{SWEEP_VEHICLE}')")
    vehicle_id = int(card.get_attribute("data-vehicle-id"))
    card.click()  # centres the map on it
    page.wait_for_timeout(600)  # the pan animation; zooming meanwhile would stop it
    for _ in range(3):
        page.click(".leaflet-control-zoom-in")
        page.wait_for_timeout(300)
    offsets = [(40, -40), (140, -40), (140, -120), (40, -120)]
    _settled_inside_map(page, card, vehicle_id, offsets=offsets)  # re-centres while the card is on screen
    page.click(".tab[data-tab=pilot]")
    page.select_option("[data-testid=mission-vehicle]", str(vehicle_id))
    page.fill("[data-testid=mission-name]", "browser sweep")
    box = page.locator(f".veh-icon[data-vehicle-id='{vehicle_id}']").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.click("[data-testid=draw-plan]")
    assert page.locator("#draw-bar").is_visible()
    # About 190 x 150 m north-east of the dock (zoom 16: ~1.9 m per pixel at this latitude).
    for n, (dx, dy) in enumerate(offsets, start=1):
        # Under load a click can land while the map is still busy: click again until the vertex is there.
        for _ in range(4):
            page.mouse.click(x + dx, y + dy)
            try:
                page.wait_for_function(
                    f"() => document.querySelectorAll('.vertex-icon').length >= {n}", timeout=2_000
                )
                break
            except PlaywrightTimeoutError:
                continue
        page.wait_for_timeout(150)  # apart from the next click: never a double-click
    page.wait_for_selector("#draw-finish:enabled", timeout=5_000)
    page.click("#draw-finish")
    page.wait_for_selector("[data-testid=plan-metrics]")
    assert page.locator("[data-testid=plan-ok]").is_visible(), page.locator(
        "[data-testid=plan-preview]"
    ).inner_text()
    assert "flight time" in page.locator("[data-testid=plan-metrics]").inner_text()

    before = _marker_position(page, vehicle_id)
    page.click("[data-testid=launch-plan]")
    page.wait_for_selector("#toast:text('launched')", timeout=20_000)

    # The drone moves on the map...
    deadline = time.monotonic() + 30
    while _marker_position(page, vehicle_id) == before and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert _marker_position(page, vehicle_id) != before, "the vehicle never moved on the map"
    detail = page.locator("[data-testid=vehicle-mission]")
    assert "browser sweep" in detail.inner_text()

    # Pause holds it in place; resume carries on.
    page.wait_for_selector("[data-testid=vehicle-mission][data-state=active]", timeout=15_000)
    page.click("[data-testid=vehicle-mission] [data-action=pause]")
    page.wait_for_selector("[data-testid=vehicle-mission][data-state=paused]", timeout=15_000)
    page.click("[data-testid=vehicle-mission] [data-action=resume]")
    page.wait_for_selector("[data-testid=vehicle-mission][data-state=active]", timeout=15_000)

    # ...and the mission runs to completion.
    page.click(".tab[data-tab=pilot]")
    mission = page.locator("[data-testid=mission-card]:has-text('browser sweep')").first
    mission.wait_for()
    deadline = time.monotonic() + 70
    while mission.get_attribute("data-state") != "completed" and time.monotonic() < deadline:
        assert mission.get_attribute("data-state") not in {"failed", "aborted"}, mission.inner_text()
        page.wait_for_timeout(500)
    assert mission.get_attribute("data-state") == "completed", mission.inner_text()
    mission.click()
    events = page.locator("[data-testid=mission-events]")
    events.wait_for()
    assert "→ completed" in events.inner_text()
    assert "→ paused" in events.inner_text()


def test_dispatcher_creates_and_dispatches_an_incident(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("dispatcher")
    page.on("dialog", lambda dialog: dialog.accept())  # closing an incident is confirmed
    page.click(".tab[data-tab=dispatch]")
    page.fill("[data-testid=incident-lat]", "39.8390")
    page.fill("[data-testid=incident-lon]", "109.9400")
    page.select_option("[data-testid=incident-kind]", "burglary")
    page.click("[data-testid=incident-create]")
    table = page.locator("[data-testid=candidates]")
    table.wait_for(timeout=10_000)
    best = table.locator("tr.best")
    assert best.count() == 1
    assert re.search(r"\b\d+:\d\d\b", best.inner_text()), best.inner_text()  # an ETA, m:ss
    page.click("[data-testid=dispatch-incident]")
    detail = page.locator("[data-testid=incident-detail]")
    page.wait_for_function(
        "() => /assigned|en route|on scene/"
        ".test(document.querySelector('[data-testid=incident-detail] .pill').textContent)",
        timeout=15_000,
    )
    timeline = page.locator("[data-testid=incident-timeline] li")
    assert timeline.count() >= 2, detail.inner_text()
    page.click("[data-testid=close-incident]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=incident-detail] .pill').textContent.trim() === 'closed'",
        timeout=15_000,
    )


def test_observer_sees_everything_and_cannot_launch(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("observer")
    page.click(".tab[data-tab=pilot]")
    assert page.locator("[data-view=pilot] [data-testid=readonly]").is_visible()
    assert page.locator("[data-testid=launch-plan]").count() == 0
    assert page.locator("[data-testid=mission-card] [data-action]").count() == 0
    page.click(".tab[data-tab=fleet]")
    page.locator("[data-testid=vehicle-card]").first.click()
    page.locator("[data-testid=vehicle-detail]").wait_for()
    assert page.locator("[data-command]").count() == 0
    page.click(".tab[data-tab=dispatch]")
    assert page.locator("[data-testid=incident-create]").count() == 0
    assert page.locator(".tab[data-tab=audit]").is_hidden()
    # The service refuses it too, whatever the page shows.
    token = service.login("observer")
    status, body = service.api("POST", "/missions/1/launch", token=token)
    assert status == 403, body


@pytest.mark.parametrize("width", [1366, 1024])
def test_views_fit_laptop_and_tablet_widths(page_for, service, tmp_path, width: int) -> None:  # type: ignore[no-untyped-def]
    page = page_for("admin", width=width)
    for tab in ("fleet", "pilot", "dispatch", "airspace", "feed", "audit"):
        page.click(f".tab[data-tab={tab}]")
        page.wait_for_timeout(250)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{tab} view overflows {width} px by {overflow} px"
        assert page.locator("#map").bounding_box()["width"] > width * 0.35
        page.screenshot(path=str(tmp_path / f"{tab}-{width}.png"))


def test_admin_draws_a_no_fly_zone_and_deletes_it(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("admin")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".tab[data-tab=airspace]")
    page.click("[data-testid=zone-new]")
    page.fill("[data-testid=zone-name]", "No-fly - Browser test")
    page.select_option("[data-testid=zone-kind]", "no_fly")
    page.click("[data-testid=zone-draw]")
    box = page.locator("#map").bounding_box()
    x, y = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.8
    for dx, dy in [(0, 0), (60, 0), (60, 40)]:
        page.mouse.click(x + dx, y + dy)
        page.wait_for_timeout(120)
    page.mouse.dblclick(x + 10, y + 50)  # the fourth corner; a double-click closes the area
    page.click("[data-testid=zone-save]")
    card = page.locator("[data-testid=zone-card]:has-text('No-fly - Browser test')")
    card.wait_for(timeout=10_000)
    status, zones = service.api("GET", "/zones?kind=no_fly", token=service.login("observer"))
    assert status == 200
    drawn = next(z for z in zones["items"] if z["name"] == "No-fly - Browser test")
    assert drawn["shape"]["type"] == "Polygon"
    assert len(drawn["shape"]["coordinates"][0]) == 5  # four corners, closed
    card.click()
    page.click("[data-testid=zone-editor] button.danger")
    card.wait_for(state="detached", timeout=10_000)


def test_pilot_takes_control_and_hands_it_off(page_for, service) -> None:  # type: ignore[no-untyped-def]
    admin = service.login("admin")
    status, body = service.api(
        "POST", "/auth/users", {"username": "pilot2", "password": "pilot2-pw", "role": "pilot"}, token=admin
    )
    assert status == 201, body
    page = page_for("pilot")
    page.locator("[data-testid=vehicle-card][data-vehicle-id='3']").click()
    holder = page.locator("[data-testid=control-holder]")
    assert "Nobody holds" in holder.inner_text()
    page.click("[data-testid=vehicle-detail] button:text('Take control')")
    page.wait_for_selector("[data-testid=control-holder]:has-text('Held by pilot')")
    page.fill("[data-testid=vehicle-detail] input[aria-label='hand off to']", "pilot2")
    page.click("[data-testid=vehicle-detail] button:text('Hand off')")
    page.wait_for_selector("[data-testid=control-holder]:has-text('Held by pilot2')")
    status, control = service.api("GET", "/vehicles/3/control", token=admin)
    assert status == 200
    assert control["holder"] == "pilot2"


def test_pilot_previews_every_plan_kind_and_sees_violations(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("pilot")
    page.click(".tab[data-tab=pilot]")
    page.select_option("[data-testid=mission-vehicle]", "1")
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    shapes = {
        "perimeter": [(0, 0), (30, 0), (30, 25), (0, 25)],
        "corridor": [(0, 0), (40, 10), (70, 0)],
        "orbit": [(0, 0)],
        "rings": [(0, 0)],
        "route": [(0, 0), (40, 30), (80, 0)],
    }
    for kind, clicks in shapes.items():
        page.click(f"[data-kind={kind}]")
        page.click("[data-testid=draw-plan]")
        for dx, dy in clicks:
            page.mouse.click(cx + dx, cy + dy)
            page.wait_for_timeout(120)
        if len(clicks) > 1:
            page.click("#draw-finish")
        metrics = page.locator("[data-testid=plan-metrics]")
        metrics.wait_for(timeout=10_000)
        assert "path length" in metrics.inner_text(), kind
        assert page.locator("[data-testid=plan-ok], [data-testid=plan-violations]").count() == 1, kind

    # A sweep over most of the district is far beyond one battery: the preview says so and launch refuses.
    page.click("[data-kind=sweep]")
    page.click("[data-testid=draw-plan]")
    for fx, fy in [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]:
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_timeout(120)
    page.click("#draw-finish")
    violations = page.locator("[data-testid=plan-violations]")
    violations.wait_for(timeout=15_000)
    assert "energy" in violations.inner_text()
    missions_before = service.api("GET", "/missions", token=service.login("observer"))[1]["total"]
    page.click("[data-testid=launch-plan]")
    page.wait_for_selector("#toast:text('Fix the violations')")
    assert service.api("GET", "/missions", token=service.login("observer"))[1]["total"] == missions_before


def test_patrols_show_their_next_run(page_for, service) -> None:  # type: ignore[no-untyped-def]
    token = service.login("dispatcher")
    ring = [[109.925, 39.806], [109.945, 39.806], [109.945, 39.818], [109.925, 39.818], [109.925, 39.806]]
    patrol = {
        "name": "Market perimeter",
        "plan": {"kind": "perimeter", "geometry": {"type": "Polygon", "coordinates": [ring]}},
        "cron": "15 */2 * * *",
    }
    status, body = service.api("POST", "/patrols", patrol, token=token)
    assert status == 201, body
    page = page_for("observer")
    # The schedule in words and the next runs come from the service (the scheduler's own rules).
    page.click(".tab[data-tab=airspace]")
    card = page.locator("[data-testid=patrol-card]:has-text('Market perimeter')")
    card.wait_for(timeout=10_000)
    assert "15 */2 * * *" in card.inner_text()
    assert "every 2 hours at minute 15" in card.locator("[data-testid=patrol-description]").inner_text()
    assert card.locator("dt").nth(2).inner_text() == "Next runs"
    page.wait_for_function(
        '() => document.querySelector("[data-testid=patrol-card] [data-testid=patrol-next-runs]")'
        ".textContent.includes(':15:00')",
        timeout=10_000,
    )
    assert card.locator("button").count() == 0  # observers cannot change it
