"""The deployment zip holds exactly what .funcignore allows (git's reading of the same patterns is the referee),
and both pipelines build it the same way and deploy it to Flex Consumption."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.unit.infra.bicep import ROOT

sys.path.insert(0, str(ROOT / "infra"))
import package_app

JUNK = [
    ".venv/lib/python3.11/site-packages/x.py",
    ".venv-build/bin/python",
    "tests/extra_test.py",
    "devhost/extra.py",
    "local.settings.json",
    "scoring/__pycache__/app.cpython-311.pyc",
    "ml/helper.pyc",
    "node_modules/azurite/index.js",
    "dist/old.zip",
    "notes.md",
    ".vscode/settings.json",
    ".mlops/mlflow.db",
    "__azurite_db_blob__.json",
    "__blobstorage__/x",
    "ml/extra/module.py",
    "benchmarks/results/x.txt",
]


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def _git_allowed(paths: list[str], patterns: str, where: Path) -> set[str]:
    """The files git keeps (not ignored) when ``patterns`` is the root .gitignore: gitignore's own semantics."""
    where.mkdir()
    for relative in paths:
        if Path(relative).name == ".gitignore":
            continue
        target = where / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x")
    (where / ".gitignore").write_text(patterns)
    subprocess.run(["git", "init", "-q"], cwd=where, check=True)
    out = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=where, capture_output=True, text=True, check=True
    ).stdout
    return set(out.splitlines())


