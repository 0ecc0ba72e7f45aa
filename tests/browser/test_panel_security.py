"""The panel under attack, in a real Chromium against the running service: names carrying script stay text,
the page runs under a strict CSP without violating it, the session is out of the page's reach, and the
admin's users page manages accounts."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Each payload bumps window.__xss if it ever runs: as an <img> handler, a <script>, an SVG handler, a
# javascript: link, or an attribute break-out.
PAYLOADS = [
    '<img src=x onerror="window.__xss=(window.__xss||0)+1">',
    "<script>window.__xss=(window.__xss||0)+1</script>",
    '<svg onload="window.__xss=(window.__xss||0)+1"></svg>',
    '"><img src=x onerror=window.__xss=(window.__xss||0)+1>',
    '<a href="javascript:window.__xss=(window.__xss||0)+1">x</a>',
]


def _square(lon: float, lat: float, d: float = 0.004) -> dict:
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _plant_payloads(service) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Name a zone, a vehicle, a mission, a patrol, a security event and an incident with payloads."""
    admin = service.login("admin")
    pilot = service.login("pilot")
    dispatcher = service.login("dispatcher")
    status, vehicle = service.api("GET", "/vehicles/2", token=admin)
    assert status == 200
    lon, lat = vehicle["home_lon"], vehicle["home_lat"]
    planted = {}
    status, body = service.api(
        "POST",
        "/zones",
        {"name": PAYLOADS[0], "kind": "no_fly", "shape": _square(lon + 0.05, lat + 0.05)},
        token=admin,
    )
    assert status == 201, body
    planted["zone"] = PAYLOADS[0]
    status, body = service.api("PATCH", "/vehicles/2", {"name": PAYLOADS[3][:64]}, token=admin)
    assert status == 200, body
    planted["vehicle"] = PAYLOADS[3][:64]
    plan = {"kind": "sweep", "geometry": _square(lon + 0.002, lat + 0.002)}
    status, body = service.api(
        "POST", "/missions", {"name": PAYLOADS[1], "vehicle_id": 2, "plan": plan}, token=pilot
    )
    assert status == 201, body
    planted["mission"] = PAYLOADS[1]
    patrol = {
        "name": PAYLOADS[2],
        "plan": {"kind": "perimeter", "geometry": _square(lon - 0.01, lat - 0.01)},
        "cron": "0 3 * * *",
    }
    status, body = service.api("POST", "/patrols", patrol, token=dispatcher)
    assert status == 201, body
    planted["patrol"] = PAYLOADS[2]
    incident = {
        "lat": lat + 0.01,
        "lon": lon + 0.01,
        "kind": "alarm",
        "priority": 3,
        "notes": PAYLOADS[4],
        "source": PAYLOADS[0][:128],
    }
    status, body = service.api("POST", "/incidents", incident, token=dispatcher)
    assert status == 201, body
    planted["incident"] = PAYLOADS[4]
    return planted


