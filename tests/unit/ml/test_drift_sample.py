"""The drift sample: the rows with the lowest row hashes, the same whatever the batches, uniform over rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.drift_sample import DriftSample
from ml.row_hash import row_hashes


def drift_sample(columns: list[np.ndarray], cuts: list[int], size: int) -> pd.DataFrame:
    sample = DriftSample(size)
    for part in np.split(np.arange(len(columns[0])), cuts):
        if part.size:
            batch = [column[part] for column in columns]
            sample.add(*sample.candidates(row_hashes(batch), batch))
    return sample.frame([f"c{i}" for i in range(len(columns))])


@pytest.mark.parametrize("cuts", [[], [1], [7, 8, 9], list(range(0, 5000, 333)), [2500]])
def test_drift_sample_is_the_rows_with_the_lowest_hashes_whatever_the_batches(cuts: list[int]) -> None:
    rows, size = 5000, 300
    values = np.arange(rows, dtype=float)
    sample = drift_sample([values, values * 2], cuts, size)
    expected = np.sort(np.argsort(row_hashes([values, values * 2]))[:size]).astype(float)
    assert np.array_equal(sample["c0"].to_numpy(), expected)
    assert np.array_equal(sample["c1"].to_numpy(), sample["c0"].to_numpy() * 2)


@pytest.mark.parametrize("cuts", [[], [2500], list(range(0, 5000, 400))])
def test_drift_sample_keeps_every_copy_of_a_repeated_row_it_takes(cuts: list[int]) -> None:
    """4,900 copies of one row and 100 other rows: the copies share one key, so a batch has fewer than the sample's
    size of distinct keys under any cut, and the sample is the rows up to its 300th lowest key, ties and all."""
    values = np.concatenate([np.arange(100, dtype=float), np.full(4900, 1000.0)])
    np.random.default_rng(5).shuffle(values)
    columns = [values, values * 3]
    keys = row_hashes(columns)
    expected = values[keys <= np.sort(keys)[299]]
    assert np.count_nonzero(expected == 1000.0) == 4900
    assert np.array_equal(drift_sample(columns, cuts, 300)["c0"].to_numpy(), expected)


def test_drift_sample_is_uniform_over_rows_and_values() -> None:
    """Rows picked by hash must not lean on position or on any column's values (integers, tiny steps, a label)."""
    rows = 200_000
    position = np.arange(rows, dtype=float)
    small_steps = 50 + (position % 1000) * 1e-6
    integers = position % 97
    sample = drift_sample([integers, small_steps, position], list(range(0, rows, 65_536)), 4000)
    assert len(sample) == 4000
    assert stats.kstest(sample["c2"] / rows, "uniform").pvalue > 0.001
    assert stats.kstest((sample["c1"] - 50) / 1e-3, "uniform").pvalue > 0.001
    assert stats.chisquare(np.bincount(sample["c0"].astype(int), minlength=97)).pvalue > 0.001
