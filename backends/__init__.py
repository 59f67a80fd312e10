"""Ports to external systems and their Azure and local implementations."""
