"""The MAVSDK link layer: the only part of skywarden that imports mavsdk.

Public API::

    from mission.link import LinkManager, VehicleLink, TelemetrySnapshot, RawMissionItem

    async with LinkManager(executor_workers=64, telemetry_hz=10.0, command_timeout_s=10.0,
                           polls_per_snapshot=4) as links:
        link = await links.add_vehicle(sysid=1, url="udpin://0.0.0.0:14540")  # one connection per vehicle
        await link.wait_ready(timeout_s=30)       # connected, GPS and home ok
        await link.upload_mission(items)          # flightplans.items, or RawMissionItem for anything else
        await link.arm(); await link.start_mission()
        async for snap in link.snapshots():       # throttled to telemetry_hz; link_up False while down
            ...
        links.get(1)   # NotFound for an unknown sysid (url=... when the sysid is linked on several URLs)
        links.all(); await links.remove_vehicle(1)   # removal ends that vehicle's snapshot streams

- One MAVSDK instance knows a vehicle by its sysid alone (253 usable): sysids on one URL must differ; a
  sysid repeated on another URL is linked through a further MAVSDK instance, up to ``MAX_SHARDS`` (8; MAVSDK
  corrupts memory beyond 16), i.e. ``links.capacity`` vehicles; past that ``add_vehicle`` raises LinkError.
- Every command raises ``mission.errors.LinkError`` ("vehicle 3: start mission failed: ...") with
  ``vehicle_id`` and ``action`` set; bad arguments (an unsupported item, a 2-point fence) are LinkErrors too.
- ``start_mission`` retries until the flight mode reads MISSION (bounded); after a service restart the link
  downloads the mission of a flying vehicle so ``snapshot.mission`` keeps counting.
- ``snapshots()`` keeps only the newest value per reader: a slow consumer skips, it never queues. While the
  link is down a vehicle yields ``link_up=False`` snapshots once a second (last known values).
- ``download_mission()`` returns typed items (coordinates quantized to 1e-7 deg, altitudes float32 as on the
  wire); items without a typed equivalent come back as ``RawMissionItem``.
- Telemetry is polled from MAVSDK's cached values by one fleet-wide tick (no per-message callbacks) at
  ``polls_per_snapshot`` (default 4) times ``telemetry_hz``; a snapshot is published when a new sample
  (position or SYSTEM_TIME) arrived and the vehicle's rate limit allows, so it is at most one poll older than
  its sample. ``snapshot.vehicle_time_unix`` is the vehicle's wall clock from its newest SYSTEM_TIME (None
  without one): with the simulator it dates the position, for end-to-end latency. 100 vehicles streaming at
  PX4 rates cost ~0.2 core (``python -m bench.fleet``).
"""

from mission.link.manager import LinkManager
from mission.link.mavsdk_link import MavsdkVehicleLink
from mission.link.mission_items import LinkMissionItem, RawMissionItem
from mission.link.types import FlightMode, MissionProgress, TelemetrySnapshot, VehicleLink

__all__ = [
    "FlightMode",
    "LinkManager",
    "LinkMissionItem",
    "MavsdkVehicleLink",
    "MissionProgress",
    "RawMissionItem",
    "TelemetrySnapshot",
    "VehicleLink",
]
