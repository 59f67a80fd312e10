"""numpy memory that is cheap to fault in."""

from __future__ import annotations

import numpy as np

HUGE_PAGE = 1 << 21


def huge_empty(size: int, dtype: type[np.generic]) -> np.ndarray:
    """An uninitialised array that starts on a 2 MB boundary, for arrays of 1 MB and more.

    numpy asks the kernel for transparent huge pages for large arrays, but only the whole 2 MB pages inside an array
    can be huge (and ``np.zeros`` asks for none): a 4 MB array faulted in 4 KB pages costs about a thousand page
    faults, which dominated the row hashes and their sorted copies in a VM (each fault of fresh memory goes out to
    the host). Aligned, it costs two. The allocation is rounded up to whole huge pages (untouched address space costs
    nothing). Smaller arrays come from malloc."""
    nbytes = size * np.dtype(dtype).itemsize
    if nbytes < HUGE_PAGE // 2:
        return np.empty(size, dtype=dtype)
    raw = np.empty(-(-nbytes // HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE, dtype=np.uint8)
    skip = -raw.ctypes.data % HUGE_PAGE
    return raw[skip : skip + nbytes].view(dtype)
