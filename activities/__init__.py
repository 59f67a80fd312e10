"""Activities: thin adapters (input dict → one call into ``backends``/``ml`` → JSON-able dict)."""
