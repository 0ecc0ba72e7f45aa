"""Service settings from the environment (prefix ``SKYWARDEN_``), ``.env`` and an optional settings file.

``SKYWARDEN_SETTINGS_FILE`` may point at a TOML, YAML or JSON file; environment variables override it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
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
    mqtt_state_interval_s: float = Field(default=5.0, gt=0, description="retained state republish period")
    mqtt_event_queue_max: int = Field(
        default=10_000, ge=1, description="events held while the broker is away"
    )
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
    sim_speed: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="simulated seconds per wall second: `serve --sim` runs its drones this fast and the"
        " service times take-off waits, overwatch and zone windows by it; 1 on real drones",
    )
    px4_bundle: Path | None = Field(
        default=None,
        description="PX4 SITL bundle (holding run-px4-sih) for `serve --px4`; default ../shared/px4-sitl",
    )
    patrol_clock_start: datetime | None = Field(
        default=None,
        description="with sim_speed != 1 the patrol scheduler's simulated clock starts here (default: now)",
    )
    registry_poll_s: float = Field(default=2.0, gt=0, le=60, description="registry re-read period")
    link_executor_workers: int = Field(default=64, ge=1, le=1024)
    link_loss_timeout_s: float = Field(
        default=30.0, gt=0, description="a flight whose vehicle is silent this long is failed"
    )
    reconnect_wait_s: float = Field(
        default=20.0, gt=0, description="how long restart recovery waits for a vehicle to reconnect"
    )
    landed_grace_s: float = Field(
        default=5.0, ge=0, description="a mission younger than this is not judged landed (take-off lag)"
    )
    supervision_tick_s: float = Field(
        default=0.1, gt=0, le=5, description="how often the flight executor checks every flight"
    )
    battery_reserve_pct: float = Field(default=20.0, ge=0, le=90)
    event_alt_m: float = Field(default=50.0, ge=10, le=120, description="large events: flight altitude")
    event_rotate_at_pct: float = Field(
        default=50.0,
        ge=0,
        le=100,
        description="large events and cordons: a drone below this charge is relieved",
    )
    cordon_hold_s: float = Field(
        default=900.0, gt=0, le=7200, description="cordons: how long a station is planned to be held"
    )
    road_layer_file: Path | None = Field(
        default=None,
        description="cordons: a GeoJSON FeatureCollection of road LineStrings (stations where roads cross the"
        " rings); else evenly spaced. The demo district's: mission/cordons/demo_roads.geojson",
    )
    event_spare_min_pct: float = Field(
        default=60.0, ge=0, le=100, description="large events and cordons: least charge of a drone sent out"
    )
    fence_margin_m: float = Field(default=150.0, ge=0)
    clearance_m: float = Field(default=20.0, ge=0, description="distance every plan keeps from no-fly zones")
    max_alt_m: float = Field(default=120.0, gt=0, le=500, description="altitude ceiling above home")
    return_alt_m: float = Field(default=60.0, gt=0, le=500, description="RTL return altitude the gate models")
    airspace_time_margin_s: float = Field(
        default=600.0, ge=0, description="zones becoming active this long after a flight's end count too"
    )
    dispatch_auto_launch: bool = Field(
        default=False,
        description="launch the chosen vehicle without an operator's click (opt-in per deployment)",
    )
    dispatch_auto_launch_max_priority: int = Field(
        default=2, ge=1, le=5, description="with auto-launch on, only incidents this urgent (1 = most) launch"
    )
    dispatch_policy: Literal["first_arrival", "nearest_dock"] = Field(
        default="first_arrival", description="nearest_dock is the baseline the benchmark compares with"
    )
    dispatch_orbit_radius_m: float = Field(default=40.0, gt=5, le=500)
    dispatch_orbit_speed_m_s: float = Field(default=4.0, gt=0, le=20)
    dispatch_arrive_within_m: float = Field(default=20.0, gt=0, le=200)
    dispatch_climb_fraction: float = Field(
        default=0.4, gt=0, le=1, description="head for the scene once this share of the altitude is reached"
    )
    dispatch_fence_margin_m: float = Field(
        default=200.0, ge=0, description="a dispatch flight's fence margin"
    )
    dispatch_relief_margin_s: float = Field(default=90.0, ge=0, description="relief overlap on scene")
    dispatch_preempt_max_priority: int = Field(
        default=3, ge=1, le=5, description="incidents this urgent may pull a drone off its patrol"
    )
    dispatch_min_overwatch_s: float = Field(
        default=300.0, ge=0, description="a drone that can stay this long may start a longer overwatch"
    )
    dispatch_close_after_overhead: bool = Field(
        default=True, description="close an incident when its time is up"
    )
    dispatch_leg_timeout_s: float = Field(default=600.0, gt=0, description="wall seconds a leg may take")
    dispatch_overwatch_period_s: float = Field(default=1.0, gt=0, description="relief loop period")
    dispatch_max_attempts: int = Field(default=2, ge=1, le=10, description="vehicles tried per incident")
    dispatch_takeoff_s: float = Field(default=5.0, ge=0, description="arm to airborne, for ETAs")
    dispatch_climb_rate_m_s: float = Field(default=3.0, gt=0)
    dispatch_descent_rate_m_s: float = Field(default=2.0, gt=0)
    patrol_catch_up_s: float = Field(
        default=300.0, ge=0, description="a patrol run missed by less than this (service down) still runs"
    )
    wind_speed_m_s: float = Field(default=0.0, ge=0, le=40)
    wind_from_deg: float = Field(default=0.0, ge=0, lt=360)
    token_ttl_s: int = Field(default=12 * 3600, gt=0, description="lifetime of a panel login token")
    admin_password: str | None = Field(default=None, description="password for the seeded admin user")
    docs_enabled: bool = False

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
    video_transcode: bool = Field(
        default=True,
        description="re-encode a camera codec browsers cannot play (H.265, MJPEG) as H.264, once per stream",
    )
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

    @model_validator(mode="after")
    def _cluster_needs_postgres(self) -> Settings:
        if self.cluster and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "cluster=true (several instances) needs PostgreSQL for the vehicle leases; database_url is "
                f"{self.database_url.split(':')[0]} (SQLite serves one instance only)"
            )
        if self.cluster_heartbeat_s >= self.cluster_lease_ttl_s / 2:
            raise ValueError(
                f"cluster_heartbeat_s ({self.cluster_heartbeat_s}) must be under half of cluster_lease_ttl_s "
                f"({self.cluster_lease_ttl_s})"
            )
        return self

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

    # -- security --
    mqtt_incident_users: dict[str, str] = Field(
        default_factory=dict,
        description="MQTT username -> skywarden user (dispatcher or admin) its incidents on "
        "{prefix}/incidents/new/{mqtt_user} are reported as; empty = MQTT incident intake off",
    )
    mqtt_refusal_audit_interval_s: float = Field(
        default=60.0, gt=0, description="one audit entry per refused MQTT sender per interval (then a count)"
    )
    login_max_failures_per_account: int = Field(default=5, ge=1, description="failures before a lockout")
    login_max_failures_per_address: int = Field(default=20, ge=1, description="failures before a lockout")
    login_failure_window_s: float = Field(default=900.0, gt=0, description="failures count for this long")
    login_lockout_s: float = Field(default=300.0, gt=0, description="first lockout; doubles per strike")
    login_hash_workers: int = Field(default=2, ge=1, le=16, description="threads checking passwords")
    login_queue_max: int = Field(default=16, ge=0, description="sign-ins waiting for a thread, then 429")
    login_audit_burst: int = Field(default=10, ge=0, description="failed sign-ins audited one by one ...")
    login_audit_interval_s: float = Field(default=10.0, gt=0, description="... per interval; then a summary")
    session_idle_timeout_s: float = Field(
        default=1800.0, gt=0, description="a login session unused this long ends (panel and scripts)"
    )
    session_cookie_secure: bool | None = Field(
        default=None, description="Secure flag on the panel's cookie; None = when the request came over HTTPS"
    )
    token_default_ttl_s: int = Field(
        default=90 * 86400, gt=0, description="lifetime of a machine token issued without expires_in_s"
    )
    ws_auth_timeout_s: float = Field(
        default=5.0, gt=0, description="time to send the websocket's auth message"
    )
    ws_recheck_s: float = Field(
        default=2.0, gt=0, le=5, description="how often open websockets' tokens and users are checked again"
    )
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="larger request bodies get 413")

    # -- several instances (mission/cluster) --
    cluster: bool = Field(
        default=False,
        description="run as one of several instances sharing the fleet (PostgreSQL leases); needs PostgreSQL",
    )
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="this instance's name in the cluster (also its MQTT client id suffix); default host-pid",
    )
    cluster_base_url: str = Field(
        default="",
        max_length=200,
        description="this API as the other instances reach it (http://host:port); default from host, port",
    )
    cluster_lease_ttl_s: float = Field(
        default=5.0, ge=1.0, le=60.0, description="a vehicle lease lapses this long after its last renewal"
    )
    cluster_heartbeat_s: float = Field(
        default=1.0, gt=0, le=20.0, description="lease renewal period (under half the lease ttl)"
    )
    cluster_balance: bool = Field(
        default=True, description="spread vehicles evenly over the live instances (idle ones are handed over)"
    )
    link_port_offset: int = Field(
        default=0,
        ge=0,
        le=30000,
        description="listen on each vehicle's udpin port plus this (several instances on one host)",
    )
    mqtt_shared_group: str = Field(
        default="skywarden",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="clustered: incidents and commands arrive over $share/{group}/..., one instance each",
    )


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
