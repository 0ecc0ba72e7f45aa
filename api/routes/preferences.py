"""The signed-in user's own settings: the panel's language, kept by the service so it follows the user."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from api.deps import AnyRole, SessionDep
from mission.audit import service as audit
from mission.auth.models import User
from mission.errors import BadRequest

router = APIRouter(prefix="/api/v1/me", tags=["auth"])

Locale = Literal["zh-CN", "en"]


class LocaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Locale


class LocaleOut(BaseModel):
    """The user's language; None when they never chose one (the panel then follows the browser)."""

    locale: Locale | None


@router.get("/locale", response_model=LocaleOut, summary="The panel language of the caller")
def get_locale(session: SessionDep, who: AnyRole) -> LocaleOut:
    user = session.get(User, who.user_id) if who.user_id is not None else None
    value = user.locale if user is not None else None
    return LocaleOut(locale=value if value in ("zh-CN", "en") else None)  # type: ignore[arg-type]


@router.put("/locale", response_model=LocaleOut, summary="Choose the panel language (kept per user)")
def set_locale(data: LocaleIn, session: SessionDep, who: AnyRole) -> LocaleOut:
    user = session.get(User, who.user_id) if who.user_id is not None else None
    if user is None:
        raise BadRequest("only a user has a panel language (this is a machine token)", code="locale.no_user")
    user.locale = data.locale
    session.add(user)
    audit.record(
        session=session,
        actor=who.username,
        action="user.locale",
        target=f"user:{user.id}",
        details={"locale": data.locale},
    )
    return LocaleOut(locale=data.locale)
