"""The web panel: ``/`` (index.html), its modules and CSS at ``/static``, Leaflet at ``/static/leaflet``.

Files are served by plain routes rather than StaticFiles mounts so that including ``router`` is all an app
needs; paths are resolved inside their directory only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xstatic.pkg.leaflet as leaflet_pkg
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from mission.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
LEAFLET_DIR = Path(leaflet_pkg.BASE_DIR).resolve()

router = APIRouter(tags=["panel"], include_in_schema=False)

_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".map": "application/json",
    ".json": "application/json",
    ".html": "text/html",
}


def _file_in(root: Path, relative: str) -> FileResponse:
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFound(
            f"no panel file {relative!r}", code="api.panel.panel_file", params={"relative": repr(relative)}
        )
    return FileResponse(
        target,
        media_type=_MEDIA_TYPES.get(target.suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-cache"},
    )


def panel_config(request: Request) -> dict[str, Any]:
    """What the panel needs to know before login: the tile URL (empty = no tiles) and the version."""
    settings = getattr(request.app.state, "settings", None)
    return {"tile_url": getattr(settings, "tile_url", "") or "", "version": request.app.version}


@router.get("/", response_class=HTMLResponse)
def index() -> FileResponse:
    """The panel's single page."""
    return _file_in(STATIC_DIR, "index.html")


@router.get("/panel/config.json")
def config(request: Request) -> dict[str, Any]:
    """Public panel configuration."""
    return panel_config(request)


@router.get("/static/leaflet/{path:path}")
def leaflet_file(path: str) -> FileResponse:
    """Leaflet's own files, straight from the xstatic-leaflet package."""
    return _file_in(LEAFLET_DIR, path)


@router.get("/static/{path:path}")
def static_file(path: str) -> FileResponse:
    """The panel's modules, styles and images."""
    return _file_in(STATIC_DIR, path)
