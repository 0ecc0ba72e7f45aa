"""The fleet: registered vehicles (registry) and, at run time, their links (FleetManager)."""
