"""Dispatch: choose the vehicle that reaches an incident first, launch it, relieve it, backfill its patrol."""
