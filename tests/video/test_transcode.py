"""A camera codec browsers cannot play (H.265) reaches them transcoded to H.264: one ingest and one encoder
per stream whatever the viewers, evidence recorded from the camera's own packets; and a codec that cannot even
be transcoded is named."""

from __future__ import annotations

import dataclasses

import av
import pytest

from mission.video.ingest import untranscodable
from tests.video.support import TEST_CAMERA, signaling, until, video_rig

pytestmark = pytest.mark.timeout(150)


async def test_h265_camera_is_watched_through_one_h264_encoder(tmp_path) -> None:
    async with video_rig(tmp_path, camera=dataclasses.replace(TEST_CAMERA, codec="h265")) as rig:
        vid = rig.vehicle_ids[0]
        cam = rig.fleet.vehicles[0].camera
        async with signaling(rig.ws_url("dan")) as sig:
            first = await sig.watch(vid)
            await until(lambda: first.frames >= 10, timeout_s=30, what="decoded frames at the first viewer")
            second = await sig.watch(vid)  # joins at once: the transcoder makes it a keyframe
            await until(lambda: second.frames >= 10, timeout_s=20, what="decoded frames at the second viewer")
            assert (first.width, first.height) == (second.width, second.height) == (480, 270)
            # the burned-in time stamp survives the re-encoding and the delay stays low
            latencies = sorted(ms for v in (first, second) for ms in v.latencies_ms[3:])
            assert latencies and latencies[len(latencies) // 2] < 1000, latencies[:20]
            ingest = rig.video._ingests[vid]
            assert rig.video.ingest_count(vid) == 1 and cam.server.stats.sessions_started == 1
            assert ingest.transcoding and ingest._transcoder is not None
            encoded = ingest._transcoder.frames
            assert encoded <= ingest.packets + 1  # one encode per picture, not one per viewer
            body = (await rig.api("GET", f"/video/vehicles/{vid}", "dan")).json()
            assert body["state"] == "live" and body["codec"] == "hevc" and body["transcoding"] is True, body
            # evidence keeps the camera's own H.265
            r = await rig.api("POST", f"/video/vehicles/{vid}/recordings", "alice")
            assert r.status_code == 201, r.text
            rid = r.json()["id"]
            await until(
                lambda: (rig.video.status(vid).recording.segment_count or 0) >= 1,
                timeout_s=30,
                what="a recorded segment",
            )
            r = await rig.api("POST", f"/video/recordings/{rid}/stop", "alice")
            assert r.status_code == 200, r.text
        segs = (await rig.api("GET", f"/video/recordings/{rid}", "dan")).json()["segments"]
        with av.open(str(tmp_path / "video" / segs[0]["file"])) as f:
            assert f.streams.video[0].codec_context.name == "hevc"
            assert sum(1 for _ in f.decode(video=0)) >= 5
        r = await rig.api("GET", f"/video/recordings/{rid}/verify", "dan")
        assert r.status_code == 200 and r.json()["ok"] is True, r.text


def test_a_codec_that_cannot_be_transcoded_is_named() -> None:
    assert untranscodable("h264", transcode=False) == ""
    assert untranscodable("h265", transcode=True) == ""  # FFmpeg decodes it as hevc
    assert untranscodable("mjpeg", transcode=True) == ""
    why = untranscodable("nosuchcodec", transcode=True)
    assert why.startswith("codec NOSUCHCODEC unsupported") and "no decoder" in why, why
    assert "transcoding is off" in untranscodable("hevc", transcode=False)
