"""A stand-in for ``python -m ml.train`` with the same CLI and outputs; ``--mode`` picks how it behaves."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--gate", default="", help="mode 'gate': wait (up to 120 s) until this file exists")
    args = parser.parse_args()
    rows = sum(len(Path(p).read_text().splitlines()) - 1 for p in args.data)
    print(f"read {rows} rows from {len(args.data)} files", flush=True)
    if args.mode == "fail":
        print("column 'bmi': expected numbers, got 'abc' in row 3", flush=True)
        return 2
    if args.mode == "hang":
        print("training forever", flush=True)
        time.sleep(120)
        return 0
    if args.mode == "gate":
        print("waiting at the gate", flush=True)
        deadline = time.monotonic() + 120
        while not Path(args.gate).exists():
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.05)
    out = Path(args.output)
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "model" / "MLmodel").write_text("flavors: {}\n")
    (out / "metrics.json").write_text(json.dumps({"rmse": 50.5, "r2": 0.45, "rows": rows, "note": "x"}))
    (out / "holdout.csv").write_text("age,target\n50,100\n")
    (out / "env.json").write_text(json.dumps({"MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
