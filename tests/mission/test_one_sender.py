"""Only the Commander sends commands to vehicles: no other code calls a link's (or camera's) commands.

The rule "audited before the vehicle is commanded" holds by construction only if every command goes
through ``mission/flights/commander.py``. This reads the source of every module outside the link layer and
fails on any call of a VehicleLink command on something that looks like a link or a camera.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "arm",
    "disarm",
    "takeoff",
    "upload_mission",
    "clear_mission",
    "start_mission",
    "pause",
    "resume",
    "hold",
    "goto",
    "orbit",
    "set_speed",
    "return_to_launch",
    "land",
    "set_actuator",
    "upload_geofence",
    "take_photo",
    "start_video",
    "stop_video",
    "point_at",
    "point_angles",
}
# The link layer implements the commands; the Commander (and the command values it sends) call them.
ALLOWED = {"mission/flights/commander.py", "mission/video/commands.py"}


def offenders() -> list[str]:
    found = []
    for package in ("mission", "api"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("mission/link/") or rel in ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                receiver = ast.unparse(node.func.value).lower()
                if node.func.attr in COMMANDS and ("link" in receiver or "camera" in receiver):
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_only_the_commander_commands_vehicles() -> None:
    assert offenders() == []


def test_the_check_finds_a_direct_command() -> None:
    source = "async def f(fleet):\n    await fleet.link(1).goto(1, 2, 3)\n"
    calls = [
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in COMMANDS
    ]
    assert calls and "link" in ast.unparse(calls[0].func.value)
