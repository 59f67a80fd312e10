"""Typed errors of devhost."""

from __future__ import annotations


class DevhostError(RuntimeError):
    """Base class of every devhost error."""


class ConfigError(DevhostError, ValueError):
    """A settings file or value is missing or malformed (exit code 2)."""


class AppLoadError(DevhostError):
    """The function app could not be imported or indexed."""


class FunctionNotFound(DevhostError, LookupError):
    """No function with that name, or not of the expected kind."""


class InstanceConflict(DevhostError):
    """An orchestration instance with that id is still running."""
