"""The ``skywarden`` command: serve (optionally with simulated drones), migrate, manage tokens and users."""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.engine import Engine

from api import migrations
from api.children import Children
from api.settings import Settings
from mission.auth import service as auth
from mission.auth.roles import Role, parse_role
from mission.db import make_engine, session_scope
from mission.errors import Conflict

if TYPE_CHECKING:
    from sim.px4sitl import Px4Instance

app = typer.Typer(help="skywarden: drone patrol mission control", no_args_is_help=True)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
token_app = typer.Typer(help="API tokens", no_args_is_help=True)
user_app = typer.Typer(help="panel users", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
evidence_app = typer.Typer(help="video evidence", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")

DEMO_ADMIN = ("admin", "admin")


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


def _migrated_engine(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    migrations.upgrade(engine)
    return engine


def ensure_admin(settings: Settings, *, demo_login: bool) -> None:
    """Create the admin user if there is no user yet, printing its password once."""
    engine = _migrated_engine(settings)
    try:
        with session_scope(engine) as session:
            if auth.list_users(session=session):
                return
            if demo_login:
                username, password = DEMO_ADMIN
            else:
                username, password = "admin", settings.admin_password or secrets.token_urlsafe(12)
            auth.create_user(session=session, username=username, password=password, role=Role.admin)
    finally:
        engine.dispose()
    if demo_login:
        bar = "!" * 78
        typer.secho(
            f"{bar}\n!! DEMO LOGIN admin/admin: anyone who reaches this port can fly your drones.\n"
            f"!! Use it on a local machine only; never with --host 0.0.0.0 on a network.\n{bar}",
            fg=typer.colors.RED,
            bold=True,
            err=True,
        )
    elif settings.admin_password:
        typer.echo("created user 'admin' with the password from SKYWARDEN_ADMIN_PASSWORD", err=True)
    else:
        typer.secho(
            f"created user 'admin' with password: {password}\n(shown once; change it with "
            "`skywarden user password admin`)",
            fg=typer.colors.YELLOW,
            err=True,
        )


def seed_demo(settings: Settings, *, vehicles: int) -> None:
    """Seed the demo district's zones and ``vehicles`` simulated drones (those not already there)."""
    from mission import scenario
    from mission.audit import service as audit

    engine = _migrated_engine(settings)
    try:
        with session_scope(engine) as session:
            result = scenario.seed(session=session, vehicle_count=vehicles, base_port=settings.sim_base_port)
            if result.zones_created or result.vehicles_created:
                audit.record(
                    session=session,
                    actor="system:seed",
                    action="scenario.seed",
                    details={"zones": result.zones_created, "vehicles": result.vehicles_created},
                )
    finally:
        engine.dispose()
    typer.echo(
        f"demo scenario: {len(result.zones_created)} zones and {len(result.vehicles_created)} vehicles added",
        err=True,
    )


def sim_command(
    *, base_port: int, speed: float, homes: list[tuple[float, float, float]], camera_world: str | None = None
) -> list[str]:
    """The argv starting one simulated vehicle per home (``scenario.sim_sysid(i)`` at ``base_port + i``)."""
    argv = [sys.executable, "-m", "sim", "--count", str(len(homes)), "--base-port", str(base_port)]
    argv += ["--speed", f"{speed:g}"]
    if camera_world is not None:  # each drone gets a camera drawing this world (sim/camera)
        argv += ["--camera", "--camera-world", camera_world]
    for lat, lon, alt_m in homes:
        argv += ["--home", f"{lat},{lon},{alt_m}"]
    return argv


def sim_homes(settings: Settings, *, count: int) -> list[tuple[float, float, float]]:
    """Where simulated vehicles 1..count stand: their registered home, else the demo dock they would get."""
    from mission import scenario
    from mission.fleet import service as fleet

    defaults = scenario.demo_vehicles(count=count, base_port=settings.sim_base_port)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            vehicles, _ = fleet.list_vehicles(session=session, limit=1_000_000)
    finally:
        engine.dispose()
    # a sysid repeats past 253 vehicles (on another port): the registry row is found by URL and sysid
    registered = {(v.connection_url, v.sysid): v for v in vehicles}
    homes = []
    for d in defaults:
        v = registered.get((d.connection_url, d.sysid))
        homes.append((v.home_lat, v.home_lon, v.home_alt_m) if v else (d.home_lat, d.home_lon, d.home_alt_m))
    return homes


def sim_ports_warning(base_port: int, count: int) -> str | None:
    """A warning when the drones' UDP ports overlap the kernel's ephemeral range (Linux only).

    The simulator's own sockets (and any other client's) take ephemeral ports: one that lands on a drone's
    port makes the service's listen on it fail (MAVSDK BIND_ERROR, retried until it is free).
    """
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return None
    last = base_port + count - 1
    if last < low or base_port > high:
        return None
    return (
        f"--sim {count}: UDP ports {base_port}..{last} overlap the ephemeral ports {low}..{high}; a socket "
        "of another program may take one (the drone then cannot be linked until it is free): set "
        f"SKYWARDEN_SIM_BASE_PORT below {low - count}"
    )


def check_sim_count(count: int) -> str | None:
    """Why ``serve --sim count`` cannot run (None if it can): said at once, before anything starts."""
    import resource

    from mission import scenario

    if count > scenario.MAX_SIM_VEHICLES:
        return (
            f"--sim {count}: at most {scenario.MAX_SIM_VEHICLES} simulated drones per instance (the "
            "simulator runs them in one process); run several instances (--instance-id) or a fleet file"
        )
    # Each simulated drone streams to its own UDP port: one socket for it here and one in the simulator.
    needed = count + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard == resource.RLIM_INFINITY or hard >= needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        else:
            return (
                f"--sim {count}: needs about {needed} open files (one UDP socket per drone) but the limit "
                f"is {hard} (ulimit -n); raise it or start fewer drones"
            )
    return None


def write_camera_world(settings: Settings) -> str:
    """The registered zones and docks as the GeoJSON the sim cameras draw; the file's path."""
    import json
    import math

    from mission import scenario
    from mission.airspace import service as airspace

    features = []
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            zones = airspace.list_zones(session=session, limit=1000, offset=0)[0]
    finally:
        engine.dispose()
    for zone in zones:
        shape = zone.shape
        if shape.type == "Circle":
            lon0, lat0 = shape.center
            ring = [
                [
                    lon0
                    + math.degrees(shape.radius_m * math.sin(a) / (6378137 * math.cos(math.radians(lat0)))),
                    lat0 + math.degrees(shape.radius_m * math.cos(a) / 6378137),
                ]
                for a in (2 * math.pi * k / 48 for k in range(49))
            ]
        else:
            ring = [list(p) for p in shape.coordinates[0]]
        props = {"name": zone.name, "kind": zone.kind}
        features.append(
            {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        )
    for dock in scenario.DOCKS:
        geometry = {"type": "Point", "coordinates": [dock.lon, dock.lat]}
        features.append({"type": "Feature", "properties": {"name": dock.name}, "geometry": geometry})
    path = settings.video_storage_dir.resolve() / "camera-world.geojson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


def start_px4_fleet(settings: Settings, *, count: int) -> Callable[[], None]:
    """Start ``count`` PX4 SITL vehicles at the demo docks and register them; returns what stops them.

    PX4 fixes ports by instance number I (sysid I+1, UDP 14540+I): the lowest free instances are taken, and
    the registry follows them (a vehicle with that sysid is pointed at the instance and its dock, or created
    as ``px4-<sysid>``). Each PX4 dies with this process (PR_SET_PDEATHSIG) even if it is killed.
    """
    import asyncio
    import tempfile

    from mission import scenario
    from sim.px4sitl import Px4Unavailable, launch

    docks = scenario.DOCKS
    homes = [(d.lat, d.lon, scenario.HOME_ALT_M) for d in (docks[k % len(docks)] for k in range(count))]
    workdir = tempfile.mkdtemp(prefix="skywarden-px4-")
    try:
        fleet = asyncio.run(
            launch(
                count,
                homes=homes,
                workdir=workdir,
                speed=settings.sim_speed,
                bundle=settings.px4_bundle,
            )
        )
    except (Px4Unavailable, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--px4") from None
    register_px4_vehicles(settings, fleet.instances)
    for inst in fleet.instances:
        typer.echo(
            f"PX4 SITL instance {inst.index}: sysid {inst.sysid} on {inst.url}, home {inst.home}, "
            f"speed x{inst.speed:g}, pid {inst.pid}, workdir {inst.workdir}",
            err=True,
        )

    def stop() -> None:
        asyncio.run(fleet.stop())

    return stop


def register_px4_vehicles(settings: Settings, instances: Sequence[Px4Instance]) -> None:
    """Point the registry at running PX4 instances: one vehicle per sysid, at the instance's URL and home."""
    from mission import scenario
    from mission.audit import service as audit
    from mission.fleet import service as fleet
    from mission.fleet.models import VehicleUpdate

    demo = {v.sysid: v for v in scenario.demo_vehicles(count=max(i.sysid for i in instances))}
    engine = _migrated_engine(settings)
    try:
        with session_scope(engine) as session:
            for inst in instances:
                lat, lon, alt = inst.home
                dock = next((d.name for d in scenario.DOCKS if (d.lat, d.lon) == (lat, lon)), None)
                existing = fleet.get_by_sysid(session=session, sysid=inst.sysid)
                if existing is None:
                    template = demo[inst.sysid]
                    data = template.model_copy(
                        update={
                            "name": f"px4-{inst.sysid}",
                            "connection_url": inst.url,
                            "home_lat": lat,
                            "home_lon": lon,
                            "home_alt_m": alt,
                            "dock": dock,
                        }
                    )
                    created = fleet.create(session=session, data=data)
                    action, target = "vehicle.create", created.id
                else:
                    update = VehicleUpdate(
                        connection_url=inst.url, home_lat=lat, home_lon=lon, home_alt_m=alt, dock=dock
                    )
                    fleet.update(session=session, vehicle_id=existing.id, data=update)
                    action, target = "vehicle.update", existing.id
                audit.record(
                    session=session,
                    actor="system:px4",
                    action=action,
                    target=f"vehicle:{target}",
                    details={"sysid": inst.sysid, "url": inst.url, "px4_instance": inst.index},
                )
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
    sim: Annotated[
        int,
        typer.Option(
            "--sim",
            min=0,
            help="start N simulated drones (sysids repeat past 253 on further ports; at most 2000, the "
            "simulator's own limit)",
        ),
    ] = 0,
    px4: Annotated[
        int,
        typer.Option(
            "--px4", min=0, max=10, help="start N real PX4 SITL drones (the bundle in ../shared/px4-sitl)"
        ),
    ] = 0,
    demo_login: Annotated[bool, typer.Option(help="seed admin/admin (local demo only)")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    instance_id: Annotated[
        str | None,
        typer.Option(
            "--instance-id",
            help="this instance's name; with it the service runs as one of several sharing the fleet "
            "(needs PostgreSQL; SKYWARDEN_CLUSTER=true does the same with a default name)",
        ),
    ] = None,
) -> None:
    """Serve the API and web panel; with --sim N (or --px4 N) also N simulated (or PX4 SITL) drones."""
    from pydantic import ValidationError

    from mission.cluster.single import SecondInstance, SingleInstanceLock

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if sim and px4:
        raise typer.BadParameter("use --sim N or --px4 N, not both (they would share sysids and ports)")
    if sim and (why := check_sim_count(sim)) is not None:
        typer.echo(f"skywarden serve: {why}", err=True)
        raise typer.Exit(2)
    if instance_id is not None:
        overrides["instance_id"] = instance_id
        overrides["cluster"] = True
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        typer.echo(
            f"skywarden serve: {'.'.join(map(str, first['loc'])) or 'settings'}: {first['msg']}", err=True
        )
        raise typer.Exit(2) from None
    if settings.cluster and not settings.cluster_base_url:
        url_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        settings = settings.model_copy(update={"cluster_base_url": f"http://{url_host}:{settings.port}"})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    engine = make_engine(settings.database_url)
    try:
        # SQLite: one instance per database file; PostgreSQL: one alone, or clustered ones only
        with SingleInstanceLock(engine, cluster=settings.cluster):
            _serve(settings, sim=sim, px4=px4, demo_login=demo_login, log_level=log_level)
    except SecondInstance as err:
        typer.echo(f"skywarden serve: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def _serve(settings: Settings, *, sim: int, px4: int, demo_login: bool, log_level: str) -> None:
    import uvicorn

    from api.app import create_app

    ensure_admin(settings, demo_login=demo_login)
    with Children() as children:  # stopped on SIGTERM/SIGINT, and by the kernel if we are killed
        if px4:
            seed_demo(settings, vehicles=0)
            children.add_stopper(start_px4_fleet(settings, count=px4))
        if sim:
            if (warning := sim_ports_warning(settings.sim_base_port, sim)) is not None:
                typer.secho(f"skywarden serve: warning: {warning}", fg=typer.colors.YELLOW, err=True)
            seed_demo(settings, vehicles=sim)
            argv = sim_command(
                base_port=settings.sim_base_port,
                speed=settings.sim_speed,
                homes=sim_homes(settings, count=sim),
                camera_world=write_camera_world(settings) if settings.video_enabled else None,
            )
            typer.echo(f"starting {sim} simulated drones at their docks: {' '.join(argv[1:])}", err=True)
            children.start(argv)
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)
        )
        # a stop that came while starting is not lost: uvicorn exits as soon as its start-up is done
        children.on_stop(lambda: setattr(server, "should_exit", True))
        if not children.stop_requested:
            server.run()


@app.command(
    "sim",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def sim_(ctx: typer.Context) -> None:
    """Run the simulator alone (arguments go to ``python -m sim``, e.g. --count 3 --base-port 14540)."""
    from sim.__main__ import main as sim_main

    raise typer.Exit(sim_main(list(ctx.args)) or 0)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="target revision")] = "head") -> None:
    """Migrate the database (SKYWARDEN_DATABASE_URL) to the latest schema."""
    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        migrations.upgrade(engine, revision=revision)
        typer.echo(f"database at revision {migrations.current_revision(engine)}")
    finally:
        engine.dispose()


@db_app.command("seed-demo")
def db_seed_demo(
    vehicles: Annotated[
        int, typer.Option(min=0, max=2000, help="simulated drones to register (at most 2000)")
    ] = 0,
) -> None:
    """Add the demo district's zones (and optionally vehicles) to the database."""
    seed_demo(Settings(), vehicles=vehicles)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, pilot, dispatcher or observer")],
    name: Annotated[str | None, typer.Option(help="a label for the token")] = None,
    expires_in_s: Annotated[
        int | None, typer.Option(min=1, help="lifetime in seconds (default: token_default_ttl_s)")
    ] = None,
) -> None:
    """Issue an API token; the token is the last line printed (it is not stored and cannot be shown again).

    Like tokens made over the API, it always expires: without ``--expires-in-s`` it lives for the service's
    ``token_default_ttl_s``.
    """
    parsed = _role(role)
    settings = Settings()
    expires_in_s = expires_in_s or settings.token_default_ttl_s
    engine = _migrated_engine(settings)
    try:
        with session_scope(engine) as session:
            label = name or f"cli-{parsed.value}"
            issued = auth.issue_token(session=session, name=label, role=parsed, expires_in_s=expires_in_s)
            from mission.audit import service as audit

            audit.record(
                session=session,
                actor="system:cli",
                action="token.create",
                target=f"token:{issued.id}",
                details={"name": label, "role": parsed.value, "expires_in_s": expires_in_s},
            )
    finally:
        engine.dispose()
    typer.echo(f"token {issued.id} ({label}, role {parsed.value}):", err=True)
    typer.echo(issued.token)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="admin, pilot, dispatcher or observer")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="the password")
    ],
) -> None:
    """Create a panel user."""
    parsed = _role(role)
    engine = _migrated_engine(Settings())
    try:
        with session_scope(engine) as session:
            user = auth.create_user(session=session, username=username, password=password, role=parsed)
    except Conflict as err:
        raise typer.BadParameter(str(err), param_hint="username") from None
    finally:
        engine.dispose()
    typer.echo(f"user {user.username} ({user.role.value}) created")


