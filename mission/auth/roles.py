"""The four roles and what each may do; admin may do everything."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    pilot = "pilot"
    dispatcher = "dispatcher"
    observer = "observer"


ALL_ROLES: frozenset[Role] = frozenset(Role)


def parse_role(value: str) -> Role:
    """The Role named ``value``; ValueError naming the allowed roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value!r}; expected one of {allowed}") from None
