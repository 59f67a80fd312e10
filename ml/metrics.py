"""The metrics a model is judged by, per task, and the paired bootstrap that compares two models on the same rows.

A regression model's output is one prediction per row; a classifier's is its probability of each class (one row
per holdout row, the columns in the order of ``classes``), or for a binary task, the probability of the positive
class alone. Labels of a classifier are the class values themselves.

Which way is better is declared once, here (``DIRECTION``); ``relative_improvement`` is positive when the
challenger is better whatever the direction, so one promotion rule reads every metric.

The bootstrap resamples row indices and scores both models on each resample: for the metrics that are means of
a per-row loss (RMSE, MAE, log loss, accuracy) that is a gather and a mean; R² and AUC are recomputed per
resample (R² from gathered squared errors, AUC from ranks), each a handful of numpy calls.
"""

from __future__ import annotations

from typing import Any

REGRESSION_METRICS = {"rmse": "lower", "mae": "lower", "r2": "higher"}
CLASSIFICATION_METRICS = {"auc": "higher", "log_loss": "lower", "accuracy": "higher"}
DIRECTION = REGRESSION_METRICS | CLASSIFICATION_METRICS
#: probabilities are clipped to [EPS, 1 - EPS] in the log loss (a confident wrong answer costs ~34.5, not infinity)
EPS = 1e-15
_CHUNK = 250


class MetricError(ValueError):
    """A metric that does not apply to the task or the data (permanent: the same inputs fail again)."""


def metrics_for(classification: bool) -> dict[str, str]:
    return CLASSIFICATION_METRICS if classification else REGRESSION_METRICS


def higher_is_better(metric: str) -> bool:
    if metric not in DIRECTION:
        raise MetricError(f"unknown metric {metric!r}: expected one of {', '.join(DIRECTION)}")
    return DIRECTION[metric] == "higher"


def class_probabilities(output: Any, classes: Any) -> Any:
    """A classifier's output as an (n, k) probability matrix: a vector is the positive class's probability."""
    import numpy as np

    proba = np.asarray(output, dtype=float)
    if proba.ndim == 1:
        if len(classes) != 2:
            raise MetricError(f"a probability vector is for 2 classes, the labels have {len(classes)}")
        proba = np.column_stack([1 - proba, proba])
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise MetricError(f"expected probabilities of {len(classes)} classes, got an array of shape {proba.shape}")
    return proba


def label_index(y: Any, classes: Any) -> Any:
    """Each label's column in the probability matrix; a label that is not one of ``classes`` is an error."""
    import numpy as np

    classes = np.asarray(classes)
    index = np.searchsorted(classes, y)
    index = np.clip(index, 0, len(classes) - 1)
    if not np.array_equal(classes[index], np.asarray(y)):
        unknown = sorted({str(v) for v in np.asarray(y)[classes[index] != np.asarray(y)]})[:5]
        raise MetricError(f"labels {', '.join(unknown)} are not among the classes {list(classes)}")
    return index


