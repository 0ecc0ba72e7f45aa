"""``skywarden`` CLI entry for the browser tests: the same command, with the panel router included.

``api.app.ROUTERS`` is owned by the mission-core helper; until it lists ``api.routes.panel`` this adds it,
afterwards it changes nothing.
"""

from __future__ import annotations

import sys

import api.app
from api.cli import app

PANEL = "api.routes.panel"

if __name__ == "__main__":
    if PANEL not in api.app.ROUTERS:
        api.app.ROUTERS = (*api.app.ROUTERS, PANEL)
    sys.argv = ["skywarden", *sys.argv[1:]]
    app()
