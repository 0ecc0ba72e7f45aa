"""Users and tokens: create, log in, resolve a bearer token to a Principal, revoke, manage users."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from mission.audit.clock import as_utc, utcnow
from mission.auth.models import ApiToken, IssuedToken, Principal, TokenKind, TokenRead, User, UserRead
from mission.auth.passwords import hash_password, verify_password
from mission.auth.roles import Role
from mission.errors import Conflict, NotFound, PermissionDenied

TOKEN_PREFIX = "swk_"
# A fixed hash to compare against when the user does not exist, so timing does not reveal usernames.
DUMMY_HASH = hash_password("not-a-password")
# last_used_at is written at most this often per token: a read must not become a write on every request.
TOUCH_INTERVAL_S = 60.0


def token_digest(token: str) -> str:
    """sha256 hex of a token; tokens are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token that goes with a session token (derived, so nothing more is stored)."""
    return hmac.new(token.encode(), b"skywarden-csrf", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class LoginCandidate:
    """What a login needs to check a password, read before the (slow, off-loop) hash comparison."""

    user: UserRead
    password_hash: str


def create_user(*, session: Session, username: str, password: str, role: Role) -> UserRead:
    """A new user; Conflict if the username is taken."""
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise Conflict(
            f"user {username!r} already exists",
            code="auth.user_already_exists",
            params={"username": repr(username)},
        )
    user = User(username=username, password_hash=hash_password(password), role=Role(role).value)
    session.add(user)
    session.flush()
    return UserRead.model_validate(user)


def set_password(*, session: Session, username: str, password: str) -> None:
    """Replace a user's password."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(
            f"user {username!r} does not exist",
            code="auth.user_does_exist",
            params={"username": repr(username)},
        )
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()


def get_user(*, session: Session, username: str) -> UserRead | None:
    """The user called ``username``, if any."""
    user = session.exec(select(User).where(User.username == username)).first()
    return UserRead.model_validate(user) if user else None


def login_candidate(*, session: Session, username: str) -> LoginCandidate | None:
    """The stored credentials of ``username``, if such a user exists."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        return None
    return LoginCandidate(user=UserRead.model_validate(user), password_hash=user.password_hash)


def authenticate(*, session: Session, username: str, password: str) -> UserRead:
    """The user if the password matches; PermissionDenied (one message for every failure) otherwise."""
    user = session.exec(select(User).where(User.username == username)).first()
    ok = verify_password(password, user.password_hash if user else DUMMY_HASH)
    if user is None or not ok or user.disabled:
        raise PermissionDenied("wrong username or password", code="auth.wrong_username_password")
    return UserRead.model_validate(user)


def issue_token(
    *,
    session: Session,
    name: str,
    role: Role,
    user_id: int | None = None,
    expires_in_s: float | None = None,
    kind: TokenKind = TokenKind.machine,
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
        kind=TokenKind(kind).value,
    )
    session.add(row)
    session.flush()
    return IssuedToken(**TokenRead.model_validate(row).model_dump(), token=secret)


def login(*, session: Session, username: str, password: str, ttl_s: float) -> tuple[IssuedToken, UserRead]:
    """Check the password and issue a session token for the user's role that expires after ``ttl_s``."""
    user = authenticate(session=session, username=username, password=password)
    return start_session(session=session, user=user, ttl_s=ttl_s), user


def start_session(*, session: Session, user: UserRead, ttl_s: float) -> IssuedToken:
    """A session token for a user whose password was just checked; it expires after ``ttl_s``."""
    return issue_token(
        session=session,
        name=f"login:{user.username}",
        role=user.role,
        user_id=user.id,
        expires_in_s=ttl_s,
        kind=TokenKind.session,
    )


def _idle_since(row: ApiToken) -> datetime:
    return as_utc(row.last_used_at or row.created_at)


def _token_alive(row: ApiToken, *, now: datetime, idle_timeout_s: float | None) -> bool:
    if row.revoked:
        return False
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        return False
    if idle_timeout_s and row.kind == TokenKind.session.value:
        return (now - _idle_since(row)).total_seconds() < idle_timeout_s
    return True


