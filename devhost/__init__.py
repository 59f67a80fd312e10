"""devhost: a local, offline Azure Functions host for Python v2 apps with Durable Functions.

Start it with ``python -m devhost start``. See ``devhost.cli``.
"""
