"""The one place where domain errors become HTTP responses, all with one body shape.

``{"error": {"code": "not_found", "message": "vehicle 7 does not exist", "where": <optional location>}}``
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from flightplans.errors import PlanningError
from mission.errors import (
    AirspaceViolation,
    BadRequest,
    Conflict,
    InvalidTransition,
    LinkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    SkywardenError,
    VehicleUnavailable,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
DOMAIN_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (InvalidTransition, 409, "invalid_transition"),
    (Conflict, 409, "conflict"),
    (AirspaceViolation, 422, "airspace_violation"),
    (PermissionDenied, 403, "forbidden"),
    (VehicleUnavailable, 409, "vehicle_unavailable"),
    (LinkError, 503, "link_error"),
    (PlanningError, 422, "planning_error"),
    (BadRequest, 422, "bad_request"),
    (RateLimited, 429, "too_many_requests"),
    (SkywardenError, 400, "bad_request"),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


class Unauthenticated(Exception):
    """No or an invalid bearer token -> 401 (a transport concern, so it lives here, not in the domain)."""

    def __init__(
        self, message: str, *, code: str | None = None, params: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


def error_body(code: str, message: str, where: str | None = None, **extra: Any) -> dict[str, Any]:
    """The error body every response uses."""
    error: dict[str, Any] = {"code": code, "message": message}
    if where is not None:
        error["where"] = where
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    parts = []
    for err in errors[:5]:
        where = _loc(err.get("loc", ()))
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    first_where = _loc(errors[0].get("loc", ())) if errors else None
    return "; ".join(parts) + more, first_where or None


def domain_status(exc: Exception) -> tuple[int, str]:
    """The HTTP status and error code for a domain error."""
    for cls, status, code in DOMAIN_STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on ``app``."""

    @app.exception_handler(SkywardenError)
    @app.exception_handler(PlanningError)
    async def _domain(_request: Request, exc: Exception) -> JSONResponse:
        status, code = domain_status(exc)
        # A stable name of the message and its figures: the panel shows it in the user's language.
        extra: dict[str, Any] = _message(getattr(exc, "code", None) or code, getattr(exc, "params", None))
        if isinstance(exc, SkywardenError) and exc.details:
            extra["details"] = [_jsonable(v) for v in exc.details]
        if isinstance(exc, AirspaceViolation) and exc.violations:
            extra["details"] = [_jsonable(v) for v in exc.violations]
        if isinstance(exc, LinkError):
            extra["vehicle_id"], extra["action"] = exc.vehicle_id, exc.action
        where = str(exc.where) if isinstance(exc, PlanningError) and exc.where is not None else None
        headers = None
        if isinstance(exc, RateLimited):
            extra["retry_after_s"] = exc.retry_after_s
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(
            error_body(code, str(exc) or code, where, **extra), status_code=status, headers=headers
        )

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
        extra = _message(getattr(exc, "code", None) or "unauthenticated", getattr(exc, "params", None))
        return JSONResponse(
            error_body("unauthenticated", str(exc), **extra),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        message, where = _validation_message(errors)
        extra = _validation_code(errors, message)
        return JSONResponse(error_body("validation_error", message, where, **extra), status_code=422)

    @app.exception_handler(ValidationError)
    async def _model_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)
        errors = list(exc.errors())
        message, where = _validation_message(errors)  # type: ignore[arg-type]
        extra = _validation_code(errors, message)  # type: ignore[arg-type]
        return JSONResponse(error_body("validation_error", message, where, **extra), status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: Exception) -> JSONResponse:
        log.info("integrity error: %s", exc)
        return JSONResponse(
            error_body(
                "conflict",
                "the change clashes with stored data (a duplicate or a dependent record)",
                **_message("db.conflict"),
            ),
            status_code=409,
        )

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        log.info("value out of the database's range: %s", exc)
        return JSONResponse(
            error_body(
                "validation_error", "a value is out of range for the database", **_message("db.out_of_range")
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            error_body(code, str(exc.detail), **_message(code)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal_error", "internal error; see the service log", **_message("internal_error")),
            status_code=500,
        )


# Pydantic's error types the panel words itself (msg.validation.<type>); any other is "validation_error".
VALIDATION_TYPES = frozenset(
    {
        "missing",
        "extra_forbidden",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "string_too_short",
        "string_too_long",
        "too_short",
        "too_long",
        "string_type",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "finite_number",
        "bool_type",
        "bool_parsing",
        "list_type",
        "dict_type",
        "model_type",
        "model_attributes_type",
        "enum",
        "literal_error",
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "string_pattern_mismatch",
        "json_invalid",
        "json_type",
        "value_error",
        "union_tag_invalid",
        "union_tag_not_found",
        "multiple_of",
        "timezone_aware",
        "uuid_parsing",
        "url_parsing",
    }
)


def _message(code: str, params: dict[str, object] | None = None) -> dict[str, Any]:
    """The stable code of the message and its figures (the panel translates ``msg.<code>``/``err.<code>``)."""
    return {"message_code": code, "message_params": _jsonable(dict(params or {}))}


def _validation_code(errors: list[dict[str, Any]], message: str) -> dict[str, Any]:
    """The first error's pydantic type as the code, its field and limits as figures, the whole text too."""
    if not errors:
        return _message("validation_error", {"reason": message})
    first = errors[0]
    kind = str(first.get("type", ""))
    params: dict[str, object] = {str(k): str(v) for k, v in (first.get("ctx") or {}).items()}
    params.update(
        field=_loc(first.get("loc", ())) or "-",
        reason=str(first.get("msg", "")).removeprefix("Value error, "),
        more=len(errors) - 1,
    )
    return _message(f"validation.{kind}" if kind in VALIDATION_TYPES else "validation_error", params)


def _jsonable(value: object) -> Any:
    try:
        return jsonable_encoder(value)
    except (TypeError, ValueError):
        return str(value)
