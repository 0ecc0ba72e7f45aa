"""Plain ASGI middleware: security headers on every response, and a cap on request body size.

The panel runs under a Content-Security-Policy without inline script or style and without eval, so a name
that slipped through as HTML still could not run; the API's responses are never cached or framed.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PREFIXES = ("/api/v1/docs",)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def tile_source(tile_url: str) -> str | None:
    """The CSP source of a tile URL template (``https://{s}.tile.example`` -> ``https://*.tile.example``)."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "x-subdomain"))
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.replace('x-subdomain', '*')}"


def panel_csp(*, tile_url: str = "") -> str:
    """The policy for the panel and the API: our own files only, nothing inline, no eval, never framed."""
    img = " ".join(filter(None, ["'self'", "data:", "blob:", tile_source(tile_url)]))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {img}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


# Swagger UI (only when docs_enabled) is an inline script loading its bundle from a CDN.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds CSP, nosniff, no-referrer, no framing and (for the API) no-store to every HTTP response."""

    def __init__(self, app: ASGIApp, *, tile_url: str = "") -> None:
        self.app = app
        self.csp = panel_csp(tile_url=tile_url).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP.encode() if path.startswith(DOCS_PREFIXES) else self.csp
        extra = [
            (b"content-security-policy", csp),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if path.startswith("/api/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before the app reads them (declared or streamed)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(send, "Content-Length is not a number", status=400, code="bad_request")
                    return
                if declared > self.max_bytes:
                    await self._refuse(send, f"request body of {declared} bytes is over the limit")
                    return
        # Read the (possibly chunked) body up to the limit, then replay it to the app.
        chunks: list[Message] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)
                break
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                await self._refuse(send, "request body is over the limit")
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if chunks:
                return chunks.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(
        self, send: Send, message: str, *, status: int = 413, code: str = "payload_too_large"
    ) -> None:
        text = message if status != 413 else f"{message} of {self.max_bytes} bytes"
        body = json.dumps({"error": {"code": code, "message": text}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
