"""A small terminal client of the app: `python -m cli run` (the `make run` launcher) and commands over the HTTP API."""