def test_names_carrying_script_stay_text_under_a_csp_the_panel_never_violates(page_for, service) -> None:  # type: ignore[no-untyped-def]
    planted = _plant_payloads(service)
    with urllib.request.urlopen(service.url + "/", timeout=10) as res:
        csp = res.headers["Content-Security-Policy"]
        assert res.headers["X-Content-Type-Options"] == "nosniff"
        assert res.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp

    page = page_for("admin")
    violations: list[str] = []
    page.on(
        "console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    page.on("dialog", lambda dialog: (violations.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    for tab in ("fleet", "pilot", "dispatch", "airspace", "feed", "audit", "users"):
        page.click(f".tab[data-tab={tab}]")
        page.wait_for_timeout(400)
    page.click(".tab[data-tab=pilot]")
    page.locator("[data-testid=mission-card]").first.wait_for(timeout=10_000)
    page.click(".tab[data-tab=dispatch]")
    page.wait_for_timeout(800)
    page.click(".tab[data-tab=airspace]")
    zone_card = page.locator("[data-testid=zone-card]", has_text=planted["zone"])
    zone_card.wait_for(timeout=10_000)
    zone_card.click()
    page.wait_for_timeout(500)
    # Point at every incident marker so its tooltip renders (they may lie outside the view).
    markers = page.locator(".incident-icon").all()
    assert markers, "no incident on the map"
    for marker in markers:
        marker.dispatch_event("mouseover")
        page.wait_for_timeout(200)
    assert any("alarm" in t for t in page.locator(".leaflet-tooltip").all_inner_texts())

    assert page.evaluate("window.__xss") is None, "a payload ran"
    assert page.locator("img[src=x]").count() == 0 and page.locator("#app script").count() == 0
    # The payloads are shown as the names they are.
    assert planted["zone"] in page.locator(".zone-label").all_inner_texts()
    tag = page.locator(".veh-icon[data-vehicle-id='2'] .veh-tag b").inner_text()
    assert tag == planted["vehicle"]
    page.click(".tab[data-tab=pilot]")
    assert page.locator("[data-testid=mission-card]", has_text=planted["mission"]).count() >= 1
    page.click(".tab[data-tab=airspace]")
    assert page.locator("[data-testid=patrol-card]", has_text=planted["patrol"]).count() == 1
    assert violations == [], violations

    # The session is an HttpOnly cookie: nothing script-readable holds a token.
    storage = page.evaluate(
        "JSON.stringify([document.cookie, Object.entries(sessionStorage), Object.entries(localStorage)])"
    )
    assert "swk_" not in storage and "skywarden_session" not in storage, storage
    cookie = next(c for c in page.context.cookies() if c["name"] == "skywarden_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"


def test_the_panel_cannot_be_framed_or_fed_inline_script(browser, service) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(service.url + "/")
    ran = page.evaluate(
        """() => new Promise((resolve) => {
            window.__inline = false;
            document.addEventListener("securitypolicyviolation", () => resolve("blocked"), { once: true });
            const s = document.createElement("script");
            s.textContent = "window.__inline = true";
            document.body.append(s);
            setTimeout(() => resolve(window.__inline ? "ran" : "silent"), 1000);
        })"""
    )
    assert ran == "blocked"
    framed = page.evaluate(
        f"""() => new Promise((resolve) => {{
            const f = document.createElement("iframe");
            f.src = "{service.url}/";
            document.body.append(f);
            setTimeout(() => {{
                let inside = null;
                try {{ inside = f.contentDocument.querySelector("#login"); }} catch (e) {{ }}
                resolve(inside ? "framed" : "refused");
            }}, 1500);
        }})"""
    )
    assert framed == "refused"
    context.close()


def test_admin_users_page_creates_changes_and_disables_users(page_for, service) -> None:  # type: ignore[no-untyped-def]
    page = page_for("admin")
    page.on("dialog", lambda dialog: dialog.accept())  # disabling a user is confirmed
    page.click("[data-testid=tab-users]")
    page.fill("[data-testid=user-new-name]", "casey")
    page.fill("[data-testid=user-new-password]", "casey-password")
    page.click("[data-testid=user-create]")
    row = page.locator("[data-testid=user-row][data-username=casey]")
    row.wait_for(timeout=10_000)
    row.locator("select").select_option("dispatcher")
    row.locator("button:text('Set role')").click()
    page.wait_for_selector("#toast:text('casey is now dispatcher')")
    row.locator("[data-testid=user-toggle]").click()
    page.wait_for_selector("[data-testid=user-row][data-username=casey] .pill:text('disabled')")
    status, users = service.api("GET", "/users", token=service.login("admin"))
    casey = next(u for u in users["items"] if u["username"] == "casey")
    assert (casey["role"], casey["disabled"]) == ("dispatcher", True)
    status, _ = service.api("POST", "/auth/login", {"username": "casey", "password": "casey-password"})
    assert status == 401
    status, audit = service.api("GET", "/audit?action=user.", token=service.login("admin"))
    assert [e["action"] for e in audit["items"]][:3] == ["user.disable", "user.role_change", "user.create"]
    assert json.dumps(audit).count("casey") >= 3
