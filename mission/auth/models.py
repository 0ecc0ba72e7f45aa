"""Users (panel login) and API tokens, both stored without their secrets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from mission.audit.clock import UtcDatetime, utcnow
from mission.audit.fields import PrintableStr
from mission.auth.roles import Role

MIN_PASSWORD_LEN = 8
MAX_TOKEN_TTL_S = 10 * 365 * 86400


class TokenKind(StrEnum):
    """A machine token (issued by an admin for another system) or a login session (panel or script)."""

    machine = "machine"
    session = "session"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=256)
    role: str = Field(max_length=16)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    locale: str | None = Field(
        default=None, max_length=8
    )  # the panel's language (zh-CN, en); None = browser's


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    role: str = Field(max_length=16)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked: bool = Field(default=False)
    kind: str = Field(default=TokenKind.machine.value, max_length=16, index=True)
    last_used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Principal(BaseModel):
    """Who is calling: a user (panel login or a user's token) or a standalone API token."""

    model_config = ConfigDict(frozen=True)

    user_id: int | None
    username: str
    role: Role
    token_id: int | None = None
    token_kind: TokenKind | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PrintableStr = PydField(min_length=1, max_length=100)
    role: Role
    expires_in_s: int | None = PydField(
        default=None, gt=0, le=MAX_TOKEN_TTL_S, description="lifetime; omitted = the service's default"
    )


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    user_id: int | None
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    revoked: bool
    kind: TokenKind
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class IssuedToken(TokenRead):
    """A token as created: the only time its secret is shown."""

    token: str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = PydField(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: PrintableStr = PydField(min_length=MIN_PASSWORD_LEN, max_length=256)
    role: Role


class UserUpdate(BaseModel):
    """An admin's change to a user: a new role, or disabled / re-enabled."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: PrintableStr = PydField(min_length=MIN_PASSWORD_LEN, max_length=256)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    disabled: bool
    created_at: UtcDatetime
