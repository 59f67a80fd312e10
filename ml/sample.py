"""The shipped sample: scikit-learn's diabetes data in raw units, as the data contract names it.

``python -m ml.sample --out FILE [--rows START:STOP] [--format csv|parquet]`` writes a drop.
It is also the default reference distribution for drift checks before any champion exists.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_diabetes

from ml.schema import ACTIVE_SCHEMA


@cache
def _frame() -> pd.DataFrame:
    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.frame.rename(columns={"target": ACTIVE_SCHEMA.label.name})
    return frame[ACTIVE_SCHEMA.columns].astype("float64")


def diabetes_frame() -> pd.DataFrame:
    return _frame().copy()


def reference_frame() -> pd.DataFrame:
    return diabetes_frame()


def parse_rows(text: str) -> slice:
    start, _, stop = text.partition(":")
    try:
        return slice(int(start) if start else None, int(stop) if stop else None)
    except ValueError:
        raise ValueError(f"--rows expects START:STOP (e.g. 0:300), got {text!r}") from None


def write_sample(path: Path, rows: slice | None = None, fmt: str = "csv") -> int:
    frame = diabetes_frame().iloc[rows or slice(None)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return len(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.sample", description="write the diabetes sample as a drop")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--rows", default=None, help="START:STOP slice of the 442 rows")
    parser.add_argument("--format", default="csv", choices=("csv", "parquet"))
    args = parser.parse_args(argv)
    try:
        count = write_sample(args.out, parse_rows(args.rows) if args.rows else None, args.format)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {count} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
