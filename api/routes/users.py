"""Users (admins only): list, create, change role, disable / re-enable, reset a password, end sessions.

Every change is audited. Disabling a user, resetting their password or ending their sessions revokes their
session tokens and closes their live websockets at once; the last enabled admin cannot be demoted or disabled.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, status
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import AdminOnly, IdPath, SessionDep
from api.pagination import Page, Paging
from api.ws import end_sockets
from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.models import PasswordReset, Principal, UserCreate, UserRead, UserUpdate
from mission.errors import BadRequest

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class SessionsEnded(BaseModel):
    user_id: int
    revoked_token_ids: list[int]


def create(*, data: UserCreate, session: Session, who: Principal) -> UserRead:
    """Create a user and audit it (shared with the old ``POST /api/v1/auth/users``)."""
    user = auth.create_user(session=session, username=data.username, password=data.password, role=data.role)
    audit.record(
        session=session,
        actor=who.username,
        action="user.create",
        target=f"user:{user.id}",
        details={"username": user.username, "role": user.role.value},
    )
    return user


@router.get("", response_model=Page[UserRead], summary="List users")
def list_users(session: SessionDep, paging: Paging, _who: AdminOnly) -> Page[UserRead]:
    items, total = auth.page_users(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page(items, total)


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED, summary="Create a user")
def create_user(data: UserCreate, session: SessionDep, who: AdminOnly) -> UserRead:
    return create(data=data, session=session, who=who)


@router.get("/{user_id}", response_model=UserRead, summary="One user")
def get_user(user_id: IdPath, session: SessionDep, _who: AdminOnly) -> UserRead:
    return auth.get_user_by_id(session=session, user_id=user_id)


@router.patch("/{user_id}", response_model=UserRead, summary="Change a user's role, or disable / re-enable")
def update_user(
    user_id: IdPath,
    data: UserUpdate,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    who: AdminOnly,
) -> UserRead:
    if data.role is None and data.disabled is None:
        raise BadRequest(
            "nothing to change: give role and/or disabled", code="api.users.nothing_change_give_role"
        )
    before, after = auth.update_user(session=session, user_id=user_id, role=data.role, disabled=data.disabled)
    target = f"user:{user_id}"
    if before.role != after.role:
        audit.record(
            session=session,
            actor=who.username,
            action="user.role_change",
            target=target,
            details={"username": after.username, "from": before.role.value, "to": after.role.value},
        )
    if before.disabled != after.disabled:
        action = "user.disable" if after.disabled else "user.enable"
        audit.record(
            session=session,
            actor=who.username,
            action=action,
            target=target,
            details={"username": after.username},
        )
        if after.disabled:
            background.add_task(end_sockets, request.app, user_ids=[user_id])
    return after


@router.post(
    "/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Reset a user's password (ends their sessions)",
)
def reset_password(
    user_id: IdPath,
    data: PasswordReset,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    who: AdminOnly,
) -> None:
    ended = auth.reset_password(session=session, user_id=user_id, password=data.password)
    audit.record(
        session=session,
        actor=who.username,
        action="user.password_reset",
        target=f"user:{user_id}",
        details={"sessions_ended": len(ended)},
    )
    background.add_task(end_sockets, request.app, token_ids=ended)


@router.delete("/{user_id}/sessions", response_model=SessionsEnded, summary="End every session of a user")
def end_sessions(
    user_id: IdPath, request: Request, background: BackgroundTasks, session: SessionDep, who: AdminOnly
) -> SessionsEnded:
    auth.get_user_by_id(session=session, user_id=user_id)
    ended = auth.revoke_sessions(session=session, user_id=user_id)
    audit.record(
        session=session,
        actor=who.username,
        action="user.sessions_end",
        target=f"user:{user_id}",
        details={"token_ids": ended},
    )
    background.add_task(end_sockets, request.app, token_ids=ended)
    return SessionsEnded(user_id=user_id, revoked_token_ids=ended)
