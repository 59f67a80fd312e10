"""Durable orchestrations: deterministic recipes over activity names (no I/O, clock or randomness)."""
