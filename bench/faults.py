"""Restart campaign: a real ``skywarden serve`` is killed (-9) again and again while drones fly its work.

    python -m bench.faults --kills 20 --json bench/results/faults.json

Simulated drones stand on the demo district's docks (in this process, so they keep flying while the service
is dead). The service (a child ``skywarden serve`` on SQLite) keeps patrol missions, dispatches (auto-
launched incidents) and pilots' flights in the air; at random moments it is killed with SIGKILL and started
again. After each restart the benchmark measures how long until every airborne drone is supervised again
(``GET /api/v1/flights/supervision``), and at the end it reads the audit log, the incidents and what the
drones received. Writes:

- ``kills``, ``flights`` (flights and missions started during the campaign);
- ``flights_lost``: a drone in the air left without supervision for more than 10 s after a restart;
- ``flights_doubled``: a flight or mission armed more than once, or an incident with two dispatch flights
  in the air at once (reliefs excepted);
- ``incidents_stuck``: incidents still assigned, en route or on scene at the end with no flight serving them;
- ``recovery_s_p50``/``_p95``/``_max``: service up -> every airborne drone supervised (wall seconds);
- ``audit_chain_ok``.
Goal: 0 lost, 0 doubled, 0 stuck, recovery p95 <= 5 s, chain intact.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
LOST_AFTER_S = 10.0


@dataclass
class Campaign:
    kills: int = 0
    recovery_s: list[float] = field(default_factory=list)
    lost: set[tuple[int, int]] = field(default_factory=set)  # (restart, vehicle)
    requests: Counter[str] = field(default_factory=Counter)  # "kind status" -> count
    refusals: dict[str, str] = field(default_factory=dict)  # kind -> the last refusal's reason


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def prepare(db: Path, *, base_port: int, per_dock: int, docks: int) -> dict[str, str]:
    """The database the service starts on: the demo zones, the vehicles, users with tokens."""
    from api import migrations
    from mission.auth import service as auth
    from mission.auth.roles import Role
    from mission.db import make_engine, session_scope
    from mission.fleet import service as fleet
    from mission.fleet.models import Capability, VehicleCreate
    from mission.scenario import DOCKS, HOME_ALT_M, seed

    engine = make_engine(f"sqlite:///{db}")
    migrations.upgrade(engine)
    tokens = {}
    with session_scope(engine) as session:
        seed(session=session, vehicle_count=0)
        index = 0
        for dock in DOCKS[:docks]:
            for _ in range(per_dock):
                fleet.create(
                    session=session,
                    data=VehicleCreate(
                        name=f"drone-{index + 1}",
                        connection_url=f"udpin://0.0.0.0:{base_port + index}",
                        sysid=index + 1,
                        home_lat=dock.lat,
                        home_lon=dock.lon,
                        home_alt_m=HOME_ALT_M,
                        dock=dock.name,
                        capabilities=[Capability.camera, Capability.speaker, Capability.spotlight],
                        payload_actuators={"speaker": 1, "spotlight": 2},
                        cruise_speed_m_s=10.0,
                        endurance_s=3600.0,
                        battery_wh=250.0,
                    ),
                )
                index += 1
        for name, role in (("pilot", Role.pilot), ("dispatcher", Role.dispatcher), ("admin", Role.admin)):
            user = auth.create_user(session=session, username=name, password="bench-pass-1", role=role)
            tokens[name] = auth.issue_token(session=session, name=name, role=role, user_id=user.id).token
    engine.dispose()
    return tokens


class Service:
    """The ``skywarden serve`` child process, started and killed at will."""

    def __init__(self, *, db: Path, port: int, speed: float, log: Path) -> None:
        self.port = port
        self.log = log.open("a")
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "SKYWARDEN_DATABASE_URL": f"sqlite:///{db}",
            "SKYWARDEN_SIM_SPEED": str(speed),
            "SKYWARDEN_REGISTRY_POLL_S": "1",
            "SKYWARDEN_DISPATCH_AUTO_LAUNCH": "true",
            "SKYWARDEN_DISPATCH_AUTO_LAUNCH_MAX_PRIORITY": "5",
            "SKYWARDEN_VIDEO_ENABLED": "false",
        }

    def start(self) -> None:
        argv = [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


async def until_up(http: httpx.AsyncClient, timeout_s: float = 60.0) -> float:
    """Wall time at which the service answers its health check."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            r = await http.get("/health", timeout=1.0)
            if r.status_code == 200 and r.json()["runtime"]:
                return time.monotonic()
        await asyncio.sleep(0.1)
    raise RuntimeError("the service did not come up")


