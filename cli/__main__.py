"""`python -m cli COMMAND`: run (the `make run` launcher), drop, retrain, runs, follow, models, score, drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from backends.errors import SettingsError
from cli import commands, config, drift
from cli.client import ApiError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m cli", description=__doc__)
    top.add_argument("--root", type=Path, default=Path.cwd(), help="the app's directory (default: here)")
    top.add_argument(
        "--port",
        type=int,
        default=None,
        help="devhost's port (default: DEVHOST_PORT, local.settings.json Host.LocalHttpPort, 7071)",
    )
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start everything, drop the sample, show each stage; Ctrl-C stops everything")
    drop = sub.add_parser("drop", help="upload a CSV/Parquet file to the incoming container")
    drop.add_argument("file", type=Path)
    drop.add_argument("--name", help="blob name (default: the file's name)")
    retrain = sub.add_parser("retrain", help="start a retrain (optionally of one incoming blob)")
    retrain.add_argument("--data", help="incoming/<blob>; without it: train on the accumulated dataset")
    runs = sub.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--limit", type=int, default=20)
    follow = sub.add_parser("follow", help="print each stage of a run until it finishes")
    follow.add_argument("id")
    models = sub.add_parser("models", help="list model versions with stages and metrics; `models new` onboards one")
    models_sub = models.add_subparsers(dest="models_command")
    new = models_sub.add_parser("new", help="write models/NAME/model.yaml inferred from a sample, for review")
    new.add_argument("name")
    new.add_argument("--from", dest="sample", type=Path, required=True, help="a CSV or Parquet sample")
    new.add_argument("--label", required=True, help="the column to predict")
    new.add_argument("--margin", type=float, default=0.5, help="each range widened by this share of its span")
    new.add_argument("--force", action="store_true", help="replace an existing spec")
    score = sub.add_parser("score", help="score sample rows on a local endpoint")
    score.add_argument(
        "--endpoint", choices=("production", "qa"), default="production", help="the environment (default production)"
    )
    score.add_argument("--model", default=None, help="the model whose endpoint to score (default: the default model)")
    score.add_argument("--rows", type=int, default=2)
    drift.add_arguments(
        sub.add_parser(
            "drift",
            help="compare an endpoint's logged inputs with the training data; "
            "optionally start a retrain when a feature drifted",
        )
    )
    return top


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "drift":
        return drift.run(args)
    root = args.root.resolve()
    if args.command == "models" and args.models_command == "new":
        from cli.onboard import new_model

        written = new_model(root, args.name, args.sample, args.label, margin=args.margin, force=args.force)
        print(f"wrote {written}: review it (ranges, allowed values, nullability), then commit the folder")
        return 0
    port = args.port or config.host_port(root)
    if args.command == "run":
        from cli.run import run

        return run(root, port)
    ctx = commands.Context(root, f"http://127.0.0.1:{port}")
    if args.command == "drop":
        commands.drop(ctx, args.file, args.name)
    elif args.command == "retrain":
        commands.retrain(ctx, args.data)
    elif args.command == "runs":
        commands.runs(ctx, args.limit)
    elif args.command == "follow":
        commands.follow(ctx, args.id)
    elif args.command == "models":
        commands.models(ctx)
    elif args.command == "score":
        commands.score_sample(ctx, args.endpoint, args.rows, model=args.model)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        return 130
    except (config.CliError, ApiError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the app ({exc}); is `make run` running?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
