"""Scheduled patrols: routes with cron schedules, time windows and required capabilities."""