async def supervision(http: httpx.AsyncClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    r = await http.get("/flights/supervision", headers=admin, timeout=5.0)
    r.raise_for_status()
    return list(r.json())


async def measure_recovery(
    http: httpx.AsyncClient, admin: dict[str, str], *, up_at: float, restart: int, campaign: Campaign
) -> None:
    """Until every airborne drone is supervised; drones unsupervised past LOST_AFTER_S count as lost."""
    unsupervised_since: dict[int, float] = {}
    while True:
        now = time.monotonic()
        try:
            rows = await supervision(http, admin)
        except httpx.HTTPError:
            await asyncio.sleep(0.1)
            continue
        orphans = [r for r in rows if r["in_air"] and r["supervised_by"] is None]
        links = sum(1 for r in rows if r["link_up"])
        if not orphans and links == len(rows):
            campaign.recovery_s.append(now - up_at)
            return
        for r in orphans:
            unsupervised_since.setdefault(r["vehicle_id"], now)
            if now - unsupervised_since[r["vehicle_id"]] > LOST_AFTER_S:
                campaign.lost.add((restart, r["vehicle_id"]))
        if now - up_at > 60.0:
            campaign.recovery_s.append(now - up_at)
            return
        await asyncio.sleep(0.1)


async def keep_busy(
    http: httpx.AsyncClient,
    tokens: dict[str, str],
    *,
    rng: random.Random,
    vehicles: int,
    per_dock: int,
    campaign: Campaign,
) -> None:
    """Missions, incidents and pilots' flights, one request every second or so, whatever answers."""
    from mission.scenario import CENTER_LAT, CENTER_LON, DOCKS

    pilot = {"Authorization": f"Bearer {tokens['pilot']}"}
    dispatcher = {"Authorization": f"Bearer {tokens['dispatcher']}"}
    while True:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        kind = rng.choice(["incident", "incident", "mission", "pilot", "pilot_return", "close"])
        try:
            if kind == "incident":
                lat = CENTER_LAT + rng.uniform(-0.02, 0.02)
                lon = CENTER_LON + rng.uniform(-0.04, 0.04)
                body = {"lat": lat, "lon": lon, "kind": "fight", "priority": 2, "overhead_s": 240.0}
                r = await http.post("/incidents", json=body, headers=dispatcher, timeout=10)
            elif kind == "close":
                r = await http.get("/incidents", params={"state": "on_scene"}, headers=dispatcher, timeout=5)
                for item in r.json().get("items", [])[:1]:
                    r = await http.post(
                        f"/incidents/{item['id']}/close", json={"reason": "bench"}, headers=dispatcher
                    )
            elif kind == "mission":
                rows = (await http.get("/flights/supervision", headers=pilot, timeout=5)).json()
                grounded = [r["vehicle_id"] for r in rows if r["link_up"] and not r["in_air"]]
                if not grounded:
                    continue
                vid = rng.choice(grounded)
                dock = DOCKS[(vid - 1) // per_dock]
                a = (dock.lon + rng.uniform(-0.006, 0.006), dock.lat + rng.uniform(-0.004, 0.004))
                b = (dock.lon + rng.uniform(-0.006, 0.006), dock.lat + rng.uniform(-0.004, 0.004))
                plan = {
                    "kind": "route",
                    "geometry": {"type": "LineString", "coordinates": [a, b]},
                    "params": {"alt_m": 60},
                }
                r = await http.post(
                    "/missions", json={"name": "bench", "vehicle_id": vid, "plan": plan}, headers=pilot
                )
                if r.status_code == 201:
                    mid = r.json()["id"]
                    r = await http.post(f"/missions/{mid}/validate", headers=pilot)
                    if r.status_code == 200:
                        r = await http.post(f"/missions/{mid}/launch", headers=pilot, timeout=30)
            else:
                vid = rng.randint(1, vehicles)
                await http.post(f"/vehicles/{vid}/control", headers=pilot)
                if kind == "pilot":
                    await http.post(f"/vehicles/{vid}/commands", json={"command": "arm"}, headers=pilot)
                    body = {"command": "takeoff", "params": {"alt_m": 30}}
                    r = await http.post(f"/vehicles/{vid}/commands", json=body, headers=pilot, timeout=30)
                else:
                    body = {"command": "return"}
                    r = await http.post(f"/vehicles/{vid}/commands", json=body, headers=pilot, timeout=30)
                await http.delete(f"/vehicles/{vid}/control", headers=pilot)
            campaign.requests[f"{kind} {r.status_code}"] += 1
            if r.status_code >= 400:
                campaign.refusals[kind] = r.json().get("error", {}).get("message", "")[:200]
        except httpx.HTTPError:
            campaign.requests["refused_by_a_dead_service"] += 1


async def campaign_run(args: argparse.Namespace) -> dict[str, Any]:
    from mission.scenario import DOCKS, HOME_ALT_M
    from sim import SimConfig, SimFleet, SimVehicle
    from tests.support.net import free_tcp_port, free_udp_base

    rng = random.Random(args.seed)
    vehicles = args.docks * args.per_dock
    base = free_udp_base(vehicles)
    port = free_tcp_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    db = workdir / "skywarden.db"
    tokens = prepare(db, base_port=base, per_dock=args.per_dock, docks=args.docks)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    fleet = SimFleet(
        count=vehicles, base_port=base, speed=args.speed, home=(DOCKS[0].lat, DOCKS[0].lon, HOME_ALT_M)
    )
    config = SimConfig()
    fleet.vehicles = [
        SimVehicle(
            index=i,
            sysid=i + 1,
            host="127.0.0.1",
            port=base + i,
            home=(DOCKS[i // args.per_dock].lat, DOCKS[i // args.per_dock].lon, HOME_ALT_M),
            speed=args.speed,
            config=config,
            rng=random.Random(i),
        )
        for i in range(vehicles)
    ]
    service = Service(db=db, port=port, speed=args.speed, log=workdir / "serve.log")
    campaign = Campaign()
    async with fleet, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1") as http:
        try:
            service.start()
            await until_up(http)
            busy = asyncio.create_task(
                keep_busy(http, tokens, rng=rng, vehicles=vehicles, per_dock=args.per_dock, campaign=campaign)
            )
            await asyncio.sleep(args.warmup_s)
            for restart in range(args.kills):
                await asyncio.sleep(rng.uniform(args.min_gap_s, args.max_gap_s))
                service.kill()
                campaign.kills += 1
                service.start()
                up_at = await until_up(http)
                await measure_recovery(http, admin, up_at=up_at, restart=restart, campaign=campaign)
                print(
                    f"kill {restart + 1}/{args.kills}: recovered in {campaign.recovery_s[-1]:.2f} s",
                    file=sys.stderr,
                )
            busy.cancel()
            await asyncio.gather(busy, return_exceptions=True)
            await asyncio.sleep(args.settle_s)  # let what is in the air finish or be cleaned up
            result = await summary(http, admin, fleet=fleet, campaign=campaign)
        finally:
            service.stop()
    result["workdir"] = str(workdir)
    return result


async def summary(
    http: httpx.AsyncClient, admin: dict[str, str], *, fleet: Any, campaign: Campaign
) -> dict[str, Any]:
    audit = await all_pages(http, "/audit", admin)
    flights = await all_pages(http, "/flights", admin)
    missions = await all_pages(http, "/missions", admin)
    incidents = await all_pages(http, "/incidents", admin)
    arms: Counter[tuple[str, int]] = Counter()
    for entry in audit:
        if entry["action"] != "cmd.arm":
            continue
        details = entry["details"]
        key = (
            ("mission", details["mission_id"])
            if details.get("mission_id")
            else ("flight", details.get("flight_id") or 0)
        )
        if key[1]:
            arms[key] += 1
    doubled = sum(1 for n in arms.values() if n > 1)
    airborne_by_incident: Counter[int] = Counter(
        f["incident_id"]
        for f in flights
        if f["purpose"] == "dispatch" and f["state"] in ("pending", "active") and f["airborne"]
    )
    doubled += sum(1 for n in airborne_by_incident.values() if n > 1)
    open_flights = {
        f["incident_id"] for f in flights if f["state"] in ("pending", "active") and f["incident_id"]
    }
    stuck = [
        i["id"] for i in incidents if i["state"] in ("en_route", "on_scene") and i["id"] not in open_flights
    ]
    chain = (await http.get("/audit/verify", headers=admin)).json()
    received_arms = sum(
        1
        for v in fleet.vehicles
        for r in v.received
        if r.kind == "command" and r.command == 400 and r.params[0] >= 0.5
    )
    return {
        "kills": campaign.kills,
        "flights": len(flights) + len([m for m in missions if m["started_at"]]),
        "flights_lost": len(campaign.lost),
        "flights_doubled": doubled,
        "incidents_stuck": len(stuck),
        "recovery_s_p50": round(percentile(campaign.recovery_s, 50) or 0.0, 2),
        "recovery_s_p95": round(percentile(campaign.recovery_s, 95) or 0.0, 2),
        "recovery_s_max": round(max(campaign.recovery_s, default=0.0), 2),
        "audit_chain_ok": bool(chain["ok"]),
        "incidents": len(incidents),
        "missions_started": len([m for m in missions if m["started_at"]]),
        "arm_commands_received": received_arms,
        "requests": dict(campaign.requests),
        "last_refusals": campaign.refusals,
        "stuck_incident_ids": stuck,
        "load_avg_1m": os.getloadavg()[0],
        "goals": {"flights_lost": 0, "flights_doubled": 0, "incidents_stuck": 0, "recovery_s_p95_max": 5.0},
    }


async def all_pages(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = await http.get(url, params={"limit": 500, "offset": len(out)}, headers=headers, timeout=30)
        r.raise_for_status()
        page = r.json()["items"]
        out += page
        if len(page) < 500:
            return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per wall second")
    parser.add_argument("--docks", type=int, default=4, help="demo docks used (up to 7)")
    parser.add_argument("--per-dock", type=int, default=2)
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--min-gap-s", type=float, default=3.0, help="wall seconds between kills, at least")
    parser.add_argument("--max-gap-s", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    result = asyncio.run(campaign_run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
