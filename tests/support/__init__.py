"""Helpers shared by the tests and the benchmarks: free ports, waiting on conditions, the demo geography,
and the service itself built as production builds it (``Settings`` and the app's lifespan)."""
