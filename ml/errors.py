"""Errors of the ML core. Bad data is a ``ValueError``; a failed fit or job a ``RuntimeError``."""

from __future__ import annotations

from typing import Protocol


class Report(Protocol):
    """What an error needs of a validation report (``ml.validation.ValidationReport``), declared here so that this
    module, imported by every stage, imports none of them."""

    def messages(self) -> list[str]: ...

    def summary(self) -> str: ...


class TableFormatError(ValueError):
    """The bytes are not a table we can read (empty, compressed, HTML, wrong encoding, ...)."""


class DataValidationError(ValueError):
    """Data broke the contract; carries the full report so callers can show every problem."""

    def __init__(self, report: Report) -> None:
        super().__init__("; ".join(report.messages()) or report.summary())
        self.report = report


class TrainingError(RuntimeError):
    """Training could not complete (bad inputs aside)."""


class EvaluationError(ValueError):
    """Champion and challenger cannot be compared (no rows, wrong columns, unreadable model)."""
