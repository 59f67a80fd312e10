"""infra/deploy.sh: shellcheck clean, and run end to end against a stand-in ``az`` that records every call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.unit.infra.bicep import ROOT

SCRIPT = ROOT / "infra" / "deploy.sh"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"

#: the stand-in az: records argv, answers what the script reads; "not found" for the existence checks
STANDIN = r"""#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
line = " ".join(args)
identity = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
outputs = {{"functionAppName": "mlops-func-x", "storageAccountName": "mlopsstx", "workspaceName": "mlops-mlw-x",
           "endpointIdentityId": identity + "mlops-endpoint-id",
           "qaEndpointName": "mlops-qa-x", "prodEndpointName": "mlops-prod-x"}}
def answer(text):
    print(text)
    sys.exit(0)
if line.startswith("account show --query user.type"):
    answer(os.environ.get("AZ_USER_TYPE", "user"))
if line.startswith("account show --query user.name"):
    answer("00000000-0000-0000-0000-00000000a99")
if line.startswith("ad signed-in-user show"):
    answer("11111111-1111-1111-1111-111111111111")
if line.startswith("ad sp show"):
    answer("22222222-2222-2222-2222-222222222222")
if line.startswith("deployment group show"):
    key = args[args.index("--query") + 1].split(".")[2]
    answer(outputs[key])
if line.startswith(("ml environment show", "k8s-extension show", "ml compute show")):
    sys.exit(3)
if line.startswith("aks show"):
    if "--query" in args:
        answer("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/mlops-aks")
    sys.exit(3)
if line.startswith("functionapp function show"):
    answer("on_blob_drop")
if line.startswith("functionapp keys list"):
    answer("system-key")
if line.startswith("storage blob upload"):
    answer('"0x8D0"')