def resolve_token(
    *, session: Session, token: str, idle_timeout_s: float | None = None, touch: bool = True
) -> Principal | None:
    """The Principal behind a bearer token, or None if unknown, revoked, expired, idle too long (sessions,
    with ``idle_timeout_s``) or its user is disabled. Notes the use (at most once a minute per token)."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
    now = utcnow()
    if row is None or not _token_alive(row, now=now, idle_timeout_s=idle_timeout_s):
        return None
    kind = TokenKind(row.kind)
    if row.user_id is None:
        principal = Principal(
            user_id=None, username=f"token:{row.name}", role=Role(row.role), token_id=row.id, token_kind=kind
        )
    else:
        user = session.get(User, row.user_id)
        if user is None or user.disabled:
            return None
        # A user's token follows the user's current role, so demoting a user takes effect at once.
        principal = Principal(
            user_id=user.id, username=user.username, role=Role(user.role), token_id=row.id, token_kind=kind
        )
    # Often enough that an active session never looks idle, rarely enough that reads stay reads.
    touch_every_s = min(TOUCH_INTERVAL_S, idle_timeout_s / 4) if idle_timeout_s else TOUCH_INTERVAL_S
    if touch and (
        row.last_used_at is None or (now - as_utc(row.last_used_at)).total_seconds() >= touch_every_s
    ):
        row.last_used_at = now
        session.add(row)
        session.flush()
    return principal


def live_token_ids(
    *, session: Session, token_ids: Collection[int], idle_timeout_s: float | None = None
) -> set[int]:
    """Which of ``token_ids`` still authenticate (one query: the check behind long-lived websockets)."""
    if not token_ids:
        return set()
    now = utcnow()
    rows = session.exec(
        select(ApiToken, User)
        .join(User, col(ApiToken.user_id) == col(User.id), isouter=True)
        .where(col(ApiToken.id).in_(list(token_ids)))
    ).all()
    return {
        token.id
        for token, user in rows
        if token.id is not None
        and _token_alive(token, now=now, idle_timeout_s=idle_timeout_s)
        and (token.user_id is None or (user is not None and not user.disabled))
    }


def list_tokens(
    *,
    session: Session,
    limit: int,
    offset: int,
    kind: TokenKind | None = None,
    user_id: int | None = None,
    active: bool | None = None,
) -> tuple[Sequence[TokenRead], int]:
    """A page of tokens (never their secrets), newest first, and the total count.

    ``active=True`` keeps tokens that are neither revoked nor expired; ``False`` only those that are.
    """
    query = select(ApiToken)
    if kind is not None:
        query = query.where(ApiToken.kind == TokenKind(kind).value)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    if active is not None:
        now = utcnow()
        alive = (col(ApiToken.revoked).is_(False)) & (
            col(ApiToken.expires_at).is_(None) | (col(ApiToken.expires_at) > now)
        )
        query = query.where(alive if active else ~alive)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(ApiToken.id).desc()).offset(offset).limit(limit)).all()
    return [TokenRead.model_validate(r) for r in rows], total


def revoke_token(*, session: Session, token_id: int) -> TokenRead:
    """Mark a token revoked; it stops working at once."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(
            f"token {token_id} does not exist", code="auth.token_does_exist", params={"token_id": token_id}
        )
    if not row.revoked:
        row.revoked, row.revoked_at = True, utcnow()
        session.add(row)
        session.flush()
    return TokenRead.model_validate(row)


def revoke_sessions(*, session: Session, user_id: int) -> list[int]:
    """Revoke every live session token of a user; the ids revoked."""
    rows = session.exec(
        select(ApiToken)
        .where(ApiToken.user_id == user_id)
        .where(ApiToken.kind == TokenKind.session.value)
        .where(col(ApiToken.revoked).is_(False))
    ).all()
    now = utcnow()
    for row in rows:
        row.revoked, row.revoked_at = True, now
        session.add(row)
    session.flush()
    return [r.id for r in rows if r.id is not None]


def list_users(*, session: Session) -> list[UserRead]:
    """Every user, by id."""
    return [UserRead.model_validate(u) for u in session.exec(select(User).order_by(col(User.id))).all()]


def page_users(*, session: Session, limit: int, offset: int) -> tuple[list[UserRead], int]:
    """A page of users by id, and the total count."""
    total = session.exec(select(func.count()).select_from(User)).one()
    rows = session.exec(select(User).order_by(col(User.id)).offset(offset).limit(limit)).all()
    return [UserRead.model_validate(u) for u in rows], total


def _user_row(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(
            f"user {user_id} does not exist", code="auth.user_does_exist_2", params={"user_id": user_id}
        )
    return user


def get_user_by_id(*, session: Session, user_id: int) -> UserRead:
    """The user with id ``user_id``; NotFound otherwise."""
    return UserRead.model_validate(_user_row(session, user_id))


def _other_enabled_admins(session: Session, user_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.admin.value)
        .where(col(User.disabled).is_(False))
        .where(User.id != user_id)
    ).one()


def update_user(
    *, session: Session, user_id: int, role: Role | None = None, disabled: bool | None = None
) -> tuple[UserRead, UserRead]:
    """Change a user's role and/or disabled flag; (before, after). Disabling revokes the user's sessions.

    Conflict if the change would leave no enabled admin (nobody could manage users any more).
    """
    user = _user_row(session, user_id)
    before = UserRead.model_validate(user)
    new_role = Role(role).value if role is not None else user.role
    new_disabled = disabled if disabled is not None else user.disabled
    was_admin = user.role == Role.admin.value and not user.disabled
    stays_admin = new_role == Role.admin.value and not new_disabled
    if was_admin and not stays_admin and _other_enabled_admins(session, user_id) == 0:
        raise Conflict(
            f"{user.username} is the last enabled admin; make another admin first",
            code="auth.last_enabled_admin_make",
            params={"username": user.username},
        )
    user.role, user.disabled = new_role, new_disabled
    session.add(user)
    session.flush()
    if new_disabled and not before.disabled:
        revoke_sessions(session=session, user_id=user_id)
    return before, UserRead.model_validate(user)


def reset_password(*, session: Session, user_id: int, password: str) -> list[int]:
    """Set a new password for a user and end their sessions; the ids of the sessions ended."""
    user = _user_row(session, user_id)
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    return revoke_sessions(session=session, user_id=user_id)
