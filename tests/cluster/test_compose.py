"""docker/compose.yml's two-instance profile ("ha") against the code as it is (no Docker engine here).

What Docker would only find at run time is checked from the files: every SKYWARDEN_* variable is a setting
(settings ignore unknown ones, so a misspelt name would pass silently), each instance's environment makes
valid settings, the image's command exists, the instances reach each other where they listen, the drones'
MAVLink ports reach both, and the proxy sends requests to both and probes a health URL that exists.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.settings import Settings
from mission.fleet.fleetfile import load_fleet_file

DOCKER = Path(__file__).resolve().parents[2] / "docker"
INSTANCES = ("skywarden", "skywarden-b")
_VAR = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")
# What an operator exports before `docker compose --profile ha up` (docker/README.md).
EXPORTED = {
    "SKYWARDEN_CLUSTER": "true",
    "SKYWARDEN_UPSTREAMS": "skywarden:8000 skywarden-b:8000",
    "SKYWARDEN_MQTT_PASSWORD": "mqtt-secret",
    "SKYWARDEN_ADMIN_PASSWORD": "admin-secret-123",
}


def substitute(value: str, exported: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with ``exported`` as the shell's environment."""

    def one(match: re.Match[str]) -> str:
        name, rest = match.group(1), match.group(2)
        if name in exported:
            return exported[name]
        if "?" in match.group(0):
            raise AssertionError(f"${{{name}}} must be exported: {rest}")
        return rest or ""

    return _VAR.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service]["environment"]
    return {k: substitute(str(v), EXPORTED) for k, v in env.items()}


def image_command() -> list[str]:
    cmd = [line for line in (DOCKER / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    assert len(cmd) == 1
    return list(json.loads(cmd[0][4:]))


def port_range(spec: str) -> tuple[range, range]:
    """'HOST_A-HOST_B:CONT_A-CONT_B/udp' -> (host ports, container ports)."""
    host, container = spec.removesuffix("/udp").split(":")

    def span(text: str) -> range:
        lo, _, hi = text.partition("-")
        return range(int(lo), int(hi or lo) + 1)

    return span(host), span(container)


def test_the_second_instance_runs_only_in_the_ha_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"db", "mqtt", *INSTANCES, "proxy"}
    assert services["skywarden-b"]["profiles"] == ["ha"]
    assert all("profiles" not in services[s] for s in ("db", "mqtt", "skywarden", "proxy"))
    for name in INSTANCES:
        assert set(services[name]["depends_on"]) == {"db", "mqtt"}


@pytest.mark.parametrize("service", INSTANCES)
def test_every_skywarden_variable_is_a_setting(compose: dict[str, Any], service: str) -> None:
    fields = set(Settings.model_fields)
    unknown = [
        key
        for key in environment(compose, service)
        if key.startswith("SKYWARDEN_") and key.removeprefix("SKYWARDEN_").lower() not in fields
    ]
    assert unknown == [], f"{service}: not settings (ignored silently): {unknown}"


@pytest.mark.parametrize("service", INSTANCES)
def test_each_instance_gets_valid_clustered_settings(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("SKYWARDEN_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(DOCKER)  # no .env of the developer's
    for key, value in environment(compose, service).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.cluster is True
    assert settings.database_url.startswith("postgresql+psycopg://") and "@db:5432/" in settings.database_url
    assert settings.mqtt_url is not None and "@mqtt:1883" in settings.mqtt_url


def test_the_instances_have_their_own_names_and_reach_each_other(compose: dict[str, Any]) -> None:
    cmd = image_command()
    assert cmd[:2] == ["skywarden", "serve"]  # [project.scripts] skywarden = "api.cli:app"
    port = cmd[cmd.index("--port") + 1]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    envs = {s: environment(compose, s) for s in INSTANCES}
    ids = {envs[s]["SKYWARDEN_INSTANCE_ID"] for s in INSTANCES}
    assert len(ids) == 2  # one MQTT client id and one lease owner name each
    for service in INSTANCES:
        assert envs[service]["SKYWARDEN_CLUSTER_BASE_URL"] == f"http://{service}:{port}"
        assert compose["services"][service]["expose"] == [port]
        assert all(p.endswith("/udp") for p in compose["services"][service]["ports"])  # HTTP: proxy only
    upstreams = EXPORTED["SKYWARDEN_UPSTREAMS"].split()
    assert upstreams == [f"{s}:{port}" for s in INSTANCES]
    assert compose["services"]["proxy"]["environment"]["SKYWARDEN_UPSTREAMS"].endswith(f"skywarden:{port}}}")


def test_the_cli_has_what_the_image_runs() -> None:
    import inspect

    from api import cli

    params = inspect.signature(cli.serve).parameters
    cmd = image_command()
    options = [a.removeprefix("--").replace("-", "_") for a in cmd[2:] if a.startswith("--")]
    assert set(options) <= set(params), options
    assert "instance_id" in params


def test_the_drones_reach_both_instances_on_the_fleet_files_ports(compose: dict[str, Any]) -> None:
    spans = {s: port_range(compose["services"][s]["ports"][0]) for s in INSTANCES}
    (host_a, cont_a), (host_b, cont_b) = spans["skywarden"], spans["skywarden-b"]
    assert cont_a == cont_b  # the same container ports: the fleet file's URLs hold in both containers
    assert not set(host_a) & set(host_b)  # distinct host ports: a router streams to both
    assert len(host_a) == len(cont_a) and len(host_b) == len(cont_b)
    for service in INSTANCES:
        mount = compose["services"][service]["volumes"][0].split(":")
        assert (DOCKER / mount[0]).is_file() and mount[1] == "/etc/skywarden/fleet.yaml"
        assert environment(compose, service)["SKYWARDEN_FLEET_FILE"] == mount[1]
    for vehicle in load_fleet_file(DOCKER / "fleet.example.yaml"):
        match = re.match(r"^udpin://0\.0\.0\.0:(\d+)$", vehicle.connection_url)
        assert match and int(match.group(1)) in cont_a, vehicle.connection_url


def test_the_proxy_balances_over_both_and_probes_a_real_health_url() -> None:
    caddy = (DOCKER / "Caddyfile").read_text()
    assert "reverse_proxy {$SKYWARDEN_UPSTREAMS:skywarden:8000}" in caddy
    health = re.search(r"health_uri (\S+)", caddy)
    assert health is not None
    from api.app import create_app

    paths = {getattr(r, "path", None) for r in create_app(Settings(database_url="sqlite://")).routes}
    assert health.group(1) in paths
