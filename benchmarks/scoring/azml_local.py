"""azureml-inference-server-http (azmlinfsrv) bound to 127.0.0.1 instead of its hard-coded 0.0.0.0.
Run with the benchmark's separate venv: benchmarks/.venv-azml/bin/python benchmarks/scoring/azml_local.py ARGS"""

import sys

from azureml_inference_server_http import amlserver, constants  # type: ignore[import-not-found]

constants.DEFAULT_HOST = "127.0.0.1"
amlserver.DEFAULT_HOST = "127.0.0.1"

if __name__ == "__main__":
    sys.exit(amlserver.run())
