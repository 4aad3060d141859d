#!/usr/bin/env bash
# Set up, create the example app's Git repository, and simulate the paved path end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
APP_REPO_URL=$(examples/paved-path/make-repo.sh .state/band-service)
export APP_REPO_URL
exec .venv/bin/reconciler simulate examples/paved-path --state .state/paved-path.json "$@"
