"""Sound and light payloads: speaker messages, siren and spotlight mapped to DO_SET_ACTUATOR outputs."""