sys.exit(0)
"""


def _standin(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    az = bindir / "az"
    az.write_text(STANDIN.format(python=sys.executable))
    az.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "AZ_LOG": str(tmp_path / "az.log"),
        "POLL_SECONDS": "0",
        "PYTHON": sys.executable,
    }


Ran = tuple[subprocess.CompletedProcess[str], list[list[str]]]


def run(tmp_path: Path, *args: str, user_type: str = "user") -> Ran:
    env = _standin(tmp_path)
    env["AZ_USER_TYPE"] = user_type
    package = tmp_path / "app.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("host.json", "{}")
    data = tmp_path / "drop.csv"
    data.write_text("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target\n")
    done = subprocess.run(
        [
            "bash",
            str(SCRIPT),
            "-g",
            "mlops-rg",
            "-l",
            "westeurope",
            "--package",
            str(package),
            "--data",
            str(data),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = tmp_path / "az.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def _index(calls: list[list[str]], *words: str) -> int:
    for i, call in enumerate(calls):
        if call[: len(words)] == list(words):
            return i
    raise AssertionError(f"no call az {' '.join(words)}")


def _calls(calls: list[list[str]], *words: str) -> list[list[str]]:
    return [c for c in calls if c[: len(words)] == list(words)]


def _config(call: list[str]) -> list[str]:
    start = call.index("--config") + 1
    end = next((i for i in range(start, len(call)) if call[i].startswith("--")), len(call))
    return call[start:end]


@pytest.fixture
def tls(tmp_path: Path) -> list[str]:
    (tmp_path / "cert.pem").write_text("CERT")
    (tmp_path / "key.pem").write_text("KEY")
    return [
        "--tls-cname",
        "scoring.example.com",
        "--tls-cert",
        str(tmp_path / "cert.pem"),
        "--tls-key",
        str(tmp_path / "key.pem"),
    ]


def test_shellcheck_is_clean() -> None:
    done = subprocess.run(
        [str(SHELLCHECK), "-x", str(SCRIPT), str(ROOT / "infra" / "lint.sh"), str(ROOT / ".ci" / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "set -euo pipefail" in SCRIPT.read_text()


def test_default_run_goes_through_every_step_in_order_with_tls(tmp_path: Path, tls: list[str]) -> None:
    done, calls = run(tmp_path, *tls)
    assert done.returncode == 0, done.stderr
    registered = [c[c.index("--namespace") + 1] for c in _calls(calls, "provider", "register")]
    assert {
        "Microsoft.KubernetesConfiguration",
        "Microsoft.ContainerService",
        "Microsoft.MachineLearningServices",
        "Microsoft.EventGrid",
        "Microsoft.Web",
    } <= set(registered)
    assert all("--wait" in c for c in _calls(calls, "provider", "register"))
    extensions = [c[c.index("--name") + 1] for c in _calls(calls, "extension", "add")]
    assert extensions == ["ml", "k8s-extension"]
    order = [
        _index(calls, "provider", "register"),
        _index(calls, "group", "create"),
        _index(calls, "deployment", "group", "create"),
        _index(calls, "ml", "environment", "create"),
        _index(calls, "aks", "create"),
        _index(calls, "k8s-extension", "create"),
        _index(calls, "ml", "compute", "attach"),
        _index(calls, "functionapp", "deployment", "source"),
        _index(calls, "functionapp", "keys", "list"),
    ]
    assert order == sorted(order)
    assert _index(calls, "extension", "add") < _index(calls, "k8s-extension", "create")
    extension = _calls(calls, "k8s-extension", "create")[0]
    config = _config(extension)
    assert {
        "enableInference=True",
        "inferenceRouterServiceType=LoadBalancer",
        "allowInsecureConnections=False",
        "sslCname=scoring.example.com",
    } <= set(config)
    assert "inferenceRouterHA=False" not in config
    protected = extension[extension.index("--config-protected") + 1 :][:2]
    assert protected == [f"sslCertPemFile={tmp_path / 'cert.pem'}", f"sslKeyPemFile={tmp_path / 'key.pem'}"]
    assert extension[extension.index("--extension-type") + 1] == "Microsoft.AzureML.Kubernetes"
    aks = _calls(calls, "aks", "create")[0]
    assert aks[aks.index("--node-count") + 1] == "3" and "--enable-managed-identity" in aks
    attach = _calls(calls, "ml", "compute", "attach")[0]
    assert attach[attach.index("--type") + 1] == "Kubernetes" and attach[attach.index("--name") + 1] == "aks-prod"
    assert attach[attach.index("--user-assigned-identities") + 1].endswith("/mlops-endpoint-id")


def test_infrastructure_twice_the_second_time_after_the_publish_with_the_subscriptions(
    tmp_path: Path, tls: list[str]
) -> None:
    done, calls = run(tmp_path, *tls)
    assert done.returncode == 0, done.stderr
    deployments = _calls(calls, "deployment", "group", "create")
    assert len(deployments) == 2
    first, second = deployments
    for call in deployments:
        assert call[call.index("-f") + 1] == str(ROOT / "infra" / "main.bicep")
        assert "deployerObjectId=11111111-1111-1111-1111-111111111111" in call
        assert "deployerPrincipalType=User" in call
    assert "createEventSubscriptions=true" not in first and "createEventSubscriptions=true" in second
    publish = _index(calls, "functionapp", "deployment", "source", "config-zip")
    assert calls.index(first) < publish < calls.index(second)
    zip_deploy = calls[publish]
    assert zip_deploy[zip_deploy.index("--build-remote") + 1] == "false"
    assert _index(calls, "functionapp", "function", "show") < calls.index(second)
    upload = _calls(calls, "storage", "blob", "upload")[0]
    assert calls.index(second) < calls.index(upload)
    assert upload[upload.index("--auth-mode") + 1] == "login"
    assert upload[upload.index("--container-name") + 1] == "incoming"
    assert not any("AccountKey" in " ".join(c) or "--account-key" in c for c in calls)


def test_a_pipeline_principal_gets_the_data_role_as_a_service_principal(tmp_path: Path, tls: list[str]) -> None:
    done, calls = run(tmp_path, *tls, user_type="servicePrincipal")
    assert done.returncode == 0, done.stderr
    first = _calls(calls, "deployment", "group", "create")[0]
    assert "deployerObjectId=22222222-2222-2222-2222-222222222222" in first
    assert "deployerPrincipalType=ServicePrincipal" in first


def test_insecure_test_cluster_with_two_nodes_says_so_explicitly(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--insecure-test-cluster", "--aks-nodes", "2")
    assert done.returncode == 0, done.stderr
    extension = _calls(calls, "k8s-extension", "create")[0]
    config = _config(extension)
    assert "allowInsecureConnections=True" in config and "inferenceRouterHA=False" in config
    assert not any(c.startswith("sslCname") for c in config) and "--config-protected" not in extension
    aks = _calls(calls, "aks", "create")[0]
    assert aks[aks.index("--node-count") + 1] == "2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --tls-cname, --tls-cert and --tls-key"),
        (["--insecure-test-cluster", "--tls-cname", "x"], "exclude each other"),
        (["--insecure-test-cluster", "--prefix", "Bad_Prefix"], "--prefix must be"),
        (["--insecure-test-cluster", "--aks-nodes", "zero"], "--aks-nodes must be"),
        (["--insecure-test-cluster", "--frobnicate"], "unknown option: --frobnicate"),
    ],
)
def test_bad_options_stop_before_any_azure_call(tmp_path: Path, args: list[str], message: str) -> None:
    done, calls = run(tmp_path, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert calls == []


def test_skip_aks_leaves_the_cluster_out(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--skip-aks")
    assert done.returncode == 0, done.stderr
    assert not _calls(calls, "aks") and not _calls(calls, "k8s-extension")
    assert _calls(calls, "functionapp", "deployment", "source", "config-zip")


def test_the_doc_runs_the_script_and_every_az_command_it_names_is_in_it() -> None:
    doc = (ROOT / "docs" / "azure.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", doc, re.S)
    assert blocks, "docs/azure.md has no command block"
    for block in blocks:
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith("--"):
                continue
            assert line == "az login" or line.startswith("infra/deploy.sh"), f"a command outside the script: {line}"
    script = SCRIPT.read_text()
    for command in re.findall(r"`(az [a-z0-9-]+(?: [a-z0-9-]+)*)", doc):
        if command == "az login":
            continue
        assert command in script, f"docs/azure.md names `{command}`, which infra/deploy.sh does not run"


PIP_STANDIN = r"""#!/usr/bin/env bash
# python as deploy.sh calls it, except that `-m pip install --target DIR` lays out a tiny site-packages
if [[ "$1 $2 $3" == "-m pip install" ]]; then
  while (($#)); do
    if [[ "$1" == "--target" ]]; then
      mkdir -p "$2/azure/functions" && echo "# stand-in" > "$2/azure/functions/__init__.py"
    fi
    shift
  done
  exit 0
fi
exec {python} "$@"
"""


def test_without_a_package_it_builds_one_with_the_dependencies_and_publishes_it(tmp_path: Path) -> None:
    python = tmp_path / "python-standin"
    python.write_text(PIP_STANDIN.format(python=sys.executable))
    python.chmod(0o755)
    env = {**_standin(tmp_path), "PYTHON": str(python), "TMPDIR": str(tmp_path)}
    data = tmp_path / "drop.csv"
    data.write_text("x\n")
    done = subprocess.run(
        ["bash", str(SCRIPT), "-g", "rg", "-l", "westeurope", "--skip-aks", "--data", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in (tmp_path / "az.log").read_text().splitlines()]
    publish = _calls(calls, "functionapp", "deployment", "source", "config-zip")[0]
    package = Path(publish[publish.index("--src") + 1])
    assert package.is_relative_to(tmp_path)
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert ".python_packages/lib/site-packages/azure/functions/__init__.py" in names
    assert {"function_app.py", "host.json"} <= names and not any(n.startswith("tests/") for n in names)
    assert not (ROOT / ".python_packages").exists(), "the build must not write into the working tree"
