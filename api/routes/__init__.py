"""REST routers; each module exposes ``router`` and api/app.py lists it in ROUTERS."""
