"""Pure patrol planning: geometry in, plans out.

Modules: geodesy (WGS84 <-> local metres), validate, coverage, patterns (perimeter, corridor, orbit),
rings (checkpoint rings), routing (shortest path around no-fly zones), energy, safety (whole-plan check),
compile (plan -> mission items), items (typed mission items, geofence), io (QGC .plan, GeoJSON, KML).
"""