def auc(y_positive: Any, score: Any) -> float:
    """Area under the ROC curve from ranks (ties get their mean rank), as scikit-learn's ``roc_auc_score``."""
    import numpy as np
    from scipy.stats import rankdata

    positive = np.asarray(y_positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise MetricError("AUC needs both classes among the rows")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def scores(y: Any, output: Any, *, classification: bool, classes: Any = None) -> dict[str, float]:
    """Every metric of the task on these rows."""
    import numpy as np

    if not classification:
        y, pred = np.asarray(y, dtype=float), np.asarray(output, dtype=float)
        err = pred - y
        total = float(np.sum((y - y.mean()) ** 2))
        return {
            "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - float(np.sum(err**2)) / total if total > 0 else 0.0,
        }
    classes = np.unique(y) if classes is None else np.asarray(classes)
    proba = class_probabilities(output, classes)
    index = label_index(y, classes)
    rows = np.arange(index.size)
    picked = np.clip(proba[rows, index], EPS, 1 - EPS)
    found = {
        "log_loss": float(-np.mean(np.log(picked))),
        "accuracy": float(np.mean(np.argmax(proba, axis=1) == index)),
    }
    if len(classes) == 2:
        found["auc"] = auc(index == 1, proba[:, 1]) if 0 < int((index == 1).sum()) < index.size else float("nan")
    else:  # one class against the rest, averaged over the classes present
        found["auc"] = float(
            np.mean(
                [auc(index == k, proba[:, k]) for k in range(len(classes)) if 0 < int((index == k).sum()) < index.size]
            )
        )
    return found


def relative_improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is, relative to the champion: positive when better, in either direction."""
    scale = max(abs(champion), 1e-12)
    return (challenger - champion) / scale if higher_is_better(metric) else (champion - challenger) / scale


def bootstrap_interval(
    metric: str,
    y: Any,
    challenger: Any,
    champion: Any,
    *,
    classification: bool,
    classes: Any = None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``confidence`` interval of the challenger's relative improvement in ``metric`` over the champion,
    from a paired bootstrap of the rows (both models scored on the same resampled rows)."""
    import numpy as np

    table = metrics_for(classification)
    if metric not in table:
        raise MetricError(f"{metric!r} is not a metric of this task: expected one of {', '.join(table)}")
    score = _resampled_score(metric, np.asarray(y), classification, classes)
    new_out, old_out = score.prepare(challenger), score.prepare(champion)
    rng = np.random.default_rng(seed)
    rel: list[Any] = []
    for start in range(0, n_boot, _CHUNK):
        idx = rng.integers(0, score.n, size=(min(_CHUNK, n_boot - start), score.n))
        new, old = score(new_out, idx), score(old_out, idx)
        scale = np.maximum(np.abs(old), 1e-12)
        rel.append((new - old) / scale if higher_is_better(metric) else (old - new) / scale)
    samples = np.concatenate(rel)
    tail = (1 - confidence) / 2
    return float(np.quantile(samples, tail)), float(np.quantile(samples, 1 - tail))


class _resampled_score:  # noqa: N801 (a callable used like a function)
    """One metric over many resamples at once: ``prepare`` turns a model's output into per-row terms once,
    ``__call__`` scores each row of an (m, n) index matrix."""

    def __init__(self, metric: str, y: Any, classification: bool, classes: Any) -> None:
        import numpy as np

        self.metric, self.n = metric, int(y.shape[0])
        if self.n < 2:
            raise MetricError(f"need at least 2 rows to compare two models, got {self.n}")
        if classification:
            self.classes = np.unique(y) if classes is None else np.asarray(classes)
            self.index = label_index(y, self.classes)
            if metric == "auc" and len(self.classes) != 2:
                raise MetricError("AUC as a promotion metric is for binary tasks; use log_loss or accuracy")
        else:
            self.y = y.astype(float)

    def prepare(self, output: Any) -> Any:
        import numpy as np

        if self.metric in ("rmse", "r2"):
            return (np.asarray(output, dtype=float) - self.y) ** 2
        if self.metric == "mae":
            return np.abs(np.asarray(output, dtype=float) - self.y)
        proba = class_probabilities(output, self.classes)
        rows = np.arange(self.n)
        if self.metric == "log_loss":
            return -np.log(np.clip(proba[rows, self.index], EPS, 1 - EPS))
        if self.metric == "accuracy":
            return (np.argmax(proba, axis=1) == self.index).astype(float)
        return proba[:, 1]  # auc: the positive class's score

    def __call__(self, terms: Any, idx: Any) -> Any:
        import numpy as np

        if self.metric == "rmse":
            return np.sqrt(terms[idx].mean(axis=1))
        if self.metric == "r2":
            y = self.y[idx]
            total = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            return 1.0 - terms[idx].sum(axis=1) / np.maximum(total, 1e-12)
        if self.metric == "auc":
            positive = self.index == 1
            return np.array([_auc_or_half(positive[row], terms[row]) for row in idx])
        return terms[idx].mean(axis=1)


def _auc_or_half(positive: Any, score: Any) -> float:
    """AUC of one resample; a resample that drew one class only carries no ranking information (0.5)."""
    try:
        return auc(positive, score)
    except MetricError:
        return 0.5
