"""Every message the API gives a user carries a stable code the panel words in English and Chinese.

Static half: every place that builds one of our errors names a literal ``code`` whose ``msg.<code>`` is in
both tables with the same placeholders, all of them given in ``params``. Dynamic half: every route of the
OpenAPI spec is called without credentials, with unknown ids, a body of the wrong shape and query values of
the wrong type; every 4xx answer's codes must be translated (tests/support/error_codes.py), with the English
reason kept in ``message``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from api.errors import _HTTP_CODES, DOMAIN_STATUS, VALIDATION_TYPES
from mission.auth.roles import Role
from tests.support.error_codes import LOCALES, message_key, placeholders, problems, table

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "mission", "flightplans")
# Sites that pass a code computed at run time (a gate refusal's code, a caught error's code).
COMPUTED_CODE = {"mission/safety/gate.py", "mission/payload/service.py", "api/routes/auth.py"}
# Figures an error class adds to params itself.
IMPLICIT_PARAMS = {
    "LinkError": {"vehicle_id", "action"},
    "RateLimited": {"s"},
    "VideoUnavailable": {"vehicle_id"},
}
ROOTS = {"SkywardenError", "PlanningError", "Unauthenticated"}


def _sources() -> list[tuple[str, ast.Module]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            out.append((rel, ast.parse(path.read_text(encoding="utf-8"))))
    return out


def _error_classes(sources: list[tuple[str, ast.Module]]) -> set[str]:
    """SkywardenError, PlanningError, Unauthenticated and every class that derives from them."""
    bases: dict[str, set[str]] = {}
    for _rel, tree in sources:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                bases.setdefault(node.name, set()).update(names)
    found = set(ROOTS)
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def _constructions() -> list[tuple[str, int, str, ast.Call]]:
    sources = _sources()
    classes = _error_classes(sources)
    out = []
    for rel, tree in sources:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if name in classes:
                    out.append((rel, node.lineno, name, node))
    return out


def test_every_error_built_names_a_code_translated_in_both_languages() -> None:
    sites = _constructions()
    assert len(sites) > 250, "the scan found too few error sites; has the layout changed?"
    wrong: list[str] = []
    for rel, line, cls, call in sites:
        if rel in ("mission/errors.py", "api/errors.py"):
            continue
        where = f"{rel}:{line} {cls}"
        kw = {k.arg: k.value for k in call.keywords}
        code = kw.get("code")
        if code is None:
            wrong.append(f"{where}: no code=")
            continue
        if not (isinstance(code, ast.Constant) and isinstance(code.value, str)):
            if rel not in COMPUTED_CODE:
                wrong.append(f"{where}: code is not a literal")
            continue
        key = f"msg.{code.value}"
        if any(key not in table(loc) for loc in LOCALES):
            wrong.append(f"{where}: {key} is not in both tables")
            continue
        en, zh = placeholders(table("en")[key]), placeholders(table("zh-CN")[key])
        if en != zh:
            wrong.append(f"{where}: {key} placeholders differ: en {sorted(en)}, zh-CN {sorted(zh)}")
        given = set(IMPLICIT_PARAMS.get(cls, set()))
        params = kw.get("params")
        if isinstance(params, ast.Dict):
            given |= {k.value for k in params.keys if isinstance(k, ast.Constant)}
        elif params is not None:
            continue  # figures built at run time: the dynamic test checks those bodies
        if en - given:
            wrong.append(f"{where}: {key} needs {sorted(en - given)}, params give {sorted(given)}")
    assert not wrong, "\n".join(wrong)


def test_every_generic_code_the_api_answers_with_is_translated() -> None:
    generic = {code for _cls, _status, code in DOMAIN_STATUS} | set(_HTTP_CODES.values())
    generic |= {"unauthenticated", "validation_error", "internal_error"}
    generic |= {"unauthorized", "session_ended", "bad_request", "unavailable"}  # the websocket's (api/ws.py)
    missing = [c for c in sorted(generic) if any(f"err.{c}" not in table(loc) for loc in LOCALES)]
    missing += [
        t for t in sorted(VALIDATION_TYPES) if message_key(f"validation.{t}") != f"msg.validation.{t}"
    ]
    missing += [c for c in ("db.conflict", "db.out_of_range") if message_key(c) != f"msg.{c}"]
    assert not missing, missing


def _path(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def _requests(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """Bad requests for every operation: no credentials, unknown ids, a wrong body, wrong query values."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for template, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            if template == "/api/v1/auth/logout" or (method == "delete" and "/tokens/" in template):
                continue  # would end the session or revoke the token the test itself uses
            method = method.upper()
            out.append((method, _path(template, "987654"), {"auth": False}))
            out.append((method, _path(template, "987654"), {"auth": True}))
            if "{" in template:
                out.append((method, _path(template, "not-an-id"), {"auth": True}))
            if "requestBody" in op:
                out.append((method, _path(template, "987654"), {"auth": True, "json": {"bogus": [1, 2]}}))
                out.append((method, _path(template, "987654"), {"auth": True, "content": b"{not json"}))
            query = {
                p["name"]: "not-a-number-or-date"
                for p in op.get("parameters", [])
                if p.get("in") == "query" and p.get("schema", {}).get("type") != "string"
            }
            if query:
                out.append((method, _path(template, "987654"), {"auth": True, "params": query}))
    return out


