"""Direct vehicle commands (arm, takeoff, hold, goto, orbit, return, land, payload), checked and audited."""
