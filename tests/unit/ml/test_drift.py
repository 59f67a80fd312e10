"""The drift statistics: our two-sample KS equals scipy's; PSI is near zero for the same data and large for a shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ml.drift import ks_2samp, psi


def cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        ("same law", rng.normal(size=442), rng.normal(size=20_000)),
        ("shifted", rng.normal(size=442), rng.normal(0.3, 1, size=20_000)),
        ("ties", rng.integers(0, 5, 442).astype(float), rng.integers(0, 6, 30_000).astype(float)),
        ("current below all", rng.normal(size=300), rng.normal(-10, 1, size=12_000)),
        ("current inside one step", np.array([0.0, 1.0, 2.0] * 100), rng.uniform(1.2, 1.8, 15_000)),
        ("large reference", rng.normal(size=50_000), rng.normal(0.01, 1, size=20_000)),
        ("small, exact", rng.normal(size=300), rng.normal(0.2, 1, size=500)),
    ]


@pytest.mark.parametrize(("name", "reference", "current"), cases(), ids=[c[0] for c in cases()])
def test_ks_equals_scipy(name: str, reference: np.ndarray, current: np.ndarray) -> None:
    expected = stats.ks_2samp(reference, current)
    statistic, pvalue = ks_2samp(reference, current)
    assert statistic == pytest.approx(float(expected.statistic), abs=1e-12)
    assert pvalue == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-300)


def test_psi_is_small_for_the_same_law_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=5000)
    assert psi(reference, rng.normal(size=20_000)) < 0.01
    assert psi(reference, rng.normal(1.0, 1, size=20_000)) > 0.25
