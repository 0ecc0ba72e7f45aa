"""API tokens (admins only): issue a machine token (secret shown once), list tokens and sessions, revoke.

Every machine token expires (``expires_in_s``, else the service's ``token_default_ttl_s``) and records when it
was last used; revoking one closes the websockets it opened at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, status

from api.deps import AdminOnly, IdPath, SessionDep, SettingsDep
from api.pagination import Page, Paging
from api.ws import end_sockets
from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.models import IssuedToken, TokenCreate, TokenKind, TokenRead

router = APIRouter(prefix="/api/v1/tokens", tags=["auth"])


@router.get("", response_model=Page[TokenRead], summary="List tokens and sessions (never their secrets)")
def list_tokens(
    session: SessionDep,
    paging: Paging,
    _who: AdminOnly,
    kind: Annotated[TokenKind | None, Query(description="machine or session")] = None,
    active: Annotated[bool | None, Query(description="true: neither revoked nor expired")] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="tokens of this user")] = None,
) -> Page[TokenRead]:
    items, total = auth.list_tokens(
        session=session, limit=paging.limit, offset=paging.offset, kind=kind, active=active, user_id=user_id
    )
    return paging.page(items, total)


@router.post("", response_model=IssuedToken, status_code=status.HTTP_201_CREATED, summary="Issue a token")
def create_token(
    data: TokenCreate, session: SessionDep, settings: SettingsDep, who: AdminOnly
) -> IssuedToken:
    expires_in_s = data.expires_in_s or settings.token_default_ttl_s
    issued = auth.issue_token(session=session, name=data.name, role=data.role, expires_in_s=expires_in_s)
    audit.record(
        session=session,
        actor=who.username,
        action="token.create",
        target=f"token:{issued.id}",
        details={"name": data.name, "role": data.role.value, "expires_in_s": expires_in_s},
    )
    return issued


@router.delete("/{token_id}", response_model=TokenRead, summary="Revoke a token (or end a session)")
def revoke_token(
    token_id: IdPath, request: Request, background: BackgroundTasks, session: SessionDep, who: AdminOnly
) -> TokenRead:
    token = auth.revoke_token(session=session, token_id=token_id)
    audit.record(session=session, actor=who.username, action="token.revoke", target=f"token:{token_id}")
    background.add_task(end_sockets, request.app, token_ids=[token_id])
    return token
