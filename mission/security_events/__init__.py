"""Large-event security: a venue's restricted zone and its plan set (sweep, ring patrols, overwatch)."""