@pytest.fixture(scope="module")
def app_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tracked tree plus what a working copy accumulates (a venv, caches, local settings …)."""
    tree = tmp_path_factory.mktemp("app")
    for relative in _tracked() + JUNK:
        target = tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / relative).is_file() and relative not in JUNK:
            shutil.copyfile(ROOT / relative, target)
        else:
            target.write_text("junk")
    return tree


def test_zip_holds_exactly_what_funcignore_allows(app_tree: Path, tmp_path: Path) -> None:
    out = app_tree / "dist" / "app.zip"
    packaged = package_app.build(app_tree, out)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
    assert names == set(packaged)
    expected = _git_allowed(_tracked() + JUNK, (app_tree / ".funcignore").read_text(), tmp_path / "referee")
    assert names == expected, (
        f"packaged, git would ignore: {sorted(names - expected)}; git keeps, not packaged: {sorted(expected - names)}"
    )


def test_what_must_and_must_not_be_deployed(app_tree: Path) -> None:
    names = set(package_app.build(app_tree, app_tree / "dist" / "app.zip"))
    for needed in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        ".amlignore",
        "ml/train.py",
        "models/diabetes-ridge/model.yaml",
        "models/breast-cancer/model.yaml",
        "scoring/score.py",
        "scoring/telemetry.py",
        "triggers/dashboard.html",
        "activities/outcomes.py",
    ):
        assert needed in names, needed
    for forbidden in (".venv", "tests", "devhost", "cli", "infra", "node_modules", "benchmarks", "dist"):
        assert not any(n == forbidden or n.startswith(forbidden + "/") for n in names), forbidden
    assert not {"local.settings.json", "local.settings.sample.json", ".funcignore", ".gitignore"} & names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_dependencies_are_packaged_where_the_host_looks_for_them(app_tree: Path, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    for relative in (
        "azure/functions/__init__.py",
        "azure/functions/__pycache__/__init__.cpython-311.pyc",
        "numpy/core/_multiarray.so",
    ):
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text("dep")
    (site / "numpy/core/_multiarray.so").chmod(0o755)
    out = tmp_path / "app.zip"
    package_app.build(app_tree, out, dependencies=site)
    with zipfile.ZipFile(out) as archive:
        deps = {i.filename: i for i in archive.infolist() if i.filename.startswith(".python_packages/")}
        assert archive.read("host.json") == (app_tree / "host.json").read_bytes()
    assert set(deps) == {
        ".python_packages/lib/site-packages/azure/functions/__init__.py",
        ".python_packages/lib/site-packages/azure/functions/__pycache__/__init__.cpython-311.pyc",
        ".python_packages/lib/site-packages/numpy/core/_multiarray.so",
    }
    assert deps[".python_packages/lib/site-packages/numpy/core/_multiarray.so"].external_attr >> 16 & 0o777 == 0o755
    with pytest.raises(SystemExit, match="holds no azure-functions"):
        package_app.build(app_tree, out, dependencies=tmp_path / "empty")


def test_the_zip_is_reproducible(app_tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    package_app.build(app_tree, first)
    package_app.build(app_tree, second)
    assert first.read_bytes() == second.read_bytes()


def test_not_a_functions_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"host\.json is missing"):
        package_app.build(tmp_path, tmp_path / "app.zip")


@pytest.mark.parametrize(
    "patterns",
    [
        "*.log\n!keep.log\n",
        "/top.txt\n",
        "build/\n",
        "docs/**/*.png\n",
        "**/cache\n",
        "a/**\n!a/b\n",
        "[abc].txt\n[!x]y.txt\n",
        "# comment\n\nsub/*.py\n",
        "data/\n!data/keep.txt\n",
        "\\#literal\n?.cfg\n",
    ],
)
def test_pattern_semantics_match_git(tmp_path: Path, patterns: str) -> None:
    paths = [
        "keep.log",
        "x.log",
        "sub/y.log",
        "top.txt",
        "sub/top.txt",
        "build/out.o",
        "src/build/out.o",
        "build",
        "docs/a.png",
        "docs/img/b.png",
        "docs/img/deep/c.png",
        "img.png",
        "cache/x",
        "src/cache/y",
        "a/b",
        "a/c",
        "a.txt",
        "b.txt",
        "d.txt",
        "xy.txt",
        "zy.txt",
        "sub/m.py",
        "sub/deep/n.py",
        "data/keep.txt",
        "data/drop.txt",
        "#literal",
        "a.cfg",
        "ab.cfg",
        "host.json",
    ]
    paths = [p for p in paths if p != "build"]  # a file and a directory cannot share a name
    tree = tmp_path / "tree"
    for relative in paths:
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_text("x")
    rules = package_app.parse_rules(patterns)
    ours = set(package_app.allowed_files(tree, rules))
    assert ours == _git_allowed(paths, patterns, tmp_path / "referee") - {".gitignore"}


def _workflow() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())


def _azure_pipelines() -> dict:
    return yaml.safe_load((ROOT / "azure-pipelines.yml").read_text())


def test_github_builds_the_package_and_deploys_it_to_flex_consumption() -> None:
    jobs = _workflow()["jobs"]
    package_steps = " ".join(str(s.get("run", "")) for s in jobs["package"]["steps"])
    assert (
        'pip install --disable-pip-version-check --target "$RUNNER_TEMP/site-packages" -r requirements.txt'
        in package_steps
    )
    assert 'infra/package_app.py --dependencies "$RUNNER_TEMP/site-packages" --out dist/app.zip' in package_steps
    setup = next(s for s in jobs["package"]["steps"] if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "3.11"
    deploy = next(s for s in jobs["publish"]["steps"] if str(s.get("uses", "")).startswith("Azure/functions-action"))
    assert deploy["with"]["sku"] == "flexconsumption"
    assert deploy["with"]["remote-build"] is False
    assert deploy["with"]["package"] == "dist/app.zip"
    assert "respect-funcignore" not in deploy["with"], "the zip is already filtered by infra/package_app.py"
    assert jobs["publish"]["needs"] == "package" and jobs["package"]["needs"] == "quality-and-tests"


def test_azure_pipelines_builds_the_same_package_and_deploys_it_to_flex_consumption() -> None:
    stages = {s["stage"]: s for s in _azure_pipelines()["stages"]}
    package = next(j for j in stages["Build"]["jobs"] if j.get("job") == "Package")
    scripts = " ".join(str(s.get("script", "")) for s in package["steps"])
    assert 'pip install --disable-pip-version-check --target "$(Agent.TempDirectory)/site-packages"' in scripts
    assert "infra/package_app.py --dependencies" in scripts
    assert package["steps"][0]["inputs"]["versionSpec"] == "$(python.version)"
    assert _azure_pipelines()["variables"]["python.version"] == "3.11"
    steps = stages["Release"]["jobs"][0]["strategy"]["runOnce"]["deploy"]["steps"]
    task = next(s for s in steps if s.get("task") == "AzureFunctionApp@2")
    assert task["inputs"]["isFlexConsumption"] is True
    assert task["inputs"]["appType"] == "functionAppLinux"
    assert task["inputs"]["package"] == "$(Pipeline.Workspace)/functionapp/app.zip"
    assert "deploymentMethod" not in task["inputs"], "ignored for Flex Consumption"
    assert not any("ArchiveFiles" in str(s.get("task", "")) for j in stages["Build"]["jobs"] for s in j["steps"])


def test_the_training_jobs_code_holds_ml_and_the_model_specs_only() -> None:
    """Azure ML uploads a job's code minus ``.amlignore`` (gitignore semantics, as ``.funcignore`` has): a job run
    with ``--spec models/<name>`` must find that spec in its code, and nothing of the app beyond ``ml/``."""
    rules = package_app.parse_rules((ROOT / ".amlignore").read_text())
    uploaded = set(package_app.allowed_files(ROOT, rules))
    assert {"ml/train.py", "ml/metrics.py", "ml/spec.py", "requirements.txt"} <= uploaded
    assert {f"models/{m.name}/model.yaml" for m in (ROOT / "models").iterdir() if m.is_dir()} <= uploaded
    assert not {n for n in uploaded if not n.startswith(("ml/", "models/")) and n != "requirements.txt"}
