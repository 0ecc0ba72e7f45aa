"""Incidents: intake from API, panel and MQTT, and their lifecycle new -> assigned -> en route -> on scene -> closed."""
