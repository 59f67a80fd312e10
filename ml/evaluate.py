"""Champion vs challenger on the same holdout rows, and the promotion rule, for any task.

``decide`` is a pure function: the challenger is promoted only if it is better beyond noise — the lower
bound of a paired bootstrap confidence interval of its relative improvement in the rule's metric exceeds
``min_improvement`` (``ml.metrics``: RMSE, MAE or R² for a regression; log loss, AUC or accuracy for a
classifier, each in its own direction). With no champion, an absolute floor on one metric decides (R² ≥ 0.3 by
default). A losing challenger is a normal result with its reasons, never an exception.

CLI: ``python -m ml.evaluate --challenger DIR [--champion DIR] --holdout CSV`` prints the evaluation JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml import models
from ml.errors import EvaluationError
from ml.metrics import (
    DIRECTION,
    REGRESSION_METRICS,
    MetricError,
    bootstrap_interval,
    higher_is_better,
    metrics_for,
    scores,
)
from ml.schema import ACTIVE_SCHEMA, Schema

_LABELS = {"rmse": "RMSE", "mae": "MAE", "r2": "R²", "auc": "AUC", "log_loss": "log loss", "accuracy": "accuracy"}


@dataclass(frozen=True)
class PromotionRule:
    metric: str = "rmse"
    confidence: float = 0.95
    min_improvement: float = 0.0
    #: what a first model (no champion yet) must reach: ``floor_metric`` at least (or at most) ``floor``
    floor: float = 0.3
    floor_metric: str = "r2"
    n_boot: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (self.metric, self.floor_metric):
            if name not in DIRECTION:
                raise EvaluationError(f"promotion metric must be one of {', '.join(DIRECTION)}, got {name!r}")
        if (self.metric in REGRESSION_METRICS) != (self.floor_metric in REGRESSION_METRICS):
            raise EvaluationError(
                f"the promotion metric {self.metric!r} and the floor's {self.floor_metric!r} are of different tasks"
            )
        if not 0.5 <= self.confidence < 1:
            raise EvaluationError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if not math.isfinite(self.floor) or not math.isfinite(self.min_improvement):
            raise EvaluationError("the floor and the minimum improvement must be finite numbers")

    @property
    def classification(self) -> bool:
        return self.metric not in REGRESSION_METRICS

    def meets_floor(self, found: dict[str, float]) -> bool:
        value = found[self.floor_metric]
        return value >= self.floor if higher_is_better(self.floor_metric) else value <= self.floor


@dataclass(frozen=True)
class Evaluation:
    promote: bool
    reason: str
    metric: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    interval: list[float] | None
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(found: dict[str, float], classification: bool) -> str:
    return ", ".join(f"{_LABELS[m]} {found[m]:.3f}" for m in metrics_for(classification) if m in found)


def decide(
    y_true: Any,
    challenger_out: Any,
    champion_out: Any | None,
    rule: PromotionRule | None = None,
    classes: Any = None,
) -> Evaluation:
    """Decide on the models' outputs on the same rows: predictions for a regression, class probabilities (or the
    positive class's probability) for a classifier, whose ``classes`` are the label values in column order."""
    rule = rule or PromotionRule()
    classification = rule.classification
    y = np.asarray(y_true) if classification else np.asarray(y_true, dtype=float)
    new = np.asarray(challenger_out, dtype=float)
    if y.size < 2 or new.shape[0] != y.shape[0] or (not classification and new.shape != y.shape):
        raise EvaluationError(
            f"need at least 2 holdout rows with one prediction each, got {y.size} rows and {new.shape[0]} predictions"
        )
    try:
        mine = scores(y, new, classification=classification, classes=classes)
        if champion_out is None:
            return _first_model(rule, mine, int(y.size), classification)
        old = np.asarray(champion_out, dtype=float)
        theirs = scores(y, old, classification=classification, classes=classes)
        low, high = bootstrap_interval(
            rule.metric,
            y,
            new,
            old,
            classification=classification,
            classes=classes,
            confidence=rule.confidence,
            n_boot=rule.n_boot,
            seed=rule.seed,
        )
    except MetricError as exc:
        raise EvaluationError(str(exc)) from None
    promote = low > rule.min_improvement
    label = _LABELS[rule.metric]
    change = "reduction" if not higher_is_better(rule.metric) else "gain"
    interval = f"the {rule.confidence:.0%} interval of its {label} {change} [{low:+.2%}, {high:+.2%}]"
    why = (
        f"better beyond noise: {interval} lies above the required {rule.min_improvement:.2%}"
        if promote
        else f"not better beyond noise: {interval} does not lie above the required {rule.min_improvement:.2%}"
    )
    reason = (
        f"challenger {_fmt(mine, classification)} vs champion {_fmt(theirs, classification)} on the same "
        f"{y.size} holdout rows; {why}; {'promoted' if promote else 'champion kept'}"
    )
    return Evaluation(promote, reason, rule.metric, mine, theirs, [low, high], int(y.size))


