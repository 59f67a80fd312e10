"""``python -m devhost start [--script-root DIR] [--port 7071] [--host 127.0.0.1]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from devhost.app import Options, serve
from devhost.errors import AppLoadError, ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="devhost", description="Local Azure Functions host (Python v2 + Durable)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="serve the function app in --script-root")
    start.add_argument("--script-root", type=Path, default=Path.cwd())
    start.add_argument("--port", type=int, default=7071)
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT") or 8),
        help="thread pool size for sync functions (default: PYTHON_THREADPOOL_THREAD_COUNT or 8)",
    )
    start.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # the storage SDK logs every request and response at INFO: noise in a host's log
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    # not asyncio.run: its close waits for the default executor, where a storage call of a listener may still be
    # blocked on a dead connection; the process ends below without waiting for such threads
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(serve(Options(args.script_root, args.host, args.port, args.threads)))
    except ConfigError as exc:
        print(f"devhost: configuration error: {exc}", file=sys.stderr)
        return 2
    except AppLoadError as exc:
        print(f"devhost: cannot load the function app: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
    # Everything durable is committed and closed. A sync function still running in the thread pool (it cannot be
    # cancelled) must not hold the process for as long as it runs: the interpreter would join its thread at exit.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
