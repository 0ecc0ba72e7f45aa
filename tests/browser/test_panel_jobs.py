"""One flow per job in a real headless Chromium, against ``skywarden serve --sim 3``:

- a pilot takes off, flies here and orbits from the map, sees the gate's refusal drawn on the map, plays a
  warning from the library and the simulated speaker reports it;
- a dispatcher creates a patrol from a patrol zone and sees its schedule in words and its next runs;
- an admin disables a user, who is signed out at once;
- the Chinese panel (chosen by the user, remembered by the service) shows no English key names or text.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
STATIC = Path(__file__).resolve().parents[2] / "api" / "static"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    """The service and its work directory (the sim's stdout goes to serve.log there)."""
    workdir = tmp_path_factory.mktemp("jobs")
    with running_service(workdir) as svc:
        yield svc, workdir


def _open(browser, svc: Service, user: str, password: str, *, locale: str = "en-US", errors=None):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale=locale)
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(svc.url + "/")
    page.fill("#login-user", user)
    page.fill("#login-pass", password)
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=vehicle-card]", timeout=20_000)
    page.wait_for_selector("#ws-state[data-state=live]", timeout=20_000)
    return page


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * 111_320.0
    dlon = (a[1] - b[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


def _marker(page, vehicle_id: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The vehicle as the panel's map shows it: position, height above home, airborne."""
    el = page.locator(f".veh-icon[data-vehicle-id='{vehicle_id}']")
    attrs = el.evaluate("(e) => ({...e.dataset})")
    return {
        "lat": float(attrs["lat"]),
        "lon": float(attrs["lon"]),
        "alt_rel_m": float(attrs["alt"] or 0),
        "in_air": attrs.get("inAir") == "1",
    }


def _wait(predicate, *, timeout_s: float, what: str, every_s: float = 0.5) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _right_click_map(page, dx: float, dy: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Right-click the map at an offset from its centre; the menu's point (lat, lon)."""
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy, button="right")
    head = page.locator("[data-testid=map-menu] .menu-head .mono")
    head.wait_for(timeout=10_000)
    lat, lon = (float(x) for x in head.inner_text().split(","))
    return lat, lon


def test_pilot_flies_here_orbits_sees_a_refusal_and_plays_a_warning(browser, served) -> None:  # type: ignore[no-untyped-def]
    svc, workdir = served
    admin = svc.login("admin")
    status, message = svc.api(
        "POST",
        "/payload/messages",
        {"name": "Leave the area", "slot": 2, "kind": "tts", "text": "请立即离开", "language": "zh-CN"},
        token=admin,
    )
    assert status == 201, message
    errors: list[str] = []
    page = _open(browser, svc, "pilot", svc.passwords["pilot"], errors=errors)
    page.on("dialog", lambda dialog: dialog.accept())  # destructive actions confirm; the pilot says yes
    vid = 1
    page.locator(f"[data-testid=vehicle-card][data-vehicle-id='{vid}']").click()
    page.click("[data-testid=control-take]")
    page.wait_for_selector("[data-testid=control-release]", timeout=15_000)
    page.click("[data-command=takeoff]")
    _wait(lambda: _marker(page, vid)["alt_rel_m"] > 20, timeout_s=60, what="take-off to 30 m")

    # Centre the map on the drone (closing the video dock over the map), then fly 150 px east of it at 40 m.
    page.locator(f"[data-testid=vehicle-card][data-vehicle-id='{vid}']").click()
    page.wait_for_timeout(800)
    if page.locator("[data-testid=video-close]").is_visible():
        page.click("[data-testid=video-close]")
    target = _right_click_map(page, 150, 0)
    page.fill("[data-testid=map-menu] [data-field=alt_m]", "40")
    page.locator("[data-testid=map-menu] [data-field=alt_m]").dispatch_event("change")
    page.click("[data-testid=map-menu] [data-act=goto]")
    page.wait_for_selector("#toast.ok", timeout=15_000)

    def near(point: tuple[float, float], within_m: float) -> bool:
        t = _marker(page, vid)
        return _distance_m((t["lat"], t["lon"]), point) < within_m

    _wait(lambda: near(target, 25), timeout_s=90, what="the drone at the point it was sent to")
    t = _marker(page, vid)
    assert abs(t["alt_rel_m"] - 40) < 5, t

    # Orbit a point 120 px north, radius 60 m.
    centre = _right_click_map(page, 0, -120)
    page.fill("[data-testid=map-menu] [data-field=radius_m]", "60")
    page.locator("[data-testid=map-menu] [data-field=radius_m]").dispatch_event("change")
    page.click("[data-testid=map-menu] [data-act=orbit]")
    page.wait_for_selector("#toast.ok", timeout=15_000)

    def on_circle() -> bool:
        t = _marker(page, vid)
        return abs(_distance_m((t["lat"], t["lon"]), centre) - 60) < 15

    _wait(on_circle, timeout_s=90, what="the drone on the 60 m orbit")
    samples = []
    for _ in range(6):
        t = _marker(page, vid)
        samples.append((t["lat"], t["lon"]))
        time.sleep(0.7)
    assert all(abs(_distance_m(p, centre) - 60) < 20 for p in samples), samples
    assert len({(round(a, 6), round(b, 6)) for a, b in samples}) > 3, (
        "the drone does not move around the circle"
    )

    # Fly into the hospital's no-fly zone: refused, the zone outlined and the point marked on the map.
    label = page.locator(".zone-label", has_text="Hospital").first
    box = label.bounding_box()
    if box is None or not page.locator("#map").bounding_box():
        pytest.fail("the hospital zone is not on screen")
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 4, button="right")
    page.wait_for_selector("[data-testid=map-menu] [data-act=goto]", timeout=10_000)
    page.click("[data-testid=map-menu] [data-act=goto]")
    page.wait_for_selector("[data-testid=map-refusal]:visible", timeout=15_000)
    assert page.locator(".refused-zone").count() >= 1
    assert page.locator(".refusal-label").count() >= 1
    assert "Hospital" in page.locator("[data-testid=map-refusal]").inner_text()

    # The payload panel: play the library message; the timeline shows it, the sim's speaker reports it.
    page.locator(f"[data-testid=vehicle-card][data-vehicle-id='{vid}']").click()
    page.wait_for_selector("[data-testid=payload-play]:enabled", timeout=10_000)
    page.select_option("[data-testid=payload-message]", str(message["id"]))
    page.click("[data-testid=payload-play]")
    page.wait_for_selector("[data-testid=payload-timeline] li[data-action='speaker.play']", timeout=15_000)
    log = workdir / "serve.log"
    _wait(
        lambda: "sim sysid=1 speaker: playing message 2 once" in log.read_text(errors="replace"),
        timeout_s=20,
        what="the sim speaker's report",
    )
    page.click("[data-testid=payload-stop]")
    page.wait_for_selector("[data-testid=payload-timeline] li[data-action='speaker.stop']", timeout=15_000)
    _wait(
        lambda: "sim sysid=1 speaker: silent" in log.read_text(errors="replace"), timeout_s=20, what="silence"
    )
    status, audit = svc.api("GET", "/audit?action=cmd.&limit=50", token=admin)
    assert status == 200
    actions = [e["action"] for e in audit["items"]]  # type: ignore[index]
    assert any(a.startswith("cmd.") for a in actions), actions

    # Bring it home (a shortcut: r, confirmed).
    page.keyboard.press("r")
    _wait(lambda: not _marker(page, vid)["in_air"], timeout_s=120, what="the drone landed home")
    assert not errors, errors
    page.context.close()


def test_dispatcher_creates_a_patrol_and_sees_its_next_runs(browser, served) -> None:  # type: ignore[no-untyped-def]
    svc, _ = served
    errors: list[str] = []
    page = _open(browser, svc, "dispatcher", svc.passwords["dispatcher"], errors=errors)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".tab[data-tab=airspace]")
    page.click("[data-testid=patrol-new]")
    page.fill("[data-testid=patrol-name]", "Market evening perimeter")
    zone = page.locator("[data-testid=patrol-zone] option", has_text="Market")
    page.select_option("[data-testid=patrol-zone]", zone.get_attribute("value"))
    page.fill("[data-testid=patrol-cron]", "15 */2 * * *")
    page.fill("[data-testid=patrol-timezone]", "UTC")
    page.wait_for_selector(
        "[data-testid=patrol-preview-description]:has-text('every 2 hours at minute 15')", timeout=10_000
    )
    runs = page.locator("[data-testid=patrol-preview-runs] li")
    assert runs.count() == 5
    stamps = [runs.nth(i).get_attribute("data-at") for i in range(5)]
    assert all(re.search(r"T\d[02468]:15:00|T\d\d:15:00", s) for s in stamps), stamps
    page.select_option("[data-testid=patrol-vehicle]", "v:2")
    page.click("[data-testid=patrol-save]")
    card = page.locator("[data-testid=patrol-card]", has_text="Market evening perimeter")
    card.wait_for(timeout=15_000)
    assert "every 2 hours at minute 15" in card.locator("[data-testid=patrol-description]").inner_text()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=patrol-card]')].some((c) =>"
        " c.textContent.includes('Market evening perimeter') &&"
        " c.querySelector('[data-testid=patrol-next-runs]').textContent.split('·').length === 3)",
        timeout=10_000,
    )
    _status, patrols = svc.api("GET", "/patrols", token=svc.login("observer"))
    mine = next(p for p in patrols["items"] if p["name"] == "Market evening perimeter")  # type: ignore[index]
    assert (mine["cron"], mine["timezone"], mine["vehicle_id"]) == ("15 */2 * * *", "UTC", 2)
    assert mine["plan"]["kind"] == "perimeter" and mine["plan"]["geometry"]["type"] == "Polygon"
    # Pause, then delete (confirmed).
    card.locator("[data-testid=patrol-toggle]").click()
    page.wait_for_selector(
        "[data-testid=patrol-card]:has-text('Market evening perimeter') .pill[data-state=paused]",
        timeout=10_000,
    )
    card.locator("[data-testid=patrol-delete]").click()
    card.wait_for(state="detached", timeout=10_000)
    assert not errors, errors
    page.context.close()


