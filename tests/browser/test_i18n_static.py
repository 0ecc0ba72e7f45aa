"""The panel's two translation tables agree, every key the modules use is in them, and no view has text of
its own (every visible string goes through t()). Static: no browser needed.

The browser half (the Chinese panel shows no English key names or English table text) is in
test_panel_jobs.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
LOCALES = ("en", "zh-CN")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A call of the translation function: t(, tr( or has( not preceded by a name character or a dot.
CALL = re.compile(r"(?<![\w.$])(?:t|tr|has)\(")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|`((?:[^`\\]|\\.)*)`' + r"|'((?:[^'\\]|\\.)*)'")
KEY = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-zA-Z0-9_-]+)+$")


def _strings(source: str) -> list[tuple[int, str]]:
    """Every string literal of a JS module with its offset (comments and regex literals skipped)."""
    out: list[tuple[int, str]] = []
    i, n = 0, len(source)
    last = "("  # the last significant character: decides whether "/" starts a regex
    while i < n:
        ch = source[i]
        if ch in "\"'`":
            j = i + 1
            while source[j] != ch:
                j += 2 if source[j] == "\\" else 1
            out.append((i, source[i + 1 : j]))
            i, last = j + 1, ch
            continue
        if ch == "/" and source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
            continue
        if ch == "/" and source.startswith("/*", i):
            i = source.index("*/", i) + 2
            continue
        if (ch == "/" and last in "(,=:[!&|?{};+-*%<>~^") or (
            ch == "/" and source[max(0, i - 6) : i].endswith("return")
        ):
            j, in_class = i + 1, False
            while in_class or source[j] != "/":
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            i, last = j + 1, "/"
            continue
        if not ch.isspace():
            last = ch
        i += 1
    return out


def _table(locale: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{locale}.json").read_text(encoding="utf-8"))


def _modules() -> list[Path]:
    return sorted((STATIC / "js").rglob("*.js"))


def _first_argument(source: str, start: int) -> str:
    """The text of a call's first argument, from just after its "(" (strings and brackets respected)."""
    depth = 0
    i = start
    while i < len(source):
        ch = source[i]
        if ch in "\"'`":
            end = source.index(ch, i + 1)
            while source[end - 1] == "\\":
                end = source.index(ch, end + 1)
            i = end + 1
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return source[start:i]
            depth -= 1
        elif ch == "," and depth == 0:
            return source[start:i]
        i += 1
    raise AssertionError(f"unclosed call at {start}")


