"""Drift of what an endpoint sees: logged inputs vs the champion's training data, and a retrain when it drifts.

``python -m cli drift --endpoint production [--since-hours 24] [--reference CSV] [--retrain-url URL --key KEY]``
reads ``<SCORING_LOGS_CONTAINER>/<endpoint>/...jsonl`` from the app's storage (by key or by identity, as the
host reads ``AzureWebJobsStorage``), compares the inputs with the reference (default: the shipped sample) per
feature (PSI and KS, the same function data validation uses), prints a table and, when a feature drifted and
``--retrain-url`` is given, POSTs to the app's ``/api/retrain``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import requests
from azure.storage.blob import BlobServiceClient

from backends.settings import Settings
from backends.storage import blob_service
from ml.drift import DriftThresholds, FeatureDrift, compare
from ml.schema import ACTIVE_SCHEMA

#: Azurite (node_modules) rejects newer API versions than this; Azure Storage accepts it too.


def logged_inputs(service: BlobServiceClient, container: str, endpoint: str, since: datetime) -> pd.DataFrame:
    """Every input row the endpoint scored (logged with status 200) in hour folders at or after ``since``."""
    box = service.get_container_client(container)
    rows: list[list[float]] = []
    floor = since.strftime("%Y/%m/%d/%H")
    for blob in box.list_blobs(name_starts_with=f"{endpoint}/"):
        hour = "/".join(str(blob.name).split("/")[1:5])
        if hour < floor:
            continue
        for line in box.download_blob(blob.name).readall().splitlines():
            record = orjson.loads(line) if line.strip() else None
            if record is not None and record.get("status", 200) == 200:  # rejected requests were not scored
                rows.extend(record["request"]["data"])
    return pd.DataFrame(rows, columns=ACTIVE_SCHEMA.feature_names)


def check(current: pd.DataFrame, reference: pd.DataFrame, thresholds: DriftThresholds) -> list[FeatureDrift]:
    return compare(reference, current, ACTIVE_SCHEMA, thresholds)


def request_retrain(url: str, key: str) -> dict[str, Any]:
    response = requests.post(url, headers={"x-functions-key": key}, json={}, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", default="production")
    parser.add_argument("--since-hours", type=float, default=24.0)
    parser.add_argument("--reference", default=None, help="CSV of the reference data (default: the shipped sample)")
    parser.add_argument("--psi", type=float, default=0.25)
    parser.add_argument("--ks-pvalue", type=float, default=0.001)
    parser.add_argument("--retrain-url", default=None)
    parser.add_argument("--key", default=os.environ.get("DEVHOST_MASTER_KEY", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli drift", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)  # the app's storage, by key or by identity, as the host reads it
    service = blob_service(settings.storage)
    since = datetime.now(UTC) - timedelta(hours=args.since_hours)
    current = logged_inputs(service, settings.SCORING_LOGS_CONTAINER, args.endpoint, since)
    if current.empty:
        print(f"no logged inputs for {args.endpoint} in the last {args.since_hours:g} h")
        return 0
    reference = pd.read_csv(args.reference) if args.reference else _sample()
    drift = check(current, reference, DriftThresholds(psi=args.psi, ks_pvalue=args.ks_pvalue))
    print(f"{len(current)} logged rows vs {len(reference)} reference rows")
    for d in drift:
        print(
            f"  {d.column:<6} PSI {d.psi:7.3f}  KS {d.ks_statistic:.3f} (p={d.ks_pvalue:.2g})"
            f"{'  DRIFTED' if d.drifted else ''}"
        )
    drifted = [d.column for d in drift if d.drifted]
    print(json.dumps({"rows": len(current), "drifted": drifted}))
    if drifted and args.retrain_url:
        print("retrain started:", request_retrain(args.retrain_url, args.key).get("id"))
    return 0


def _sample() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    frame: pd.DataFrame = load_diabetes(as_frame=True, scaled=False).frame
    return frame


if __name__ == "__main__":
    sys.exit(main())
