"""Field types shared by the core's models: printable text that every database can store."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (PostgreSQL cannot store NUL)")
    return value


PrintableStr = Annotated[str, AfterValidator(_printable)]
"""A string without NUL or other control characters (tabs and newlines are fine)."""
