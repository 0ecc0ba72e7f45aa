"""skywarden's PX4-compatible MAVLink multicopter simulator (a black box: it imports nothing of ours)."""

from sim.config import SimConfig
from sim.fleet import SimFleet
from sim.mission import Geofence, MissionItem
from sim.state import PayloadEvent, VehicleState
from sim.vehicle import SimVehicle

__all__ = ["Geofence", "MissionItem", "PayloadEvent", "SimConfig", "SimFleet", "SimVehicle", "VehicleState"]
