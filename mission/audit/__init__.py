"""The append-only, hash-chained audit log: who did what, to what, and when."""
