"""Missions: plans flown by one vehicle, with a persisted, audited state machine.

    draft -> validated -> uploading -> ready -> active <-> paused -> returning -> completed | aborted | failed

- ``runtime.missions`` (``mission.missions.supervisor.MissionSupervisor``): ``create | validate(asker=)``
  judge the plan with the safety gate (``mission.safety.gate``, action ``launch``); ``await launch``
  re-judges,
  commits ``uploading``, uploads fence and items, switches to MISSION while disarmed, arms and returns the
  mission once telemetry shows the vehicle in the air (a vehicle that never takes off is disarmed and the
  mission goes back to validated); ``await pause | resume | return_home | abort``. Resume judges the rest
  of the mission from where the vehicle is. A return is a persisted flight of the FlightExecutor
  (``mission.flights``); a mission brought home before its items were done ends aborted (an operator's
  return) or failed (the vehicle's own failsafe), never completed.
- ``mission.missions.service``: persistence and compare-and-set transitions.
- ``mission.missions.states``: ``MissionState``, ``TRANSITIONS``, ``IN_FLIGHT``, ``TERMINAL``.

Live events on the hub: ``mission.transition``, ``mission.progress``, ``mission.recovered``.
"""
