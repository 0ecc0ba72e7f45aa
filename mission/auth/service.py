"""Users and tokens: create, log in, resolve a bearer token to a Principal, revoke."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session, col, func, select

from mission.audit.clock import as_utc, utcnow
from mission.auth.models import ApiToken, IssuedToken, Principal, TokenRead, User, UserRead
from mission.auth.passwords import hash_password, verify_password
from mission.auth.roles import Role
from mission.errors import Conflict, NotFound, PermissionDenied

TOKEN_PREFIX = "swk_"
# A fixed hash to compare against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = hash_password("not-a-password")


def token_digest(token: str) -> str:
    """sha256 hex of a token; tokens are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(*, session: Session, username: str, password: str, role: Role) -> UserRead:
    """A new user; Conflict if the username is taken."""
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=Role(role).value)
    session.add(user)
    session.flush()
    return UserRead.model_validate(user)


def set_password(*, session: Session, username: str, password: str) -> None:
    """Replace a user's password."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()


def get_user(*, session: Session, username: str) -> UserRead | None:
    """The user called ``username``, if any."""
    user = session.exec(select(User).where(User.username == username)).first()
    return UserRead.model_validate(user) if user else None


def authenticate(*, session: Session, username: str, password: str) -> UserRead:
    """The user if the password matches; PermissionDenied (one message for every failure) otherwise."""
    user = session.exec(select(User).where(User.username == username)).first()
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not ok or user.disabled:
        raise PermissionDenied("wrong username or password")
    return UserRead.model_validate(user)


def issue_token(
    *,
    session: Session,
    name: str,
    role: Role,
    user_id: int | None = None,
    expires_in_s: float | None = None,
) -> IssuedToken:
    """A new bearer token; only its hash is stored, the secret is returned once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(seconds=expires_in_s) if expires_in_s else None
    row = ApiToken(
        name=name,
        token_hash=token_digest(secret),
        role=Role(role).value,
        user_id=user_id,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(**TokenRead.model_validate(row).model_dump(), token=secret)


def login(*, session: Session, username: str, password: str, ttl_s: float) -> tuple[IssuedToken, UserRead]:
    """Check the password and issue a session token for the user's role that expires after ``ttl_s``."""
    user = authenticate(session=session, username=username, password=password)
    token = issue_token(
        session=session, name=f"login:{user.username}", role=user.role, user_id=user.id, expires_in_s=ttl_s
    )
    return token, user


def resolve_token(*, session: Session, token: str) -> Principal | None:
    """The Principal behind a bearer token, or None if unknown, revoked, expired or its user is disabled."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
    if row is None or row.revoked:
        return None
    if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
        return None
    if row.user_id is None:
        return Principal(user_id=None, username=f"token:{row.name}", role=Role(row.role), token_id=row.id)
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    # A user's token follows the user's current role, so demoting a user takes effect at once.
    return Principal(user_id=user.id, username=user.username, role=Role(user.role), token_id=row.id)


def list_tokens(*, session: Session, limit: int, offset: int) -> tuple[Sequence[TokenRead], int]:
    """A page of tokens (never their secrets), newest first, and the total count."""
    total = session.exec(select(func.count()).select_from(ApiToken)).one()
    rows = session.exec(select(ApiToken).order_by(col(ApiToken.id).desc()).offset(offset).limit(limit)).all()
    return [TokenRead.model_validate(r) for r in rows], total


def revoke_token(*, session: Session, token_id: int) -> TokenRead:
    """Mark a token revoked; it stops working at once."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    row.revoked = True
    session.add(row)
    session.flush()
    return TokenRead.model_validate(row)


def list_users(*, session: Session) -> list[UserRead]:
    """Every user, by id."""
    return [UserRead.model_validate(u) for u in session.exec(select(User).order_by(col(User.id))).all()]
