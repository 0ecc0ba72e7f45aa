"""Missions: plans flown by one vehicle, with a persisted, audited state machine."""
