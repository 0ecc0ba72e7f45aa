"""Incidents: intake (API, panel, MQTT) and lifecycle new -> assigned -> en route -> on scene -> closed."""
