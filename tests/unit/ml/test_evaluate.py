"""The promotion rule: clearly better, clearly worse, noise-level, and the first-model floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.errors import EvaluationError
from ml.evaluate import PromotionRule, compare, decide
from ml.sample import write_sample
from ml.train import train

RNG = np.random.default_rng(42)
Y = RNG.normal(150, 70, 200)
NOISE = RNG.normal(0, 1, 200)


def test_clearly_better_challenger_is_promoted() -> None:
    champion = Y + 60 * NOISE
    challenger = Y + 30 * NOISE
    result = decide(Y, challenger, champion)
    assert result.promote
    assert result.interval is not None and result.interval[0] > 0
    assert "better beyond noise" in result.reason and "promoted" in result.reason


def test_clearly_worse_challenger_is_not_promoted() -> None:
    champion = Y + 30 * NOISE
    challenger = Y + 60 * NOISE
    result = decide(Y, challenger, champion)
    assert not result.promote
    assert result.interval is not None and result.interval[1] < 0
    assert "champion kept" in result.reason


def test_noise_level_challenger_is_not_promoted() -> None:
    champion = Y + 50 * NOISE
    other = RNG.normal(0, 1, 200)
    challenger = Y + 50 * (0.999 * NOISE + 0.045 * other)
    result = decide(Y, challenger, champion)
    assert not result.promote
    assert result.interval is not None and result.interval[0] < 0 < result.interval[1]
    assert "not better beyond noise" in result.reason


def test_minimum_improvement_is_required() -> None:
    champion = Y + 60 * NOISE
    challenger = Y + 55 * NOISE
    assert decide(Y, challenger, champion).promote
    assert not decide(Y, challenger, champion, PromotionRule(min_improvement=0.2)).promote


def test_reason_holds_both_metrics_and_the_interval() -> None:
    result = decide(Y, Y + 30 * NOISE, Y + 60 * NOISE)
    assert result.champion is not None
    assert f"RMSE {result.challenger['rmse']:.3f}" in result.reason
    assert f"RMSE {result.champion['rmse']:.3f}" in result.reason
    assert "95% interval" in result.reason
    assert result.to_dict()["n_rows"] == 200


def test_first_model_needs_the_floor() -> None:
    good = decide(Y, Y + 20 * NOISE, None)
    bad = decide(Y, np.full_like(Y, Y.mean()) + NOISE, None)
    assert good.promote and "meets the floor" in good.reason
    assert not bad.promote and "misses the floor (at least 0.3)" in bad.reason


def test_decision_is_deterministic() -> None:
    a = decide(Y, Y + 49 * NOISE, Y + 50 * NOISE)
    b = decide(Y, Y + 49 * NOISE, Y + 50 * NOISE)
    assert a == b


@pytest.mark.parametrize("rule", [{"metric": "mape"}, {"confidence": 1.2}])
def test_bad_rule_is_refused(rule: dict[str, object]) -> None:
    with pytest.raises(EvaluationError):
        PromotionRule(**rule)  # type: ignore[arg-type]


def test_compare_scores_saved_models_on_the_same_rows(tmp_path: Path) -> None:
    write_sample(tmp_path / "d.csv")
    train([tmp_path / "d.csv"], tmp_path / "champ", alpha=1000.0)
    train([tmp_path / "d.csv"], tmp_path / "chal")
    holdout = pd.read_csv(tmp_path / "chal" / "holdout.csv")
    result = compare(tmp_path / "chal" / "model", tmp_path / "champ" / "model", holdout)
    assert result.n_rows == len(holdout)
    assert result.promote, result.reason
    with pytest.raises(EvaluationError, match="holdout lacks column"):
        compare(tmp_path / "chal" / "model", None, holdout.drop(columns=["bmi"]))
