"""Text cells as numbers: the slow path of validation, for a column that is not already typed (a CSV piece holding a
value that is not a number, an in-memory table of strings). Every cell that is missing, unparseable or not finite is
named with its row."""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = frozenset({"", "na", "n/a", "null", "none"})
NONFINITE = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
#: the spellings of a truth value in a text cell
TRUE = frozenset({"true", "1", "1.0", "yes"})
FALSE = frozenset({"false", "0", "0.0", "no"})


def parse_text_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]], np.ndarray]:
    """Floats for a column of text, plus 1-based rows that are missing, unparseable (with the text), non-finite."""
    out = np.full(len(values), np.nan)
    missing: list[int] = []
    nonfinite: list[int] = []
    bad: list[tuple[int, str]] = []
    for i, cell in enumerate(values.astype(str).str.strip()):
        low = cell.lower()
        if low in MISSING:
            missing.append(i + 1)
        elif low in NONFINITE:
            nonfinite.append(i + 1)
        else:
            try:
                out[i] = float(cell)
            except ValueError:
                bad.append((i + 1, cell))
    return out, np.array(missing, dtype=int), bad, np.array(nonfinite, dtype=int)