def test_admin_disables_a_user_who_is_then_signed_out(browser, served) -> None:  # type: ignore[no-untyped-def]
    svc, _ = served
    status, body = svc.api(
        "POST",
        "/users",
        {"username": "pat", "password": "pat-password", "role": "pilot"},
        token=svc.login("admin"),
    )
    assert status == 201, body
    victim = _open(browser, svc, "pat", "pat-password")
    admin = _open(browser, svc, "admin", svc.passwords["admin"])
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.click("[data-testid=tab-users]")
    row = admin.locator("[data-testid=user-row][data-username=pat]")
    row.wait_for(timeout=10_000)
    row.locator("[data-testid=user-toggle]").click()
    admin.wait_for_selector(
        "[data-testid=user-row][data-username=pat] .pill[data-state=disabled]", timeout=10_000
    )
    # The disabled user's panel is closed at once: back to the sign-in form, saying why.
    victim.wait_for_selector("#login:not([hidden])", timeout=20_000)
    victim.wait_for_selector("#login-error:has-text('session ended')", timeout=10_000)
    assert victim.locator("#app").is_hidden()
    status, _ = svc.api("POST", "/auth/login", {"username": "pat", "password": "pat-password"})
    assert status == 401
    victim.context.close()
    admin.context.close()


VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    // translate="no" marks what the API says as it is: user names, audit actions, zone and vehicle names.
    if (!el || el.closest('[hidden]') || el.closest('[translate=no]')) continue;
    if (getComputedStyle(el).display === 'none') continue;
    const text = n.textContent.trim();
    if (text) out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder],[title],[aria-label]')) {
    if (el.closest('[hidden]')) continue;
    if (el.closest('[translate=no]')) continue;
    for (const a of ['placeholder', 'title', 'aria-label']) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out;
}"""


def test_the_chinese_panel_shows_no_english_key_names(browser, served) -> None:  # type: ignore[no-untyped-def]
    svc, _ = served
    en = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((STATIC / "i18n" / "zh-CN.json").read_text(encoding="utf-8"))
    english = {v for k, v in en.items() if v != zh[k] and re.search(r"[A-Za-z]{3,}", v) and "{" not in v}
    # The observer chooses Chinese in an English browser; the service remembers it for their next sign-in.
    page = _open(browser, svc, "observer", svc.passwords["observer"])
    page.select_option("#locale", "zh-CN")
    page.wait_for_selector("html[lang=zh-CN] [data-testid=vehicle-card]", timeout=20_000)
    page.context.close()
    errors: list[str] = []
    page = _open(browser, svc, "admin", svc.passwords["admin"], errors=errors)  # admin sees every view
    page.select_option("#locale", "zh-CN")
    page.wait_for_selector("html[lang=zh-CN] [data-testid=vehicle-card]", timeout=20_000)
    page.context.close()
    page = _open(browser, svc, "admin", svc.passwords["admin"], locale="en-US", errors=errors)
    assert page.evaluate("document.documentElement.lang") == "zh-CN", "the user's language was not remembered"
    page.on("dialog", lambda dialog: dialog.dismiss())
    found: dict[str, list[str]] = {}
    page.locator("[data-testid=vehicle-card]").first.click()
    page.click("#shortcuts-button")
    for tab in ("fleet", "pilot", "dispatch", "airspace", "video", "feed", "reports", "audit", "users"):
        page.click(f".tab[data-tab={tab}]")
        page.wait_for_timeout(600)
        if tab == "airspace":
            page.click("[data-testid=patrol-new]")
            page.wait_for_selector("[data-testid=patrol-preview-description]", timeout=10_000)
        texts = page.evaluate(VISIBLE_TEXT)
        keys = [t for t in texts if t in en or re.fullmatch(r"[a-z]+(?:\.[a-z_]+)+", t)]
        words = [t for t in texts if t in english or t in ("null", "undefined", "NaN", "[object Object]")]
        if keys or words:
            found[tab] = keys + words
    assert not found, f"English or key names in the Chinese panel: {found}"
    assert "机队" in page.locator(".tab[data-tab=fleet]").inner_text()
    assert not errors, errors
    page.context.close()


def test_a_server_error_is_shown_in_the_users_language(browser, served) -> None:  # type: ignore[no-untyped-def]
    """The service's message codes, not its English reasons, are what the Chinese panel shows."""
    svc, _ = served
    page = _open(browser, svc, "admin", svc.passwords["admin"], locale="zh-CN")
    if page.evaluate("document.documentElement.lang") != "zh-CN":
        page.select_option("#locale", "zh-CN")
        page.wait_for_selector("html[lang=zh-CN] [data-testid=vehicle-card]", timeout=20_000)
    page.click(".tab[data-tab=users]")
    page.fill("[data-testid=user-new-name]", "admin")
    page.fill("[data-testid=user-new-password]", "another-password-1")
    page.click("[data-testid=user-create]")
    toast = page.locator("#toast")
    toast.wait_for(state="visible", timeout=10_000)
    # auth.user_already_exists in zh-CN, its figure filled in; the body's English reason is not shown.
    assert toast.inner_text() == "用户 'admin' 已存在", toast.inner_text()
    page.context.close()
