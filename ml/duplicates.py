"""The search for repeated rows, by their 64-bit row hashes, over the batches of a file.

Finding whether any value repeats takes a sort (much faster than a hash table over millions of rows); only the rows
holding a repeated value are then looked at one by one. The sorts run on a thread pool (numpy releases the GIL).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Event

import numpy as np
import pandas as pd

from ml.arrays import huge_empty

_ONE_SORT_ROWS = 1 << 21
_RANGE_ROWS = 1 << 18
_HALF = np.uint64(1 << 63)
_NO_HASHES = np.empty(0, dtype=np.uint64)
_NO_ROWS = np.empty(0, dtype=np.int64)


def find_repeated_values(hashes: list[np.ndarray], pool: ThreadPoolExecutor) -> list[Future[np.ndarray]]:
    """The values found more than once in the batches' ``hashes``, searched on ``pool``, in parts.

    Up to ``_ONE_SORT_ROWS`` values, each half of the range of values is gathered here and sorted on a thread of its
    own; both sorts are under way when this returns, so the caller can go on with work that holds the GIL (drift)
    without keeping them waiting. Beyond, each batch is sorted and the sorted batches are cut into ranges of values
    that are searched one by one, so that no array gets as large as the whole file."""
    if sum(h.size for h in hashes) <= _ONE_SORT_ROWS:
        return [_started(pool, _repeated_sorted, _half(hashes, high)) for high in (False, True)]
    ordered = list(pool.map(_sorted_copy, hashes))
    return [pool.submit(_repeated_in, part) for part in _ranges(ordered)]


def _started(
    pool: ThreadPoolExecutor, task: Callable[[np.ndarray], np.ndarray], values: np.ndarray
) -> Future[np.ndarray]:
    """``task(values)`` submitted to ``pool``, once it runs. A thread that needs the GIL while another holds it
    waits up to the interpreter's switch interval (5 ms); the task needs it only to start, then sorts without it."""
    running = Event()

    def run() -> np.ndarray:
        running.set()
        return task(values)

    future = pool.submit(run)
    running.wait()
    return future


def later_copies(hashes: list[np.ndarray], repeated: list[np.ndarray]) -> np.ndarray:
    """Positions (0-based, in file order) of the values seen before, given the batches' ``hashes`` and the values
    found more than once (the parts of ``find_repeated_values``)."""
    values_seen_twice = np.unique(np.concatenate([_NO_HASHES, *repeated]))
    if not values_seen_twice.size:
        return _NO_ROWS
    suspects, values, start = [], [], 0
    last = values_seen_twice.size - 1
    for batch in hashes:
        at = np.flatnonzero(values_seen_twice[np.searchsorted(values_seen_twice, batch).clip(max=last)] == batch)
        suspects.append(at + start)
        values.append(batch[at])
        start += batch.size
    rows = np.concatenate(suspects)
    return rows[pd.Series(np.concatenate(values)).duplicated(keep="first").to_numpy()]


def _half(hashes: list[np.ndarray], high: bool) -> np.ndarray:
    """The values in the lower (or ``high``er) half of the range of values, in one array."""
    masks = [part >= _HALF if high else part < _HALF for part in hashes]
    counts = [int(np.count_nonzero(mask)) for mask in masks]
    values = huge_empty(sum(counts), np.uint64)
    start = 0
    for part, mask, count in zip(hashes, masks, counts, strict=True):
        stop = start + count
        np.compress(mask, part, out=values[start:stop])
        start = stop
    return values


def _sorted_copy(values: np.ndarray) -> np.ndarray:
    ordered = huge_empty(values.size, np.uint64)
    ordered[:] = values
    ordered.sort()
    return ordered


def _ranges(ordered: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The sorted batches cut into ranges of values of about ``_RANGE_ROWS`` rows in all."""
    total = sum(o.size for o in ordered)
    bits = int(np.ceil(np.log2(total / _RANGE_ROWS))) if total > _RANGE_ROWS else 0
    edges = np.arange(1, 1 << bits, dtype=np.uint64) << np.uint64(64 - bits)
    bounds = [np.concatenate(([0], np.searchsorted(o, edges), [o.size])) for o in ordered]
    return [[o[b[i] : b[i + 1]] for o, b in zip(ordered, bounds, strict=True)] for i in range(edges.size + 1)]


def _repeated_in(part: list[np.ndarray]) -> np.ndarray:
    """The values found more than once in one range of the sorted batches."""
    values = np.concatenate([_NO_HASHES, *part], out=huge_empty(sum(p.size for p in part), np.uint64))
    return _repeated_sorted(values)


def _repeated_sorted(values: np.ndarray) -> np.ndarray:
    """The values found more than once in ``values``, which are sorted in place (no second array of their size)."""
    values.sort()
    return values[1:][values[1:] == values[:-1]]