@user_app.command("password")
def user_password(
    username: Annotated[str, typer.Argument(help="login name")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="the new password")
    ],
) -> None:
    """Set a user's password."""
    engine = _migrated_engine(Settings())
    try:
        with session_scope(engine) as session:
            auth.set_password(session=session, username=username, password=password)
    finally:
        engine.dispose()
    typer.echo(f"password of {username} changed")


@evidence_app.command("verify")
def evidence_verify(
    recording: Annotated[list[int] | None, typer.Option(help="recording id (repeatable)")] = None,
    incident: Annotated[int | None, typer.Option(help="every recording of this incident")] = None,
) -> None:
    """Prove video recordings untouched: each segment's SHA-256 against the audit log and both hash chains."""
    from sqlmodel import Session, col, select

    from mission.video import evidence
    from mission.video.models import Recording

    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            if incident is not None:
                ids = [r.id for r in evidence.incident_recordings(session=session, incident_id=incident)]
            elif recording:
                ids = list(recording)
            else:
                ids = list(session.exec(select(Recording.id).order_by(col(Recording.id))).all())
            report = evidence.verify(
                session=session,
                storage=settings.video_storage_dir.resolve(),
                recording_ids=[i for i in ids if i],
            )
    finally:
        engine.dispose()
    for problem in report.problems:
        typer.echo(f"PROBLEM {problem.kind}: {problem.message}")
    verdict = "OK: untouched" if report.ok else f"FAILED: {len(report.problems)} problem(s)"
    typer.echo(f"{verdict} ({report.recordings} recordings, {report.segments_checked} segments checked)")
    raise typer.Exit(0 if report.ok else 1)


if __name__ == "__main__":
    app()
