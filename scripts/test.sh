#!/usr/bin/env bash
# The whole test suite: lint, types, import contracts, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check reconciler simulator tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-auto}" "$@"
