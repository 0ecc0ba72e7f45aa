"""Fleet files: the registry declared in YAML or JSON, ``{"vehicles": [...]}`` or a bare list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mission.fleet.models import VehicleCreate


class FleetFileError(ValueError):
    """A fleet file could not be read; the message names the file, the entry and the field."""


def parse_fleet(data: Any, *, source: str = "fleet file") -> list[VehicleCreate]:
    """Validate already-loaded fleet data into vehicles; duplicate names, or sysids on one URL, are errors."""
    entries = data.get("vehicles") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise FleetFileError(f"{source}: expected a list of vehicles or a mapping with a 'vehicles' list")
    vehicles: list[VehicleCreate] = []
    for i, entry in enumerate(entries):
        try:
            vehicles.append(VehicleCreate.model_validate(entry))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            label = entry.get("name") if isinstance(entry, dict) else None
            raise FleetFileError(
                f"{source}: vehicle #{i}{f' ({label})' if label else ''}: {where}: {first['msg']}"
            ) from err
    seen_names: dict[str, int] = {}
    seen_links: dict[tuple[str, int], int] = {}
    for i, v in enumerate(vehicles):
        if v.name in seen_names:
            raise FleetFileError(f"{source}: vehicles #{seen_names[v.name]} and #{i} share name {v.name!r}")
        if (v.connection_url, v.sysid) in seen_links:
            earlier = seen_links[(v.connection_url, v.sysid)]
            raise FleetFileError(
                f"{source}: vehicles #{earlier} and #{i} share sysid {v.sysid} on {v.connection_url}"
            )
        seen_names[v.name] = i
        seen_links[(v.connection_url, v.sysid)] = i
    return vehicles


def load_fleet_file(path: str | Path) -> list[VehicleCreate]:
    """Read and validate a fleet file (.yaml/.yml or .json)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FleetFileError(f"{path}: cannot read fleet file: {err.strerror}") from err
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise FleetFileError(f"{path}: fleet file must end in .yaml, .yml or .json")
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise FleetFileError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {err}") from err
    return parse_fleet(data, source=str(path))
