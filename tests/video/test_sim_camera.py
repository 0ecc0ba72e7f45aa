"""The simulator's camera as a black box: a real RTSP/H.264 stream any player opens (ffprobe, UDP and TCP),
found and commanded over MAVLink through MAVSDK (camera, stream, gimbal, photo, on-board recording, ROI)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import av
import numpy as np
import pytest

from mission.link import LinkManager
from sim import SimConfig, SimFleet
from sim.camera import CameraConfig, stamp
from sim.camera.codec import Encoder
from tests.video.support import free_udp_base, until

pytestmark = pytest.mark.timeout(90)


def test_the_time_stamp_survives_h264() -> None:
    enc = Encoder(codec="h264", width=480, height=270, fps=15, bitrate_bps=300_000, gop=15)
    dec = av.CodecContext.create("h264", "r")
    read = []
    for i in range(10):
        frame = np.random.default_rng(i).integers(0, 255, (270, 480, 3), dtype=np.uint8)
        ms = 1_780_000_000_000 + i * 67
        stamp.draw(frame, ms)
        for au in enc.encode(frame, rtp_ts=i * 6000, capture_ms=ms, keyframe=i == 0):
            for decoded in dec.decode(av.Packet(au.data)):
                read.append(stamp.read(decoded.to_ndarray(format="gray"), now_ms=ms + 100))
    assert read and read == [1_780_000_000_000 + i * 67 for i in range(len(read))]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_any_player_opens_the_stream(transport: str) -> None:
    if shutil.which("ffprobe") is None:
        pytest.fail("ffprobe missing: scripts/test-env installs Debian's ffmpeg")
    async with SimFleet(
        count=1, base_port=free_udp_base(1), config=SimConfig(camera=CameraConfig())
    ) as fleet:
        cam = fleet.vehicles[0].camera
        argv = [
            "ffprobe",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-select_streams",
            "v",
            "-count_frames",
        ]
        argv += ["-read_intervals", "%+3", "-show_streams", "-of", "json", cam.url]
        out = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=40)
        assert out.returncode == 0, out.stderr
        stream = json.loads(out.stdout)["streams"][0]
        assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) == (640, 360)
        assert int(stream["nb_read_frames"]) >= 15
        await until(
            lambda: not cam.source.running, timeout_s=10, what="the encoder to stop after the player left"
        )


async def test_camera_and_gimbal_over_mavlink_with_mavsdk() -> None:
    base = free_udp_base(1)
    async with (
        SimFleet(
            count=1,
            base_port=base,
            speed=10,
            home=(39.82, 109.98, 1320.0),
            config=SimConfig(camera=CameraConfig()),
        ) as fleet,
        LinkManager() as links,
    ):
        sim_cam = fleet.vehicles[0].camera
        link = await links.add_vehicle(sysid=1, url=f"udpin://0.0.0.0:{base}")
        await link.wait_ready(timeout_s=20)
        cam = link.camera
        status = await until(
            lambda: (s := cam.status()).camera and s.gimbal and s, timeout_s=15, what="discovery"
        )
        assert (status.camera.component_id, status.camera.width_px, status.camera.height_px) == (
            100,
            640,
            360,
        )
        assert (status.gimbal.manager_component_id, status.gimbal.device_id) == (1, 1)
        stream = await cam.request_stream_info(5.0)
        assert stream is not None and stream.uri == sim_cam.url and stream.encoding == "h264"
        assert (stream.stream_type, stream.fps, stream.width_px) == ("rtsp", 15.0, 640)
        await cam.take_photo()
        assert len(sim_cam.photos) == 1
        await cam.start_video()
        assert sim_cam.recording_since is not None
        await cam.stop_video()
        assert sim_cam.recording_since is None
        await cam.point_at(39.821, 109.981, 1320.0)
        assert sim_cam.roi == pytest.approx((39.821, 109.981, 1320.0))
        await cam.point_angles(-45.0, 30.0)  # takes primary control first, as PX4 requires
        assert (sim_cam.gimbal_pitch_deg, sim_cam.gimbal_yaw_deg, sim_cam.roi) == (-45.0, 30.0, None)
        assert sim_cam.primary_control == (245, 190)
