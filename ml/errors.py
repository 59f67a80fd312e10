"""Errors of the ML core. Bad data is a ``ValueError``; a failed fit or job a ``RuntimeError``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.validation import ValidationReport


class TableFormatError(ValueError):
    """The bytes are not a table we can read (empty, compressed, HTML, wrong encoding, ...)."""


class DataValidationError(ValueError):
    """Data broke the contract; carries the full report so callers can show every problem."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__("; ".join(report.messages()) or report.summary())
        self.report = report


class TrainingError(RuntimeError):
    """Training could not complete (bad inputs aside)."""


class EvaluationError(ValueError):
    """Champion and challenger cannot be compared (no rows, wrong columns, unreadable model)."""
