"""Users, passwords and tokens: secrets never stored, tokens expire and revoke."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from mission.auth import service as auth
from mission.auth.models import ApiToken, User
from mission.auth.passwords import hash_password, verify_password
from mission.auth.roles import Role, parse_role
from mission.errors import Conflict, PermissionDenied


def test_password_hash_round_trip() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert hash_password("correct horse") != stored  # salted
    assert not verify_password("x", "garbage")


def test_login_issues_an_expiring_token_for_the_users_role(session: Session) -> None:
    auth.create_user(session=session, username="pia", password="s3cret!", role=Role.pilot)
    token, user = auth.login(session=session, username="pia", password="s3cret!", ttl_s=3600)
    assert user.role is Role.pilot
    principal = auth.resolve_token(session=session, token=token.token)
    assert principal is not None and (principal.username, principal.role) == ("pia", Role.pilot)
    # Only the hash is stored.
    rows = session.exec(select(ApiToken)).all()
    assert [r.token_hash for r in rows] == [auth.token_digest(token.token)]
    assert token.token not in str(session.exec(select(User)).one())


def test_wrong_password_and_unknown_user_look_the_same(session: Session) -> None:
    auth.create_user(session=session, username="pia", password="s3cret!", role=Role.pilot)
    for username, password in [("pia", "nope"), ("ghost", "s3cret!")]:
        with pytest.raises(PermissionDenied, match=r"^wrong username or password$"):
            auth.login(session=session, username=username, password=password, ttl_s=60)
    with pytest.raises(Conflict, match="'pia' already exists"):
        auth.create_user(session=session, username="pia", password="x", role=Role.admin)


def test_expired_revoked_and_unknown_tokens_resolve_to_nobody(session: Session) -> None:
    short = auth.issue_token(session=session, name="short", role=Role.observer, expires_in_s=0.2)
    keep = auth.issue_token(session=session, name="ci", role=Role.dispatcher)
    session.commit()
    assert auth.resolve_token(session=session, token=short.token) is not None
    time.sleep(0.3)
    assert auth.resolve_token(session=session, token=short.token) is None
    principal = auth.resolve_token(session=session, token=keep.token)
    assert principal is not None and principal.username == "token:ci" and principal.user_id is None
    auth.revoke_token(session=session, token_id=keep.id)
    assert auth.resolve_token(session=session, token=keep.token) is None
    assert auth.resolve_token(session=session, token="swk_made-up") is None


def test_a_users_tokens_follow_the_users_role(session: Session) -> None:
    auth.create_user(session=session, username="dan", password="pw-1234", role=Role.dispatcher)
    token, _ = auth.login(session=session, username="dan", password="pw-1234", ttl_s=60)
    row = session.exec(select(User).where(User.username == "dan")).one()
    row.role = Role.observer.value
    session.add(row)
    session.commit()
    assert auth.resolve_token(session=session, token=token.token).role is Role.observer  # type: ignore[union-attr]
    row.disabled = True
    session.add(row)
    session.commit()
    assert auth.resolve_token(session=session, token=token.token) is None


def test_parse_role_names_the_choices() -> None:
    assert parse_role("pilot") is Role.pilot
    with pytest.raises(ValueError, match="expected one of admin, pilot, dispatcher, observer"):
        parse_role("captain")