async def test_bad_requests_on_every_route_answer_with_translated_codes(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: dict[Role, dict[str, str]]
) -> None:
    wrong: list[str] = []
    seen: set[str] = set()
    answered = 0
    for method, url, how in _requests(app):
        headers = dict(auth_headers[Role.admin]) if how["auth"] else {}
        kwargs: dict[str, Any] = {"params": how.get("params")}
        if "json" in how:
            kwargs["json"] = how["json"]
        if "content" in how:
            kwargs["content"] = how["content"]
            headers["Content-Type"] = "application/json"
        r = await client.request(method, url, headers=headers, **kwargs)
        if r.status_code < 400 or r.headers.get("content-type", "").split(";")[0] != "application/json":
            continue
        answered += 1
        body = r.json()
        seen.add(body["error"].get("message_code", ""))
        wrong += [f"{method} {url} -> {r.status_code}: {p}" for p in problems(body)]
    assert not wrong, "\n".join(wrong[:40])
    assert answered > 200, answered
    # Specific codes, not only the generic ones: the unknown ids and wrong bodies were named as such.
    assert {
        "api.deps.missing_credentials_authorization_bearer",
        "validation.missing",
        "fleet.vehicle_does_exist",
    } <= seen, sorted(seen)
    assert len(seen) > 15, sorted(seen)
    print(f"{answered} error answers, {len(seen)} codes: {sorted(seen)}")


async def test_a_domain_error_carries_its_code_figures_and_english_reason(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    zone = {
        "name": "hospital",
        "kind": "no_fly",
        "shape": {"type": "Circle", "center": [109.98, 39.82], "radius_m": 100},
    }
    assert (await client.post("/api/v1/zones", json=zone, headers=admin)).status_code == 201
    r = await client.post("/api/v1/zones", json=zone, headers=admin)
    error = r.json()["error"]
    assert r.status_code == 409 and error["code"] == "conflict"
    assert error["message_code"] == "airspace.zone_named_already_exists"
    assert "hospital" in str(error["message_params"]["name"])
    assert "hospital" in error["message"] and not problems(r.json())
    r = await client.get("/api/v1/vehicles/4242", headers=admin)
    error = r.json()["error"]
    assert (r.status_code, error["message_code"], error["message_params"]) == (
        404,
        "fleet.vehicle_does_exist",
        {"vehicle_id": 4242},
    )
    assert error["message"] == "vehicle 4242 does not exist"
    r = await client.post(
        "/api/v1/zones", json={**zone, "name": "x", "shape": {**zone["shape"], "radius_m": -5}}, headers=admin
    )
    error = r.json()["error"]
    assert r.status_code == 422 and error["message_code"].startswith("validation.")
    assert "radius_m" in error["message_params"]["field"] and not problems(r.json())
