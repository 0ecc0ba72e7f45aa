"""Panel login (username/password -> bearer token), who am I, log out, and user management for admins."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminOnly, AnyRole, SessionDep, SettingsDep
from api.errors import Unauthenticated
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.audit.fields import PrintableStr
from mission.auth import service as auth
from mission.auth.models import Principal, UserCreate, UserRead
from mission.auth.roles import Role
from mission.db import session_scope
from mission.errors import PermissionDenied

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: PrintableStr = Field(min_length=1, max_length=64)
    password: PrintableStr = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    role: Role
    username: str
    expires_at: str | None


@router.post("/login", response_model=LoginResponse, summary="Log in; returns a bearer token (public)")
def login(data: LoginRequest, session: SessionDep, settings: SettingsDep) -> LoginResponse:
    try:
        token, user = auth.login(
            session=session, username=data.username, password=data.password, ttl_s=settings.token_ttl_s
        )
    except PermissionDenied as err:
        # The failed attempt is recorded in its own transaction: this request's is rolled back by the error.
        with session_scope(session.get_bind()) as own:  # type: ignore[arg-type]
            audit.record(session=own, actor=data.username, action="auth.login_failed")
        raise Unauthenticated(str(err)) from None
    audit.record(session=session, actor=user.username, action="auth.login", target=f"token:{token.id}")
    return LoginResponse(
        token=token.token,
        role=user.role,
        username=user.username,
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
    )


@router.get("/me", response_model=Principal, summary="Who the bearer token belongs to")
def me(who: AnyRole) -> Principal:
    return who


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke the token used for this call")
def logout(session: SessionDep, who: AnyRole) -> None:
    if who.token_id is not None:
        auth.revoke_token(session=session, token_id=who.token_id)
    audit.record(session=session, actor=who.username, action="auth.logout")


@router.get("/users", response_model=Page[UserRead], summary="Users (admins)")
def list_users(session: SessionDep, paging: Paging, _who: AdminOnly) -> Page[UserRead]:
    users = auth.list_users(session=session)
    return paging.page(users[paging.offset : paging.offset + paging.limit], len(users))


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, summary="Create a user")
def create_user(data: UserCreate, session: SessionDep, who: AdminOnly) -> UserRead:
    user = auth.create_user(session=session, username=data.username, password=data.password, role=data.role)
    audit.record(
        session=session,
        actor=who.username,
        action="user.create",
        target=f"user:{user.id}",
        details={"username": user.username, "role": user.role.value},
    )
    return user
