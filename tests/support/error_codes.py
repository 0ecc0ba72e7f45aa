"""Whether an error body's codes are ones the panel translates, in every locale it has (en, zh-CN).

The panel shows ``message_code`` as ``msg.<code>`` (with ``message_params`` filled in), a generic ``code`` as
``err.<code>``, and each gate refusal in ``details`` as ``gate.<code>``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

I18N = Path(__file__).resolve().parents[2] / "api" / "static" / "i18n"
LOCALES = ("en", "zh-CN")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def table(locale: str) -> dict[str, str]:
    return dict(json.loads((I18N / f"{locale}.json").read_text(encoding="utf-8")))


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def message_key(code: str) -> str | None:
    """The key the panel shows ``code`` by (msg.<code>, else err.<code>, else a gate refusal's), if any."""
    for key in (f"msg.{code}", f"err.{code}", code if code.startswith("gate.") else ""):
        if key and all(key in table(loc) for loc in LOCALES):
            return key
    return None


def problems(body: Any) -> list[str]:
    """What is wrong with an error body's codes (empty when the panel can word it in every locale)."""
    out: list[str] = []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [f"no error object: {body!r}"]
    if not isinstance(error.get("message"), str) or not error["message"]:
        out.append("no English reason in message")
    code = error.get("code")
    if not isinstance(code, str) or f"err.{code}" not in table("en") or f"err.{code}" not in table("zh-CN"):
        out.append(f"code {code!r} has no err.* translation")
    message_code = error.get("message_code")
    if not isinstance(message_code, str):
        return [*out, "no message_code"]
    key = message_key(message_code)
    if key is None:
        return [*out, f"message_code {message_code!r} has no translation in both locales"]
    params = set(error.get("message_params") or {})
    if key.startswith("msg."):
        for loc in LOCALES:
            missing = placeholders(table(loc)[key]) - params
            if missing:
                out.append(f"{loc} {key} needs {sorted(missing)}; message_params has {sorted(params)}")
    for refusal in error.get("details") or []:
        if isinstance(refusal, dict) and "code" in refusal and message_key(f"gate.{refusal['code']}") is None:
            out.append(f"gate refusal {refusal['code']!r} has no translation")
    return out
