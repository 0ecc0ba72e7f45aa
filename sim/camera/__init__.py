"""A MAVLink camera and gimbal for each simulated vehicle, streaming a synthetic view over RTSP.

```python
from sim import SimConfig, SimFleet
from sim.camera import CameraConfig

async with SimFleet(count=2, base_port=14540, config=SimConfig(camera=CameraConfig())) as fleet:
    cam = fleet.vehicles[0].camera        # component 100 of sysid 1
    cam.url                               # rtsp://127.0.0.1:PORT/live, announced in VIDEO_STREAM_INFORMATION
```
See ``component`` (the MAVLink side), ``rtsp`` (the stream), ``render`` (the picture), ``stamp`` (the
burned-in time code for glass-to-glass delay).
"""

from sim.camera.component import CAMERA_COMPID, GIMBAL_DEVICE_ID, CapturedImage, SimCamera, attach_cameras
from sim.camera.config import CameraConfig
from sim.camera.world import CameraWorld, load_world, world_from_geojson

__all__ = [
    "CAMERA_COMPID",
    "GIMBAL_DEVICE_ID",
    "CameraConfig",
    "CameraWorld",
    "CapturedImage",
    "SimCamera",
    "attach_cameras",
    "load_world",
    "world_from_geojson",
]
