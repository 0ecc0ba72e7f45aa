"""Service settings from the environment (prefix ``SKYWARDEN_``), ``.env`` and an optional settings file.

``SKYWARDEN_SETTINGS_FILE`` may point at a TOML, YAML or JSON file; environment variables override it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from mission.db import DEFAULT_DATABASE_URL

SETTINGS_FILE_ENV = "SKYWARDEN_SETTINGS_FILE"


class Settings(BaseSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="SKYWARDEN_", env_file=".env", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    migrate_on_start: bool = Field(
        default=True, description="run Alembic upgrade to head when the app starts"
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://[user:pass@]host:port; None = no MQTT bridge"
    )
    mqtt_topic_prefix: str = "skywarden"
    mqtt_client_id: str = "skywarden"
    mqtt_telemetry_hz: float = Field(default=1.0, gt=0, le=10, description="per-vehicle telemetry topic rate")
    mqtt_incident_auto_dispatch: bool = Field(
        default=True,
        description="dispatch incidents arriving over MQTT at once, as the API does",
    )
    mqtt_commands_enabled: bool = Field(default=False, description="accept vehicle commands over MQTT")
    mqtt_command_users: dict[str, str] = Field(
        default_factory=dict, description="MQTT username -> skywarden user that its commands run as"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    telemetry_hz: float = Field(default=10.0, gt=0, le=50, description="snapshots per second per vehicle")
    tile_url: str = Field(
        default="",
        description="tile URL template ({z}/{x}/{y}); empty = the offline map (closed networks)",
    )
    fleet_file: Path | None = Field(default=None, description="YAML/JSON fleet to register on start")
    sim_base_port: int = Field(default=14540, ge=1024, le=65000)
    sim_speed: float = Field(default=1.0, gt=0, le=100)
    registry_poll_s: float = Field(default=2.0, gt=0, le=60, description="registry re-read period")
    link_executor_workers: int = Field(default=64, ge=1, le=1024)
    link_loss_timeout_s: float = Field(default=30.0, gt=0)
    battery_reserve_pct: float = Field(default=20.0, ge=0, le=90)
    fence_margin_m: float = Field(default=150.0, ge=0)
    clearance_m: float = Field(default=20.0, ge=0, description="distance every plan keeps from no-fly zones")
    max_alt_m: float = Field(default=120.0, gt=0, le=500, description="altitude ceiling above home")
    return_alt_m: float = Field(default=60.0, gt=0, le=500, description="RTL return altitude the gate models")
    airspace_time_margin_s: float = Field(
        default=600.0, ge=0, description="zones becoming active this long after a flight's end count too"
    )
    dispatch_auto_launch: bool = Field(default=True, description="launch the chosen vehicle without a click")
    wind_speed_m_s: float = Field(default=0.0, ge=0, le=40)
    wind_from_deg: float = Field(default=0.0, ge=0, lt=360)
    token_ttl_s: int = Field(default=12 * 3600, gt=0, description="lifetime of a panel login token")
    admin_password: str | None = Field(default=None, description="password for the seeded admin user")
    docs_enabled: bool = True

    # -- video --
    video_enabled: bool = Field(
        default=True, description="live video, evidence recording and camera commands"
    )
    video_storage_dir: Path = Field(
        default=Path("video"), description="where recordings and snapshots are kept"
    )
    video_segment_s: float = Field(default=10.0, ge=1, le=600, description="length of one recording segment")
    video_retention_days: float = Field(
        default=30.0, gt=0, description="recordings are purged this long after they stop"
    )
    video_observers_allowed: bool = Field(default=False, description="observers may watch live video")
    video_idle_stop_s: float = Field(
        default=5.0, ge=0, le=600, description="stop a stream nobody uses after this"
    )
    video_open_timeout_s: float = Field(
        default=6.0, gt=0, le=60, description="longest wait for a stream to start"
    )
    video_read_timeout_s: float = Field(
        default=4.0, gt=0, le=60, description="no packet for this long = stalled"
    )
    video_rtsp_transport: Literal["tcp", "udp"] = "tcp"
    video_max_viewers: int = Field(default=32, ge=1, le=500, description="viewers per stream")
    video_viewer_stall_s: float = Field(
        default=5.0, gt=0, le=120, description="drop a viewer stuck this long"
    )
    video_auto_record: bool = Field(default=True, description="record a drone's video from its dispatch on")
    video_gimbal_on_scene: bool = Field(
        default=True, description="point the gimbal at the incident on arrival"
    )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"database_url must be sqlite:/// or postgresql+psycopg://, got {url.split(':')[0]!r}"
            )
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings]
        path = os.environ.get(SETTINGS_FILE_ENV)
        if path:
            sources.append(_file_source(settings_cls, Path(path)))
        return tuple(sources)


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if not path.is_file():
        raise FileNotFoundError(f"{SETTINGS_FILE_ENV}={path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    if suffix in {".yaml", ".yml"}:
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    if suffix == ".json":
        return JsonConfigSettingsSource(settings_cls, json_file=path)
    raise ValueError(f"{SETTINGS_FILE_ENV}={path}: use a .toml, .yaml or .json file")
