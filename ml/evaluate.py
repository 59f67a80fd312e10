"""Champion vs challenger on the same holdout rows, and the promotion rule.

``decide`` is a pure function: the challenger is promoted only if it is better beyond noise — the lower
bound of a paired bootstrap confidence interval of its relative error reduction exceeds
``min_improvement``. With no champion, an absolute floor on R² decides. A losing challenger is a normal
result with its reasons, never an exception.

CLI: ``python -m ml.evaluate --challenger DIR [--champion DIR] --holdout CSV`` prints the evaluation JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml import models
from ml.errors import EvaluationError
from ml.schema import ACTIVE_SCHEMA, Schema

METRICS = ("rmse", "mae")
_CHUNK = 250


@dataclass(frozen=True)
class PromotionRule:
    metric: str = "rmse"
    confidence: float = 0.95
    min_improvement: float = 0.0
    r2_floor: float = 0.3
    n_boot: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise EvaluationError(f"promotion metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if not 0.5 <= self.confidence < 1:
            raise EvaluationError(f"confidence must be in [0.5, 1), got {self.confidence}")


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


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float(np.sum(err**2)) / total if total > 0 else 0.0,
    }


def _boot_errors(loss: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    mean = loss[idx].mean(axis=1)
    return np.sqrt(mean) if metric == "rmse" else mean


def bootstrap_interval(
    y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, rule: PromotionRule
) -> tuple[float, float]:
    """CI of the relative improvement (champion error - challenger error) / champion error, paired by row."""
    power = 2 if rule.metric == "rmse" else 1
    loss_new, loss_old = np.abs(challenger - y) ** power, np.abs(champion - y) ** power
    rng = np.random.default_rng(rule.seed)
    rel: list[np.ndarray] = []
    for start in range(0, rule.n_boot, _CHUNK):
        idx = rng.integers(0, y.size, size=(min(_CHUNK, rule.n_boot - start), y.size))
        old, new = _boot_errors(loss_old, idx, rule.metric), _boot_errors(loss_new, idx, rule.metric)
        rel.append((old - new) / np.maximum(old, 1e-12))
    samples = np.concatenate(rel)
    tail = (1 - rule.confidence) / 2
    return float(np.quantile(samples, tail)), float(np.quantile(samples, 1 - tail))


def _fmt(m: dict[str, float]) -> str:
    return f"RMSE {m['rmse']:.3f}, MAE {m['mae']:.3f}, R² {m['r2']:.3f}"


def decide(
    y_true: np.ndarray, challenger_pred: np.ndarray, champion_pred: np.ndarray | None, rule: PromotionRule | None = None
) -> Evaluation:
    rule = rule or PromotionRule()
    y, new = np.asarray(y_true, dtype=float), np.asarray(challenger_pred, dtype=float)
    if y.size < 2 or new.shape != y.shape:
        raise EvaluationError(
            f"need at least 2 holdout rows with one prediction each, got {y.size} rows and {new.size} predictions"
        )
    mine = scores(y, new)
    if champion_pred is None:
        ok = mine["r2"] >= rule.r2_floor
        verdict = "meets" if ok else "is below"
        return Evaluation(
            ok,
            f"no champion yet: challenger {_fmt(mine)} on {y.size} holdout rows; its R² "
            f"{verdict} the floor {rule.r2_floor:g}, so it is {'promoted' if ok else 'not promoted'}",
            rule.metric,
            mine,
            None,
            None,
            int(y.size),
        )
    old = np.asarray(champion_pred, dtype=float)
    theirs = scores(y, old)
    low, high = bootstrap_interval(y, new, old, rule)
    promote = low > rule.min_improvement
    why = (
        (
            f"better beyond noise: the {rule.confidence:.0%} interval of its {rule.metric.upper()} reduction "
            f"[{low:+.2%}, {high:+.2%}] lies above the required {rule.min_improvement:.2%}"
        )
        if promote
        else (
            f"not better beyond noise: the {rule.confidence:.0%} interval of its {rule.metric.upper()} reduction "
            f"[{low:+.2%}, {high:+.2%}] does not lie above the required {rule.min_improvement:.2%}"
        )
    )
    reason = (
        f"challenger {_fmt(mine)} vs champion {_fmt(theirs)} on the same {y.size} holdout rows; {why}; "
        f"{'promoted' if promote else 'champion kept'}"
    )
    return Evaluation(promote, reason, rule.metric, mine, theirs, [low, high], int(y.size))


def compare(
    challenger_dir: Path,
    champion_dir: Path | None,
    holdout: pd.DataFrame,
    rule: PromotionRule | None = None,
    schema: Schema = ACTIVE_SCHEMA,
) -> Evaluation:
    """Load both models and score them on the same ``holdout`` rows."""
    missing = [c for c in schema.columns if c not in holdout.columns]
    if missing:
        raise EvaluationError(f"holdout lacks column(s) {', '.join(missing)}")
    x, y = holdout[schema.feature_names].astype(float), holdout[schema.label.name].to_numpy(dtype=float)
    challenger = models.load(challenger_dir).predict(x)
    champion = models.load(champion_dir).predict(x) if champion_dir is not None else None
    return decide(y, challenger, champion, rule)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description="champion vs challenger")
    parser.add_argument("--challenger", required=True, type=Path)
    parser.add_argument("--champion", type=Path, default=None)
    parser.add_argument("--holdout", required=True, type=Path)
    parser.add_argument("--metric", default="rmse", choices=METRICS)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--min-improvement", type=float, default=0.0)
    parser.add_argument("--r2-floor", type=float, default=0.3)
    args = parser.parse_args(argv)
    try:
        rule = PromotionRule(args.metric, args.confidence, args.min_improvement, args.r2_floor)
        result = compare(args.challenger, args.champion, pd.read_csv(args.holdout), rule)
    except (EvaluationError, FileNotFoundError) as exc:
        print(f"evaluation failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
