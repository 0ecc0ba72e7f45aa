"""Request dependencies: the database session, the runtime, the caller and the role guard.

Every mutating route declares who may call it with ``require_roles(...)``; the role-matrix test reads
``allowed_roles`` off these dependencies, so a new route is covered as soon as it exists.

A caller authenticates with ``Authorization: Bearer <token>`` (scripts, other systems) or with the panel's
HttpOnly session cookie; with the cookie, every mutating request must also carry ``X-CSRF-Token`` (the value
``POST /api/v1/auth/session`` and ``GET /api/v1/auth/me`` return), which a cross-site page cannot read.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.errors import Unauthenticated
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.login import LoginGuard
from mission.auth.models import Principal
from mission.auth.roles import ALL_ROLES, Role
from mission.db import session_scope
from mission.errors import LinkError, PermissionDenied
from mission.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="an API token or the token from POST /api/v1/auth/login")

SESSION_COOKIE = "skywarden_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request: committed when the route returns, rolled back if it raises."""
    with session_scope(request.app.state.engine) as session:
        yield session


def get_runtime(request: Request) -> Runtime:
    """The running Runtime (links, fleet manager, telemetry hub); 503 while it is not up."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise LinkError("the vehicle runtime is not running", code="api.deps.vehicle_runtime_running")
    return runtime


def get_login_guard(request: Request) -> LoginGuard:
    """The app's sign-in guard (throttling, off-loop hashing, batched audit); 503 while it is not up."""
    guard = getattr(request.app.state, "login_guard", None)
    if not isinstance(guard, LoginGuard):
        raise LinkError(
            "sign-in is not available while the service starts or stops",
            code="api.deps.sign_available_while_service",
        )
    return guard


def client_address(request: Request) -> str:
    """The caller's address (behind the reverse proxy: the forwarded one uvicorn trusts)."""
    return request.client.host if request.client else "unknown"


def principal_for_token(
    engine: Engine, token: str | None, *, idle_timeout_s: float | None = None
) -> Principal:
    """The Principal behind ``token``; Unauthenticated if there is none (also for websockets)."""
    if not token:
        raise Unauthenticated(
            "missing credentials (Authorization: Bearer <token>, or the panel's session cookie)",
            code="api.deps.missing_credentials_authorization_bearer",
        )
    with session_scope(engine) as session:
        principal = auth.resolve_token(session=session, token=token, idle_timeout_s=idle_timeout_s)
    if principal is None:
        raise Unauthenticated(
            "invalid, expired, idle or revoked token", code="api.deps.invalid_expired_idle_revoked"
        )
    return principal


def idle_timeout_s(app_state: Any) -> float | None:
    """The session idle timeout of the app's settings (None for an app without settings)."""
    settings = getattr(app_state, "settings", None)
    return getattr(settings, "session_idle_timeout_s", None)


def request_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> tuple[str | None, bool]:
    """The caller's token and whether it came from the session cookie (the bearer header wins)."""
    if credentials and credentials.scheme.lower() == "bearer":
        return credentials.credentials, False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Whoever the bearer token or session cookie belongs to; 401 without a valid one, 403 for a cookie
    request that changes something without the CSRF header (looked up once per request)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token, from_cookie = request_token(request, credentials)
    principal = principal_for_token(
        request.app.state.engine, token, idle_timeout_s=idle_timeout_s(request.app.state)
    )
    if from_cookie and token and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), auth.csrf_token(token).encode()):
            raise PermissionDenied(
                f"missing or wrong {CSRF_HEADER} header: required on changes made with the session cookie",
                code="api.deps.missing_wrong_header_required",
                params={"CSRF_HEADER": CSRF_HEADER},
            )
    request.state.principal = principal
    request.state.session_token = token if from_cookie else None
    return principal


def _check_role(principal: Principal, allowed: frozenset[Role]) -> Principal:
    if principal.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDenied(
            f"role {principal.role.value} may not do this; allowed roles: {names}",
            code="api.deps.role_may_do_allowed",
            params={"value": principal.role.value, "names": names},
        )
    return principal


def require_roles(*roles: Role | str) -> Callable[..., Principal]:
    """A dependency that lets ``roles`` (and always admin) through and refuses everyone else with 403."""
    allowed = frozenset(Role(r) for r in roles) | {Role.admin}

    def _require(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return _check_role(principal, allowed)

    _require.allowed_roles = allowed  # type: ignore[attr-defined]
    return _require


def route_roles(dependant: Dependant) -> frozenset[Role] | None:
    """The roles the first ``require_roles`` guard found in a route's dependency tree lets through."""
    for dep in dependant.dependencies:
        found = allowed_roles_of(dep.call) or route_roles(dep)
        if found is not None:
            return found
    return None


_UNSET = object()


def guard_first(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Router-level: the route's role check before any of its other dependencies (runtime, body, lookups).

    A route lists its parameters in any order; this makes 401/403 come before a 503 or 404 regardless.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = getattr(route, "_skywarden_roles", _UNSET)
    if allowed is _UNSET:
        allowed = route_roles(dependant)
        route._skywarden_roles = allowed  # type: ignore[union-attr]  # computed once per route
    if allowed is not None:
        _check_role(current_principal(request, credentials), allowed)  # type: ignore[arg-type]


def allowed_roles_of(dependency: Any) -> frozenset[Role] | None:
    """The roles a ``require_roles`` dependency lets through, or None for any other callable."""
    return getattr(dependency, "allowed_roles", None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
AnyRole = Annotated[Principal, Depends(require_roles(*ALL_ROLES))]
AdminOnly = Annotated[Principal, Depends(require_roles(Role.admin))]

# Row ids in paths: positive and within a 32-bit INTEGER column, so a huge id is a 422, not a database error.
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="row id")]