def _used_keys() -> tuple[set[str], set[str]]:
    """Keys named literally in t()/tr()/has() calls, and the prefixes of keys built at run time."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        for call in CALL.finditer(source):
            arg = _first_argument(source, call.end())
            for m in STRING.finditer(arg):
                text = next(g for g in m.groups() if g is not None)
                if "${" in text:
                    prefix = text.split("${")[0]
                    if prefix.endswith("."):  # a key built from a value (not an attribute name)
                        prefixes.add(prefix)
                elif KEY.match(text):
                    keys.add(text)
        for m in re.finditer(r"(?<![\w.])tv\(\s*\"([a-z_]+)\"", source):
            prefixes.add(m.group(1) + ".")
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    keys |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', html))
    return keys, prefixes


def test_both_tables_have_the_same_keys_and_placeholders() -> None:
    en, zh = (_table(loc) for loc in LOCALES)
    assert set(en) == set(zh), {"only en": sorted(set(en) - set(zh)), "only zh-CN": sorted(set(zh) - set(en))}
    for key in en:
        assert en[key].strip() and zh[key].strip(), f"{key} is empty"
        assert set(PLACEHOLDER.findall(en[key])) == set(PLACEHOLDER.findall(zh[key])), key


def test_every_key_the_panel_uses_is_translated() -> None:
    en = _table("en")
    keys, prefixes = _used_keys()
    assert len(keys) > 300, "the key scan found too few keys: is the scanner broken?"
    missing = sorted(k for k in keys if k not in en)
    assert not missing, f"untranslated keys: {missing}"
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in en), f"no key starts with {prefix!r}"


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        (
            "state.",
            "draft validated uploading ready active paused returning completed aborted failed new "
            "assigned en_route on_scene closed claimed launched skipped preempted",
        ),
        ("plan.", "sweep perimeter corridor orbit rings route"),
        ("role.", "admin pilot dispatcher observer"),
        (
            "payload.",
            "speaker.play speaker.loop speaker.stop siren.on siren.off spotlight.on spotlight.off "
            "spotlight.strobe",
        ),
        ("command.", "hold return land takeoff"),
        ("confirm.", "land takeoff"),
        ("pilot.action.", "goto orbit look land return"),
        ("pilot.done.", "goto orbit look land return"),
        ("draw.hint.", "polygon line points point circle"),
        ("ws.", "connecting live offline unauthorized"),
        ("video.state.", "live starting stalled idle unavailable"),
        ("zone.", "no_fly patrol event"),
        (
            "err.",
            "not_found invalid_transition conflict airspace_violation forbidden vehicle_unavailable "
            "link_error planning_error bad_request too_many_requests validation_error unauthenticated",
        ),
    ],
)
def test_values_built_into_keys_are_all_translated(prefix: str, values: str) -> None:
    en = _table("en")
    missing = [v for v in values.split() if prefix + v not in en]
    assert not missing, f"{prefix}: {missing}"


def test_every_gate_refusal_code_is_translated() -> None:
    """Each stable code the gate and the rules give a refusal has a message in the tables."""
    root = STATIC.parents[1] / "mission" / "safety"
    codes = set()
    for path in root.glob("*.py"):
        codes |= set(
            re.findall(r'"((?:airspace|altitude|battery|wind|authority|vehicle)\.[a-z_]+)"', path.read_text())
        )
    assert len(codes) >= 15, codes
    en = _table("en")
    assert not sorted(c for c in codes if f"gate.{c}" not in en)


# Literals that are not text for people: CSS classes, selectors, element and attribute names, GeoJSON
# types, keys of the DOM and of the API.
ALLOWED_LITERAL = re.compile(
    r"^(?:[a-z0-9_.\-:/#?=&%@\[\]*+ ]*|[A-Z][A-Za-z]*(?:String|Polygon|Collection)?|Content-Type|"
    r"X-CSRF-Token|Accept|Escape|Enter|Esc|F|M|D|A|UTC|Feature|Point|Circle|Polygon|MultiPolygon|LineString|"
    r"INPUT|TEXTAREA|SELECT|zh-CN|[\[.#].*|\u00a9 OpenStreetMap contributors|P\d|"
    r"[\u2014\u2013\u2192\u00b7\u00d7\u2328\u2713!\u2026%\u00b0]|.*\$\{.*)$"
)
PROSE = re.compile(r"[A-Za-z]{2,}[^A-Za-z]+[A-Za-z]{2,}")  # two words: a phrase someone would read


def test_no_view_has_text_of_its_own() -> None:
    """A literal with words in it must be a key given to t(); anything else a person reads is a bug."""
    offenders = []
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        spans = []
        for call in CALL.finditer(source):
            arg = _first_argument(source, call.end())
            spans.append((call.end(), call.end() + len(arg)))
        for start, text in _strings(source):
            inside_t = any(a <= start < b for a, b in spans)
            line = source.count("\n", 0, start) + 1
            before = source[max(0, start - 40) : start]
            if inside_t or "${" in text or KEY.match(text):
                continue
            if re.search(
                r"(?:class|className|querySelector(?:All)?|closest|import|from|console\.\w+|"
                r"addEventListener|dataset\.\w+|getAttribute|setAttribute|new Error|Error)\s*[:=(]?\s*$|"
                r"\bfrom\s*$|import\s*\(\s*$|\b(?:pane|className|dashArray|kind|direction|type|action|"
                r"command|mode|role|method|credentials|href|download|accept|inputmode|autocomplete|style|"
                r"data-[\w-]+|\"[\w-]+\")\s*:\s*$",
                before,
            ):
                continue
            readable = PROSE.search(text) or re.fullmatch(r"[A-Z][a-z]+(?: [a-z]+)*[.!]?", text)
            if readable and not ALLOWED_LITERAL.match(text):
                offenders.append(f"{path.relative_to(STATIC)}:{line}: {text!r}")
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    body = re.sub(r"<script.*?</script>|<head>.*?</head>", "", html, flags=re.S)
    for text in re.findall(r">([^<>]+)<", body):
        if re.search(r"[A-Za-z]{2,}", text) and text.strip() not in {"skywarden"}:
            offenders.append(f"index.html: {text.strip()!r}")
    assert not offenders, "text not going through t():\n" + "\n".join(offenders)


def test_the_panel_has_no_cron_code() -> None:
    """Schedules are put in words and their next runs computed by the service, never by the panel."""
    assert not (STATIC / "js" / "cron.js").exists()
    for path in _modules():
        assert "nextRun(" not in path.read_text(encoding="utf-8"), path
