#!/usr/bin/env bash
# Install checkov (PyPI, pinned) into its own venv, .tools/checkov, and print its executable.
# Its own venv, not the dev extras: checkov pins dozens of packages (packaging, networkx, boto3,
# ...) that pip would otherwise resolve together with reconciler's own dependencies, so the tests
# would run the product against versions chosen for a linter. Measured here: ~25 s to install
# from scratch, ~290 MB; nothing when the pinned version is already there (works offline then).
# Usage: bash scripts/checkov.sh   (prints .tools/checkov/bin/checkov)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
version=3.3.30
venv=.tools/checkov
if [ ! -x "$venv/bin/checkov" ] || [ "$("$venv/bin/checkov" --version 2>/dev/null)" != "$version" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "checkov==$version" >&2
  [ "$("$venv/bin/checkov" --version)" = "$version" ]
fi
echo "$PWD/$venv/bin/checkov"
