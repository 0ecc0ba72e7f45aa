"""Recording as evidence: hashed segments chained into the audit log, verify (API and CLI), tamper, export,
retention; recording that follows dispatch (started on assignment, gimbal on the scene, stopped at close)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import av
import pytest
from sqlmodel import Session, select

from mission.audit import service as audit
from mission.audit.models import AuditEntry
from mission.telemetry.events import Event
from mission.video.models import Recording
from tests.video.support import until, video_rig

pytestmark = pytest.mark.timeout(150)
ROOT = Path(__file__).resolve().parents[2]


async def test_recording_segments_verify_tamper_export_and_cli(tmp_path) -> None:
    async with video_rig(tmp_path) as rig:
        vid = rig.vehicle_ids[0]
        r = await rig.api("POST", f"/video/vehicles/{vid}/recordings", "alice", {"incident_id": None})
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        assert rig.video.status(vid).recording.id == rid
        # recording alone keeps the stream up (nobody watches)
        await until(lambda: rig.fleet.vehicles[0].camera.server.playing == 1, timeout_s=10, what="ingest")
        await until(
            lambda: (rig.video.status(vid).recording.segment_count or 0) >= 3,
            timeout_s=40,
            what="three segments",
        )
        r = await rig.api("POST", f"/video/recordings/{rid}/stop", "alice")
        assert r.status_code == 200 and r.json()["state"] == "stopped", r.text
        rec = r.json()
        assert rec["gaps"] == 0 and rec["segment_count"] >= 4 and rec["duration_s"] >= 6
        detail = (await rig.api("GET", f"/video/recordings/{rid}", "dan")).json()
        segs = detail["segments"]
        assert [s["seq"] for s in segs] == list(range(1, len(segs) + 1))
        assert all(s["gap_before_s"] < 0.2 for s in segs[1:])
        storage = tmp_path / "video"
        with av.open(str(storage / segs[0]["file"])) as f:  # each segment plays on its own
            frames = sum(1 for _ in f.decode(video=0))
        assert frames >= 15
        # every segment's hash is in the hash-chained audit log, before anyone asks
        with Session(rig.app.state.engine) as session:
            logged = {
                e.details["seq"]: e.details["sha256"]
                for e in session.exec(select(AuditEntry).where(AuditEntry.action == "video.segment"))
            }
            assert audit.verify(session=session).ok
        assert logged == {s["seq"]: s["sha256"] for s in segs}
        r = await rig.api("GET", f"/video/recordings/{rid}/verify", "dan")
        assert r.status_code == 200 and r.json()["ok"] and r.json()["segments_checked"] == len(segs), r.text
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SKYWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'skywarden.db'}",
            "SKYWARDEN_VIDEO_STORAGE_DIR": str(storage),
        }
        cli = [sys.executable, "-m", "api.cli", "evidence", "verify", "--recording", str(rid)]
        ok = await asyncio.to_thread(subprocess.run, cli, env=env, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and "OK: untouched" in ok.stdout, ok.stdout + ok.stderr
        # one flipped byte in the middle segment, one deleted file: both named
        victim = storage / segs[1]["file"]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        (storage / segs[2]["file"]).unlink()
        report = (await rig.api("GET", f"/video/recordings/{rid}/verify", "dan")).json()
        kinds = {(p["seq"], p["kind"]) for p in report["problems"]}
        assert not report["ok"] and (2, "altered") in kinds and (3, "missing_file") in kinds, report
        bad = await asyncio.to_thread(
            subprocess.run, cli, env=env, capture_output=True, text=True, timeout=60
        )
        assert bad.returncode == 1 and "altered" in bad.stdout and "missing" in bad.stdout, bad.stdout
        # observers may read the list but not verify or stop
        assert (await rig.api("GET", f"/video/recordings/{rid}/verify", "olga")).status_code == 403
        assert (await rig.api("POST", f"/video/recordings/{rid}/stop", "olga")).status_code == 403


async def test_dispatch_records_points_the_gimbal_and_stops_at_close_then_export_and_retention(
    tmp_path,
) -> None:
    async with video_rig(tmp_path) as rig:
        vid = rig.vehicle_ids[0]
        cam = rig.fleet.vehicles[0].camera
        hub = rig.runtime.hub
        r = await rig.api(
            "POST",
            "/incidents",
            "dan",
            {"lat": 39.8215, "lon": 109.9812, "kind": "burglary", "auto_dispatch": False},
        )
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        # a drone reaches the scene long after its camera and gimbal were discovered
        await until(lambda: rig.video.status(vid).gimbal, timeout_s=30, what="gimbal discovery")
        # what dispatch emits; video reacts to the hub's events only
        hub.emit(Event(kind="incident.assigned", vehicle_id=vid, data={"incident_id": iid}))
        await until(
            lambda: (s := rig.video.status(vid).recording) and s.incident_id == iid,
            timeout_s=15,
            what="auto recording",
        )
        hub.emit(Event(kind="incident.on_scene", vehicle_id=vid, data={"incident_id": iid}))
        await until(lambda: cam.roi is not None, timeout_s=15, what="the gimbal on the incident")
        assert cam.roi[:2] == pytest.approx((39.8215, 109.9812)) and cam.roi[2] == pytest.approx(1320.0)
        with Session(rig.app.state.engine) as session:
            actions = [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq))]
        assert "video.record.start" in actions and "cmd.camera" in actions
        await until(lambda: rig.video.status(vid).recording.segment_count >= 2, timeout_s=30, what="segments")
        hub.emit(
            Event(kind="incident.closed", vehicle_id=vid, data={"incident_id": iid, "reason": "resolved"})
        )
        await until(
            lambda: rig.video.status(vid).recording is None, timeout_s=20, what="the recording to stop"
        )
        r = await rig.api("GET", f"/video/incidents/{iid}/export", "dan")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            assert manifest["verification"]["ok"] and manifest["incident_id"] == iid
            segs = manifest["recordings"][0]["segments"]
            assert segs and all(s["audit_hash"] for s in segs)
            import hashlib

            for s in segs:
                assert hashlib.sha256(zf.read(s["file"])).hexdigest() == s["sha256"]
        assert (await rig.api("GET", f"/video/incidents/{iid}/export", "alice")).status_code == 403
        # retention: nothing is purged before its time, then the files go and the record stays
        assert (await rig.api("POST", "/video/retention/purge", "root")).json()["purged"] == []
        with Session(rig.app.state.engine) as session:
            rec = session.exec(select(Recording).where(Recording.incident_id == iid)).one()
            rec.stopped_at = rec.stopped_at - timedelta(days=31)
            session.add(rec)
            session.commit()
            rid, directory = rec.id, tmp_path / "video" / rec.directory
        assert directory.is_dir()
        assert (await rig.api("POST", "/video/retention/purge", "root")).json()["purged"] == [rid]
        assert not directory.exists()
        report = (await rig.api("GET", f"/video/recordings/{rid}/verify", "dan")).json()
        assert report["ok"], report  # purged under the retention rule, on the record
        detail = (await rig.api("GET", f"/video/recordings/{rid}", "dan")).json()
        assert detail["recording"]["state"] == "purged" and detail["segments"]
