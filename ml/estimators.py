"""Estimator factories a spec can name (``estimator.factory: ml.estimators:ridge``).

A factory is any importable callable returning a scikit-learn estimator (``sklearn.ensemble:RandomForestRegressor``
works as well as these), called with the spec's ``estimator.params``.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

ALPHAS = np.logspace(-3, 3, 13)


def ridge(alpha: float | None = None) -> Pipeline:
    """Scaling + ridge; with no ``alpha`` it is chosen by cross-validation (efficient leave-one-out)."""
    model = Ridge(alpha=alpha) if alpha is not None else RidgeCV(alphas=ALPHAS)
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def logistic(C: float = 1.0, max_iter: int = 1000) -> Pipeline:
    """Scaling + logistic regression (binary or multinomial): probabilities a classifier's answer carries."""
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=C, max_iter=max_iter))])
