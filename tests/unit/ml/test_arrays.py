"""huge_empty: an array of the size asked for; from 1 MB on, it starts on a huge-page boundary."""

from __future__ import annotations

import numpy as np
import pytest

from ml.arrays import HUGE_PAGE, huge_empty


@pytest.mark.parametrize("size", [0, 10, HUGE_PAGE // 16 - 1, HUGE_PAGE // 16, 500_001])
def test_huge_empty_is_a_writable_array_of_the_size_asked(size: int) -> None:
    array = huge_empty(size, np.uint64)
    assert array.shape == (size,) and array.dtype == np.uint64 and array.flags.c_contiguous
    array[:] = 7
    assert np.count_nonzero(array == 7) == size
    if array.nbytes >= HUGE_PAGE // 2:
        assert array.ctypes.data % HUGE_PAGE == 0
