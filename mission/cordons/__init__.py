"""Incident cordons: inner, middle and outer rings of stations at road crossings, manned by drones."""
