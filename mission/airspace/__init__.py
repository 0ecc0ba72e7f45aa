"""Airspace: patrol zones, no-fly zones and event areas with altitude bands and optional active windows."""
