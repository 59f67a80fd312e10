"""The search for repeated rows: the later copies, in file order, across batches and ranges of values."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ml.duplicates import _RANGE_ROWS, _ranges, find_repeated_values, later_copies


def repeats_in(batches: list[np.ndarray]) -> list[int]:
    with ThreadPoolExecutor(2) as pool:
        return later_copies(batches, [found.result() for found in find_repeated_values(batches, pool)]).tolist()


@pytest.mark.parametrize("one_sort_rows", [1 << 21, 0], ids=["one sort", "sorted batches cut into ranges"])
def test_repeats_are_the_later_copies_across_batches(one_sort_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ml.duplicates._ONE_SORT_ROWS", one_sort_rows)

    def repeats(*batches: list[int]) -> list[int]:
        return repeats_in([np.array(b, dtype=np.uint64) for b in batches])

    assert repeats([5, 1, 5], [7, 1], [5]) == [2, 4, 5]
    assert repeats(list(range(10))) == [] and repeats() == []
    high = 2**63 + 5  # in another range of values than 5
    assert repeats([high, 5], [5, high]) == [2, 3]


def test_repeats_over_many_ranges_of_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ml.duplicates._ONE_SORT_ROWS", 0)
    hashes = np.random.default_rng(0).integers(0, 2**64 - 1, 3 * _RANGE_ROWS, dtype=np.uint64, endpoint=True)
    hashes[[10, 500_000]] = hashes[[7, 600_000]]
    batches = np.array_split(hashes, 7)
    assert len(_ranges([np.sort(b) for b in batches])) > 2
    assert repeats_in(batches) == [10, 600_000]
