"""Every metric of both tasks against scikit-learn's own, and the promotion rule on classifiers and on R²."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from ml import models
from ml.errors import EvaluationError
from ml.estimators import logistic
from ml.evaluate import PromotionRule, compare, decide
from ml.metrics import MetricError, bootstrap_interval, relative_improvement, scores
from ml.sample import breast_cancer_frame
from ml.spec import SpecDefaults, load_spec
from services.catalog import MODELS_ROOT

RNG = np.random.default_rng(7)
N = 400
Y = RNG.integers(0, 2, N)


def probabilities(skill: float, rng: np.random.Generator) -> np.ndarray:
    """A positive-class probability that separates the classes by ``skill`` (0: a coin)."""
    logit = skill * (2 * Y - 1) + rng.normal(0, 1, N)
    return 1 / (1 + np.exp(-logit))


def test_binary_scores_are_scikit_learns() -> None:
    p = probabilities(1.0, np.random.default_rng(1))
    found = scores(Y, p, classification=True)
    assert found["auc"] == pytest.approx(roc_auc_score(Y, p))
    assert found["log_loss"] == pytest.approx(log_loss(Y, p))
    assert found["accuracy"] == pytest.approx(accuracy_score(Y, p > 0.5))


def test_multiclass_scores_are_scikit_learns_with_text_labels() -> None:
    rng = np.random.default_rng(2)
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 300)]
    proba = rng.dirichlet([1, 1, 1], 300)
    found = scores(labels, proba, classification=True, classes=["a", "b", "c"])
    assert found["log_loss"] == pytest.approx(log_loss(labels, proba, labels=["a", "b", "c"]))
    assert found["accuracy"] == pytest.approx(accuracy_score(labels, np.array(["a", "b", "c"])[proba.argmax(1)]))
    assert found["auc"] == pytest.approx(roc_auc_score(labels, proba, multi_class="ovr", average="macro"))


@pytest.mark.parametrize("metric", ["log_loss", "auc", "accuracy"])
def test_a_clearly_better_classifier_is_promoted_on_each_metric(metric: str) -> None:
    old, new = probabilities(0.5, np.random.default_rng(3)), probabilities(2.5, np.random.default_rng(4))
    rule = PromotionRule(metric=metric, floor_metric="auc", floor=0.7)
    better = decide(Y, new, old, rule)
    assert better.promote and better.interval is not None and better.interval[0] > 0, better.reason
    worse = decide(Y, old, new, rule)
    assert not worse.promote and worse.interval is not None and worse.interval[1] < 0
    assert "champion kept" in worse.reason and "AUC" in worse.reason and "log loss" in worse.reason


def test_a_noise_level_classifier_is_not_promoted() -> None:
    old = probabilities(1.0, np.random.default_rng(5))
    new = np.clip(old + np.random.default_rng(6).normal(0, 0.002, N), 0.001, 0.999)
    result = decide(Y, new, old, PromotionRule(metric="log_loss", floor_metric="auc", floor=0.7))
    assert not result.promote
    assert result.interval is not None and result.interval[0] < 0 < result.interval[1]


def test_r2_can_decide_a_regression_and_its_interval_agrees_with_rmse() -> None:
    y = RNG.normal(150, 70, 300)
    noise = RNG.normal(0, 1, 300)
    old, new = y + 60 * noise, y + 30 * noise
    on_r2 = decide(y, new, old, PromotionRule(metric="r2"))
    on_rmse = decide(y, new, old, PromotionRule(metric="rmse"))
    assert on_r2.promote and on_rmse.promote
    assert "R² gain" in on_r2.reason and "RMSE reduction" in on_rmse.reason


def test_the_first_classifier_needs_its_floor() -> None:
    rule = PromotionRule(metric="log_loss", floor_metric="auc", floor=0.8)
    good = decide(Y, probabilities(3.0, np.random.default_rng(8)), None, rule)
    coin = decide(Y, probabilities(0.0, np.random.default_rng(9)), None, rule)
    assert good.promote and "AUC meets the floor (at least 0.8)" in good.reason
    assert not coin.promote and "AUC misses the floor (at least 0.8)" in coin.reason
    lossy = decide(
        Y, probabilities(0.0, np.random.default_rng(9)), None, PromotionRule("log_loss", 0.95, 0, 0.3, "log_loss")
    )
    assert not lossy.promote and "log loss misses the floor (at most 0.3)" in lossy.reason


def test_relative_improvement_is_positive_when_better_in_either_direction() -> None:
    assert relative_improvement("rmse", 40.0, 50.0) == pytest.approx(0.2)
    assert relative_improvement("auc", 0.9, 0.75) == pytest.approx(0.2)
    assert relative_improvement("log_loss", 0.6, 0.5) == pytest.approx(-0.2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: scores([0, 2], [0.1, 0.9], classification=True, classes=[0, 1]), "labels 2 are not among"),
        (lambda: scores([0, 1, 2], np.full((3, 2), 0.5), classification=True), "probabilities of 3 classes"),
        (
            lambda: bootstrap_interval(
                "auc", [0, 1, 2], np.full((3, 3), 1 / 3), np.full((3, 3), 1 / 3), classification=True
            ),
            "AUC as a promotion metric is for binary tasks",
        ),
        (lambda: bootstrap_interval("rmse", Y, Y, Y, classification=True), "not a metric of this task"),
    ],
)
def test_metrics_that_do_not_apply_say_why(call: object, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        call()  # type: ignore[operator]


def test_rules_mixing_tasks_are_refused() -> None:
    with pytest.raises(EvaluationError, match="of different tasks"):
        PromotionRule(metric="log_loss", floor_metric="r2")
    with pytest.raises(EvaluationError, match="must be one of"):
        PromotionRule(metric="f1")


def test_compare_scores_saved_classifiers_by_their_probabilities(tmp_path: Path) -> None:
    spec = load_spec(MODELS_ROOT / "breast-cancer", SpecDefaults())
    frame = breast_cancer_frame()
    train, holdout = frame.iloc[:400], frame.iloc[400:]
    x, y = train[spec.schema.feature_names], train[spec.schema.label.name]
    models.save(logistic(C=1.0).fit(x, y), tmp_path / "strong", x.head(5), spec.schema)
    weak = logistic(C=1e-4).fit(x[["mean radius"]].assign(**dict.fromkeys(spec.schema.feature_names[1:], 0.0)), y)
    models.save(weak, tmp_path / "weak", x.head(5), spec.schema)
    rule = PromotionRule(metric="log_loss", floor_metric="auc", floor=0.8)
    result = compare(tmp_path / "strong", tmp_path / "weak", holdout, rule, spec.schema)
    assert result.promote, result.reason
    assert result.challenger["auc"] > 0.95 and result.n_rows == len(holdout)
    first = compare(tmp_path / "strong", None, pd.DataFrame(holdout), rule, spec.schema)
    assert first.promote and "AUC meets the floor" in first.reason
