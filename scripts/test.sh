#!/usr/bin/env bash
# Set up and run every check: lint, types, and the pytest suite against real parts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/brokers.sh

.venv/bin/ruff check triage app collector correlator dashboards alerts simulator tests bench
.venv/bin/ruff format --check triage app collector correlator dashboards alerts simulator tests bench
.venv/bin/mypy triage app collector correlator dashboards alerts simulator

set +e
.venv/bin/python -m pytest -p no:dash "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
