"""Sign-in and sessions: a bearer token for scripts, an HttpOnly cookie for the panel; who am I; log out.

Both sign-in routes are throttled per account and per address (429 with Retry-After once locked out); the
password is checked off the event loop. ``/auth/users`` is kept for old clients: use ``/api/v1/users``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    CSRF_HEADER,
    SESSION_COOKIE,
    AdminOnly,
    AnyRole,
    SessionDep,
    SettingsDep,
    client_address,
    get_login_guard,
)
from api.errors import Unauthenticated
from api.pagination import Page, Paging
from api.routes import users
from api.settings import Settings
from api.ws import end_sockets
from mission.audit import service as audit
from mission.audit.fields import PrintableStr
from mission.auth import service as auth
from mission.auth.login import LoginGuard
from mission.auth.models import IssuedToken, Principal, UserCreate, UserRead
from mission.auth.roles import Role
from mission.errors import PermissionDenied

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

GuardDep = Annotated[LoginGuard, Depends(get_login_guard)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: PrintableStr = Field(min_length=1, max_length=64)
    password: PrintableStr = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    role: Role
    username: str
    expires_at: str | None


class SessionResponse(BaseModel):
    """The panel's session: the token itself stays in the HttpOnly cookie."""

    username: str
    role: Role
    expires_at: str | None
    idle_timeout_s: float
    csrf_token: str = Field(description=f"send as {CSRF_HEADER} on every change made with the cookie")


class Me(Principal):
    """Who is calling; ``csrf_token`` when the call came with the session cookie."""

    csrf_token: str | None = None


async def _sign_in(
    data: LoginRequest, request: Request, guard: LoginGuard, settings: Settings
) -> IssuedToken:
    try:
        token, _user = await guard.login(
            username=data.username,
            password=data.password,
            address=client_address(request),
            ttl_s=settings.token_ttl_s,
        )
    except PermissionDenied as err:
        raise Unauthenticated(str(err), code=err.code, params=err.params) from None
    return token


def _cookie_secure(request: Request, settings: Settings) -> bool:
    if settings.session_cookie_secure is not None:
        return settings.session_cookie_secure
    return request.url.scheme == "https"


@router.post(
    "/login",
    response_model=LoginResponse,
    summary="Log in; returns a bearer token (public, throttled)",
    responses={429: {"description": "too many failed sign-ins; see Retry-After"}},
)
async def login(
    data: LoginRequest, request: Request, guard: GuardDep, settings: SettingsDep
) -> LoginResponse:
    token = await _sign_in(data, request, guard, settings)
    return LoginResponse(
        token=token.token,
        role=token.role,
        username=data.username,
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
    )


@router.post(
    "/session",
    response_model=SessionResponse,
    summary="Panel sign-in: sets an HttpOnly session cookie (public, throttled)",
    responses={429: {"description": "too many failed sign-ins; see Retry-After"}},
)
async def start_session(
    data: LoginRequest, request: Request, response: Response, guard: GuardDep, settings: SettingsDep
) -> SessionResponse:
    token = await _sign_in(data, request, guard, settings)
    response.set_cookie(
        SESSION_COOKIE,
        token.token,
        max_age=settings.token_ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, settings),
    )
    return SessionResponse(
        username=data.username,
        role=token.role,
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
        idle_timeout_s=settings.session_idle_timeout_s,
        csrf_token=auth.csrf_token(token.token),
    )


@router.get("/me", response_model=Me, summary="Who the bearer token or session cookie belongs to")
def me(request: Request, who: AnyRole) -> Me:
    cookie_token = getattr(request.state, "session_token", None)
    return Me(**who.model_dump(), csrf_token=auth.csrf_token(cookie_token) if cookie_token else None)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke the token (or session) used for this call",
)
def logout(
    request: Request, response: Response, background: BackgroundTasks, session: SessionDep, who: AnyRole
) -> None:
    if who.token_id is not None:
        auth.revoke_token(session=session, token_id=who.token_id)
    audit.record(session=session, actor=who.username, action="auth.logout", target=f"token:{who.token_id}")
    if SESSION_COOKIE in request.cookies:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    if who.token_id is not None:
        background.add_task(end_sockets, request.app, token_ids=[who.token_id])


@router.get(
    "/users", response_model=Page[UserRead], summary="Users (admins; use GET /api/v1/users)", deprecated=True
)
def list_users(session: SessionDep, paging: Paging, _who: AdminOnly) -> Page[UserRead]:
    items, total = auth.page_users(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page(items, total)


@router.post(
    "/users",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (use POST /api/v1/users)",
    deprecated=True,
)
def create_user(data: UserCreate, session: SessionDep, who: AdminOnly) -> UserRead:
    return users.create(data=data, session=session, who=who)
