"""No video, said clearly and quickly: no camera, an unreachable or silent stream URI, a codec the relay
cannot pass, a viewer that stalls; telemetry and commands carry on meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from tests.video.support import TEST_CAMERA, Refused, signaling, until, video_rig

pytestmark = pytest.mark.timeout(120)


async def _refusal(sig, vehicle_id: int) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with pytest.raises(Refused) as refused:
        await sig.watch(vehicle_id)
    return str(refused.value), time.monotonic() - started


async def test_no_camera_announced(tmp_path) -> None:
    async with video_rig(tmp_path, camera=None) as rig:
        vid = rig.vehicle_ids[0]
        async with signaling(rig.ws_url("dan")) as sig:
            reason, took = await _refusal(sig, vid)
        assert reason.startswith("no video: camera not announced") and took < 8, (reason, took)
        r = await rig.api("POST", f"/video/vehicles/{vid}/recordings", "alice")
        assert r.status_code == 409 and "camera not announced" in r.json()["error"]["message"]
        body = (await rig.api("GET", f"/video/vehicles/{vid}", "dan")).json()
        assert body["state"] == "unavailable" and body["message"].startswith("no video: camera not announced")
        r = await rig.api("POST", f"/video/vehicles/{vid}/camera/photo", "alice")
        assert r.status_code == 409 and "no video: camera not announced" in r.json()["error"]["message"], (
            r.text
        )


async def test_unreachable_and_silent_stream_uris(tmp_path) -> None:
    # A short open timeout: the silent stream's refusal is timed by it.
    async with video_rig(tmp_path, vehicles=2, video_open_timeout_s=5.0) as rig:
        refused_cam, silent_cam = (v.camera for v in rig.fleet.vehicles)
        await refused_cam.server.close()  # announced, but nothing listens any more
        held: list[asyncio.StreamWriter] = []

        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # accepts, never answers

        silent = await asyncio.start_server(hold, "127.0.0.1", 0)
        await silent_cam.server.close()
        silent_cam.server.port = silent.sockets[0].getsockname()[1]
        try:
            async with signaling(rig.ws_url("dan")) as sig:
                reason, took = await _refusal(sig, rig.vehicle_ids[0])
                assert "stream unreachable" in reason and refused_cam.url in reason and took < 8, (
                    reason,
                    took,
                )
                reason, took = await _refusal(sig, rig.vehicle_ids[1])
                assert "stream unreachable" in reason and "no answer in time" in reason and took < 12, (
                    reason,
                    took,
                )
            body = (await rig.api("GET", f"/video/vehicles/{rig.vehicle_ids[0]}", "dan")).json()
            assert "stream unreachable" in body["message"], body
            # the link is fine all along: telemetry and commands do not wait on video
            link = rig.runtime.fleet.link(rig.vehicle_ids[0])
            started = time.monotonic()
            await link.arm()
            await link.takeoff(10.0)
            assert time.monotonic() - started < 3.0
        finally:
            for writer in held:
                writer.close()
            silent.close()
            await silent.wait_closed()


async def test_codec_the_relay_cannot_pass(tmp_path) -> None:
    # H.265 is transcoded by default (tests/video/test_transcode.py); where that is off, say so at once.
    h265 = dataclasses.replace(TEST_CAMERA, codec="h265")
    async with video_rig(tmp_path, camera=h265, video_transcode=False) as rig:
        vid = rig.vehicle_ids[0]
        async with signaling(rig.ws_url("dan")) as sig:
            reason, took = await _refusal(sig, vid)
        assert reason.startswith("no video: codec H.265 unsupported") and took < 8, reason
        assert "transcoding is off" in reason, reason
        await until(
            lambda: "H.265" in rig.video.status(vid).reason, timeout_s=10, what="the status to say why"
        )
        assert rig.fleet.vehicles[0].camera.server.stats.sessions_started == 0  # refused before connecting


async def test_a_stalled_viewer_is_dropped_and_nobody_else_notices(tmp_path) -> None:
    async with video_rig(tmp_path, video_viewer_stall_s=2.0) as rig:
        vid = rig.vehicle_ids[0]
        async with signaling(rig.ws_url("dan")) as sig:
            good = await sig.watch(vid)
            await sig.watch(vid, connect=False)  # asked, then never took a frame
            assert len(rig.video.viewers(vid)) == 2
            before = rig.runtime.hub.stats.updates
            t0 = time.monotonic()
            await until(lambda: "v2" in sig.closed, timeout_s=20, what="the stalled viewer to be dropped")
            assert sig.closed["v2"].startswith("viewer stalled")
            rate = (rig.runtime.hub.stats.updates - before) / (time.monotonic() - t0)
            assert rate > 6, rate  # the vehicle's 10 Hz telemetry went on
            frames = good.frames
            await until(
                lambda: good.frames >= frames + 10, timeout_s=10, what="the good viewer to keep going"
            )
            assert len(rig.video.viewers(vid)) == 1 and rig.video.ingest_count(vid) == 1
