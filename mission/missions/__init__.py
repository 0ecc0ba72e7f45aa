"""Missions: plans flown by one vehicle, with a persisted, audited state machine.

    draft -> validated -> uploading -> ready -> active <-> paused -> returning -> completed | aborted | failed

Public interface (the Runtime builds the supervisor; routes, dispatch and patrols call it):

- ``runtime.missions`` (``mission.missions.supervisor.MissionSupervisor``):
  ``create(data=MissionCreate, actor=) -> Mission`` (draft, plan previewed: path/metrics/violations);
  ``validate(mission_id=, actor=)`` (safety gate; AirspaceViolation 422 listing every violation);
  ``await launch(mission_id=, actor=)`` (re-gates, commits ``uploading``, uploads geofence + items,
  arms, starts; returns the ``active`` mission); ``await pause | resume | return_home | abort(...)``;
  ``note_manual_command(vehicle_id=, command=, actor=)`` (call only after the vehicle took the command);
  ``await send_home(vehicle_id)`` (RTL, first along a routed detour when the straight way home crosses an
  active or soon-active restriction). Launch refuses (409) a vehicle an assigned/en-route/on-scene
  incident holds or one already airborne; resume re-runs the gate on the rest of the mission from where
  the vehicle is. After a restart, uploading/ready missions go back to validated (audited).
- ``mission.missions.gate``: ``GateConfig`` (reserve, fence margin, ``clearance_m``, ``max_alt_m`` 120,
  ``return_alt_m`` 60, ``time_margin_s``), ``restrictions_during(session=, start=, end=)``,
  ``restrictions_for_flight(session=, flight_s=, config=)`` (active at any time of the flight + margin).
- ``mission.missions.homing``: ``home_route(here=, home=, alt_m=, restrictions=, config=) -> HomeRoute``,
  ``await fly_home(link=, route=, snapshot=)``, ``remaining_problems(...)`` (resume gate).
- ``mission.missions.service``: ``get``, ``list_missions``, ``events``, ``in_flight``, ``current_for_vehicle``
  and ``transition(session=, mission_id=, action=, actor=, reason=, expect_from=)`` (compare-and-set; a
  repeat of a reached state returns ``event=None``).
- ``mission.missions.states``: ``MissionState``, ``TRANSITIONS``, ``IN_FLIGHT``, ``TERMINAL``.
- ``mission.missions.gate.evaluate_plan(plan=, session=, profile=, snapshot=, config=)``: preview, geofence.

Live events on the hub: ``mission.transition`` (from_state, to_state, actor, reason), ``mission.progress``,
``mission.recovered`` (after a restart the vehicle's mission was read back and tracking resumed).
"""
