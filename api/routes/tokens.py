"""API tokens (admins only): issue one (its secret is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AdminOnly, IdPath, SessionDep
from api.pagination import Page, Paging
from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.models import IssuedToken, TokenCreate, TokenRead

router = APIRouter(prefix="/api/v1/tokens", tags=["auth"])


@router.get("", response_model=Page[TokenRead], summary="List tokens (never their secrets)")
def list_tokens(session: SessionDep, paging: Paging, _who: AdminOnly) -> Page[TokenRead]:
    items, total = auth.list_tokens(session=session, limit=paging.limit, offset=paging.offset)
    return paging.page(items, total)


@router.post("", response_model=IssuedToken, status_code=status.HTTP_201_CREATED, summary="Issue a token")
def create_token(data: TokenCreate, session: SessionDep, who: AdminOnly) -> IssuedToken:
    issued = auth.issue_token(session=session, name=data.name, role=data.role, expires_in_s=data.expires_in_s)
    audit.record(
        session=session,
        actor=who.username,
        action="token.create",
        target=f"token:{issued.id}",
        details={"name": data.name, "role": data.role.value, "expires_in_s": data.expires_in_s},
    )
    return issued


@router.delete("/{token_id}", response_model=TokenRead, summary="Revoke a token")
def revoke_token(token_id: IdPath, session: SessionDep, who: AdminOnly) -> TokenRead:
    token = auth.revoke_token(session=session, token_id=token_id)
    audit.record(session=session, actor=who.username, action="token.revoke", target=f"token:{token_id}")
    return token
