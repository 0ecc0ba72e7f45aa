"""Live video from every drone: discovery over MAVLink, ingest, WebRTC relay, evidence recording.

``VideoService`` (service.py) is what the Runtime builds; ``commands.send`` is the one way camera and gimbal
commands reach a vehicle (audited first); ``evidence`` stores, verifies, exports and expires recordings.
"""
