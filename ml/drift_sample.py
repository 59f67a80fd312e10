"""The drift sample: a uniform sample of a stream of rows, kept as the rows with the lowest row hashes.

The row hash ends with a full avalanche, so its order is a uniform shuffle of the distinct rows, and the sample is the
same whatever the batches (duplicate rows go in or out together). Each batch offers its rows among its ``size``
lowest keys and at most the sample's current bound (found on the scanning thread); the merged candidates are cut
back to the lowest ``size`` once they reach four times that, which lowers the bound, so later batches offer fewer
rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.arrays import huge_empty

_KEYS = 2**64 - 1  # the largest key
NO_BOUND = np.uint64(_KEYS)

Rows = tuple[np.ndarray, list[np.ndarray]]  # keys and the columns of their rows


class DriftSample:
    """Up to ``size`` rows of a stream: those with the lowest keys."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.bound = NO_BOUND  # the ``size``-th lowest key merged so far: no key above it can be in the sample
        self.keys: list[np.ndarray] = []
        self.columns: list[list[np.ndarray]] = []
        self.pooled = 0

    def candidates(self, keys: np.ndarray, columns: list[np.ndarray]) -> Rows:
        """The rows of one batch that may be in the sample (reads only ``bound``: safe on any thread)."""
        return lowest(keys, columns, self.size, self.bound)

    def add(self, keys: np.ndarray, columns: list[np.ndarray]) -> None:
        """Merge a batch's candidates (batches in file order)."""
        self.keys.append(keys)
        self.columns.append(columns)
        self.pooled += keys.size
        if self.pooled >= 4 * self.size:
            self._cut()

    def frame(self, names: list[str]) -> pd.DataFrame:
        """The sample, its columns named ``names``."""
        if not self.keys:
            return pd.DataFrame(columns=names)
        self._cut()
        return pd.DataFrame(dict(zip(names, self.columns[0], strict=True)), copy=False)

    def _cut(self) -> None:
        """Keep the lowest ``size`` keys, taking from each part what it keeps straight into one block."""
        if len(self.keys) == 1:
            return
        pooled = np.concatenate(self.keys)
        cut = np.partition(pooled, self.size - 1)[self.size - 1] if pooled.size > self.size else pooled.max()
        keys, columns = _gather(self.keys, self.columns, [np.flatnonzero(part <= cut) for part in self.keys])
        self.keys, self.columns, self.pooled = [keys], [columns], keys.size
        if keys.size >= self.size:
            self.bound = min(self.bound, cut)


def lowest(keys: np.ndarray, columns: list[np.ndarray], size: int, bound: np.uint64 = NO_BOUND) -> Rows:
    """The rows whose keys are among the ``size`` lowest and at most ``bound``, in their original order; rows tied with
    the last one kept are kept too (they are the same row).

    The keys are uniform, so the ``size`` lowest of ``n`` are very likely below twice ``size / n`` of the key range:
    the rows under that guess are found in one pass and only they are partitioned (if they are too few, all are)."""
    if keys.size > size:
        guess = min(bound, np.uint64(min(_KEYS, _KEYS * 2 * size // keys.size)))
        at = np.flatnonzero(keys <= guess)
        if at.size < size and guess < bound:
            at = np.flatnonzero(keys <= bound)
        if at.size > size:
            candidates = keys.take(at)
            at = at[candidates <= np.partition(candidates, size - 1)[size - 1]]
        return _gather([keys], [columns], [at])
    return _gather([keys], [columns], [np.flatnonzero(keys <= bound)])


def _gather(keys: list[np.ndarray], columns: list[list[np.ndarray]], keeps: list[np.ndarray]) -> Rows:
    """The rows ``keeps`` of each part (its ``keys`` and ``columns``), in order, taken straight into one block."""
    total = sum(keep.size for keep in keeps)
    kept_keys = np.empty(total, dtype=np.uint64)
    block = huge_empty(len(columns[0]) * total, np.float64).reshape(len(columns[0]), total)
    start = 0
    for keep, part, part_columns in zip(keeps, keys, columns, strict=True):
        stop = start + keep.size
        np.take(part, keep, out=kept_keys[start:stop])
        for column, kept in zip(part_columns, block, strict=True):
            np.take(column, keep, out=kept[start:stop])
        start = stop
    return kept_keys, list(block)
