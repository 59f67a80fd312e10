"""Distribution drift of a table against a reference: population stability index and two-sample KS.

Used by data validation (a drop against the champion's training data) and by the scoring service
(logged inputs against the same reference), so both judge drift the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ml.schema import ACTIVE_SCHEMA, Schema

_EPS = 1e-4


@dataclass(frozen=True)
class DriftThresholds:
    """A feature drifted when KS p-value < ``ks_pvalue``, or PSI > ``psi`` on at least ``min_rows`` rows
    (PSI on a handful of rows is biased upward, so small drops are judged by KS alone)."""

    psi: float = 0.25
    ks_pvalue: float = 0.001
    severity: str = "warning"
    min_rows: int = 100


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"column '{self.column}' drifted from the reference: PSI {self.psi:.3f}, "
            f"KS statistic {self.ks_statistic:.3f} (p={self.ks_pvalue:.2g})"
        )


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against quantile bins of ``reference``."""
    return _psi_sorted(_sorted_finite(reference), _sorted_finite(current), bins)


def _psi_sorted(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """``psi`` of finite values sorted ascending: a bin's count is read off by binary search at its edges."""
    if reference.size == 0 or current.size == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        return 0.0 if current[0] == current[-1] == edges[0] else float("inf")
    inner = edges[1:-1]  # bins [-inf, e1), [e1, e2) ... [e_last, inf]
    expected = np.diff(np.searchsorted(reference, inner), prepend=0, append=reference.size) / reference.size
    actual = np.diff(np.searchsorted(current, inner), prepend=0, append=current.size) / current.size
    expected, actual = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _sorted_finite(values: np.ndarray) -> np.ndarray:
    return np.sort(values[np.isfinite(values)])


_EXACT_UP_TO = 10_000  # as scipy's ks_2samp: an exact p-value while both samples are at most this size


def ks_2samp(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample KS statistic and p-value, equal to ``scipy.stats.ks_2samp``'s."""
    return _ks_sorted(np.sort(reference), np.sort(current))


def _ks_sorted(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """``ks_2samp`` of samples sorted ascending.

    For large samples (the asymptotic p-value) the statistic is read at the reference's distinct values only: between
    two of them the reference's CDF is flat and the current one rises, so the largest gap is at an end of the step.
    That is a few hundred lookups where scipy evaluates both CDFs at every value of both samples."""
    if max(ref.size, cur.size) <= _EXACT_UP_TO:
        result = stats.ks_2samp(ref, cur)
        return float(result.statistic), float(result.pvalue)
    steps = np.unique(ref)
    at = np.searchsorted(ref, steps, side="right") / ref.size  # the reference's CDF at each step
    before = np.concatenate(([0.0], at[:-1]))  # and just below it
    statistic = max(
        float(np.abs(at - np.searchsorted(cur, steps, side="right") / cur.size).max()),
        float(np.abs(before - np.searchsorted(cur, steps, side="left") / cur.size).max()),
    )
    m, n = sorted((float(ref.size), float(cur.size)), reverse=True)
    return statistic, float(stats.kstwo.sf(statistic, np.round(m * n / (m + n))))


def _floats(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(values):
        return values.to_numpy(dtype=float)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Schema = ACTIVE_SCHEMA,
    thresholds: DriftThresholds | None = None,
) -> list[FeatureDrift]:
    """Per-feature drift of ``current`` against ``reference`` (features of ``schema`` present in both)."""
    thresholds = thresholds or DriftThresholds()
    out: list[FeatureDrift] = []
    for column in schema.feature_names:
        if column not in reference or column not in current:
            continue
        ref, cur = _sorted_finite(_floats(reference[column])), _sorted_finite(_floats(current[column]))
        if ref.size == 0 or cur.size == 0:
            continue
        value = _psi_sorted(ref, cur)
        statistic, pvalue = _ks_sorted(ref, cur)
        drifted = pvalue < thresholds.ks_pvalue or (value > thresholds.psi and cur.size >= thresholds.min_rows)
        out.append(FeatureDrift(column, round(value, 6), statistic, pvalue, bool(drifted)))
    return out
