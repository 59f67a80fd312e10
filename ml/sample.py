"""The shipped samples: scikit-learn's diabetes data in raw units and its breast cancer data (Wisconsin diagnostic),
as the two shipped models' contracts name them (``models/diabetes-ridge``, ``models/breast-cancer``).

``python -m ml.sample --out FILE [--rows START:STOP] [--format csv|parquet]`` writes a drop;
``--synthetic N [--seed S] [--shift X] [--scale Y]`` writes N synthetic patients instead (see ``synthetic``).
It is also the default reference distribution for drift checks before any champion exists.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes

from ml.schema import ACTIVE_SCHEMA

#: features with more distinct values than this in the sample are jittered by ``synthetic``
_JITTERED = 120


@cache
def _frame() -> pd.DataFrame:
    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.frame.rename(columns={"target": ACTIVE_SCHEMA.label.name})
    return frame[ACTIVE_SCHEMA.columns].astype("float64")


def diabetes_frame() -> pd.DataFrame:
    return _frame().copy()


def reference_frame() -> pd.DataFrame:
    return diabetes_frame()


@cache
def _cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame.astype({"target": "int64"})


def breast_cancer_frame() -> pd.DataFrame:
    """569 tumours, 30 measurements each, and ``target``: 0 malignant, 1 benign."""
    return _cancer().copy()


def synthetic(rows: int, seed: int, *, shift: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    """``rows`` patients resampled from the sample with 1% jitter on the finely measured features (so no duplicate
    rows; features with many ties are kept exact, so no drift either), and the label recalibrated as
    ``target * scale + shift``, kept in range.

    Drops with another calibration make a champion clearly worse on them: demos, end-to-end tests and the pipeline
    benchmark use this to get a new model promoted, deterministically."""
    rng = np.random.default_rng(seed)
    base = _frame()
    picked = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    for col in ACTIVE_SCHEMA.features:
        if base[col.name].nunique() > _JITTERED:
            jittered = picked[col.name] * (1 + rng.normal(0, 0.01, rows))
            picked[col.name] = jittered.clip(col.low, col.high).round(4)
    label = ACTIVE_SCHEMA.label
    picked[label.name] = (picked[label.name] * scale + shift).clip(label.low, label.high)
    return picked


def parse_rows(text: str) -> slice:
    start, _, stop = text.partition(":")
    try:
        return slice(int(start) if start else None, int(stop) if stop else None)
    except ValueError:
        raise ValueError(f"--rows expects START:STOP (e.g. 0:300), got {text!r}") from None


def write_sample(path: Path, rows: slice | None = None, fmt: str = "csv", frame: pd.DataFrame | None = None) -> int:
    frame = diabetes_frame().iloc[rows or slice(None)] if frame is None else frame
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
    parser.add_argument("--synthetic", type=int, default=None, metavar="N", help="write N synthetic patients")
    parser.add_argument("--seed", type=int, default=0, help="seed of --synthetic")
    parser.add_argument("--shift", type=float, default=0.0, help="--synthetic: added to the recalibrated label")
    parser.add_argument("--scale", type=float, default=1.0, help="--synthetic: the label is multiplied by it")
    args = parser.parse_args(argv)
    try:
        made = (
            synthetic(args.synthetic, args.seed, shift=args.shift, scale=args.scale)
            if args.synthetic is not None
            else None
        )
        count = write_sample(args.out, parse_rows(args.rows) if args.rows else None, args.format, made)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {count} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
