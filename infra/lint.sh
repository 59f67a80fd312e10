#!/usr/bin/env bash
# Static checks of the deployment side (make lint runs it): shellcheck over the shell scripts, and checkov's Bicep
# checks over infra/ (each skipped check carries its reason in the Bicep). checkov skips a file it cannot parse and
# still exits 0, so a parsing error fails here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SHELLCHECK="${SHELLCHECK:-.venv/bin/shellcheck}"
CHECKOV="${CHECKOV:-.venv/checkov/bin/checkov}"

"$SHELLCHECK" -x infra/deploy.sh infra/lint.sh .ci/run
echo "shellcheck: infra/deploy.sh infra/lint.sh .ci/run clean"

# offline: no download of policy metadata, no update check
report="$(CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$CHECKOV" -d infra --framework bicep --quiet --compact --skip-download)" || {
  printf '%s\n' "$report"
  exit 1
}
printf '%s\n' "$report"
if grep -q "Parsing errors" <<<"$report"; then
  echo "checkov could not parse a Bicep file under infra/: its checks did not run on it" >&2
  exit 1
fi
