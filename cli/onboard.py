"""`python -m cli models new NAME --from sample.csv --label COLUMN`: a first spec for a new model, for review.

The spec is inferred from the sample (``ml.onboard``), written to ``models/NAME/model.yaml`` under the app's root and
read back with the checks the app runs at start, so what is written is a spec the app accepts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from cli.config import CliError
from ml.onboard import OnboardError, infer_spec, spec_yaml
from ml.spec import NAME, SPEC_FILE, SpecError, load_spec


def read_sample(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CliError(f"no sample file {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=object, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path} as a table: {exc}") from None


def new_model(root: Path, name: str, sample: Path, label: str, *, margin: float = 0.5, force: bool = False) -> Path:
    """Write ``models/<name>/model.yaml`` inferred from ``sample``; returns the spec's path."""
    if not NAME.match(name):
        raise CliError(
            f"{name!r} cannot name a model: use 3-40 lowercase letters, digits and '-', starting with a "
            "letter and not ending with '-'"
        )
    if not 0 <= margin <= 10:
        raise CliError(f"--margin must be from 0 to 10 (a fraction of each column's span), got {margin}")
    folder = root / "models" / name
    if (folder / SPEC_FILE).exists() and not force:
        raise CliError(f"{folder / SPEC_FILE} exists; pass --force to replace it")
    frame = read_sample(sample)
    try:
        doc = infer_spec(_typed(frame), label, margin=margin)
    except OnboardError as exc:
        raise CliError(f"{sample}: {exc}") from None
    existed = folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SPEC_FILE
    path.write_text(spec_yaml(doc, sample.name), encoding="utf-8")
    try:
        load_spec(folder)
    except SpecError as exc:
        if not existed:
            shutil.rmtree(folder)
        raise CliError(f"the inferred spec does not pass the app's checks (nothing kept): {exc}") from None
    return path


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells as numbers where the whole column is numbers (missing cells aside), as the drops are read."""
    out = frame.copy()
    for column in out.columns:
        numbers = pd.to_numeric(out[column].replace("", None), errors="coerce")
        present = out[column].astype(str).str.strip() != ""
        if (numbers.notna() | ~present).all():
            out[column] = numbers
    return out
