"""checkov's Bicep checks pass with no network at all, and every check skipped in the Bicep says why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.unit.infra.bicep import INFRA, ROOT

CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
SKIP = re.compile(r"//\s*checkov:skip=(CKV\w*_\d+):(.*)")


def _skips() -> dict[tuple[str, str], str]:
    """(check id, Bicep file) → reason, from the skip comments."""
    found = {}
    for bicep in INFRA.glob("*.bicep"):
        for line in bicep.read_text().splitlines():
            if "checkov:skip" in line:
                match = SKIP.search(line)
                assert match, f"{bicep.name}: malformed skip comment: {line.strip()}"
                found[(match.group(1), bicep.name)] = match.group(2).strip()
    return found


def test_every_skipped_check_has_its_reason() -> None:
    skips = _skips()
    assert skips
    for (check, bicep), reason in skips.items():
        assert len(reason.split()) >= 6, f"{bicep}: {check} is skipped without a reason worth the name: {reason!r}"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov's venv is made by `make install` (.venv/checkov)")
def test_checkov_passes_offline_and_skips_only_what_the_comments_say() -> None:
    command = [str(CHECKOV), "-d", str(INFRA), "--framework", "bicep", "-o", "json", "--skip-download"]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], check=False).returncode == 0:
        command = ["unshare", "-rn", *command]  # a network namespace with no network: proves it needs none
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["passed"] >= 20
    skipped = {(c["check_id"], c["file_path"].lstrip("/")) for c in report["results"]["skipped_checks"]}
    assert skipped == set(_skips()), "a skip comment that checkov did not apply, or the reverse"