def _first_model(rule: PromotionRule, mine: dict[str, float], rows: int, classification: bool) -> Evaluation:
    ok = rule.meets_floor(mine)
    verdict = "meets" if ok else "misses"
    bound = "at least" if higher_is_better(rule.floor_metric) else "at most"
    return Evaluation(
        ok,
        f"no champion yet: challenger {_fmt(mine, classification)} on {rows} holdout rows; its "
        f"{_LABELS[rule.floor_metric]} {verdict} the floor ({bound} {rule.floor:g}), so it is "
        f"{'promoted' if ok else 'not promoted'}",
        rule.metric,
        mine,
        None,
        None,
        rows,
    )


def model_output(model: Any, x: pd.DataFrame, classification: bool) -> tuple[Any, Any]:
    """(a model's output on ``x``, its classes): predictions for a regression, ``predict_proba`` for a classifier."""
    if not classification:
        return model.predict(x), None
    if not hasattr(model, "predict_proba"):
        raise EvaluationError(f"{type(model).__name__} has no predict_proba: a classifier must give probabilities")
    return model.predict_proba(x), getattr(model, "classes_", None)


def compare(
    challenger_dir: Path,
    champion_dir: Path | None,
    holdout: pd.DataFrame,
    rule: PromotionRule | None = None,
    schema: Schema = ACTIVE_SCHEMA,
) -> Evaluation:
    """Load both models and score them on the same ``holdout`` rows."""
    rule = rule or PromotionRule()
    missing = [c for c in schema.columns if c not in holdout.columns]
    if missing:
        raise EvaluationError(f"holdout lacks column(s) {', '.join(missing)}")
    x = holdout[schema.feature_names].astype(float)
    raw_y = holdout[schema.label.name]
    y = raw_y.to_numpy() if rule.classification else raw_y.to_numpy(dtype=float)
    challenger, classes = model_output(models.load(challenger_dir), x, rule.classification)
    champion = None
    if champion_dir is not None:
        champion, their_classes = model_output(models.load(champion_dir), x, rule.classification)
        if rule.classification and not np.array_equal(np.asarray(classes), np.asarray(their_classes)):
            raise EvaluationError(f"the models know different classes: {list(classes)} and {list(their_classes)}")
    return decide(y, challenger, champion, rule, classes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description="champion vs challenger")
    parser.add_argument("--challenger", required=True, type=Path)
    parser.add_argument("--champion", type=Path, default=None)
    parser.add_argument("--holdout", required=True, type=Path)
    parser.add_argument("--metric", default="rmse", choices=list(DIRECTION))
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--min-improvement", type=float, default=0.0)
    parser.add_argument("--floor", type=float, default=0.3, help="what a first model must reach (default 0.3)")
    parser.add_argument("--floor-metric", default="r2", choices=list(DIRECTION))
    args = parser.parse_args(argv)
    try:
        rule = PromotionRule(args.metric, args.confidence, args.min_improvement, args.floor, args.floor_metric)
        result = compare(args.challenger, args.champion, pd.read_csv(args.holdout), rule)
    except (EvaluationError, FileNotFoundError) as exc:
        print(f"evaluation failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
