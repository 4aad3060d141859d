#!/usr/bin/env bash
# Create .venv (if missing) and install reconciler into it, with the dev tools when asked (--dev).
# Installs only when the venv is new or pyproject.toml changed since the last install, so
# running the example again works offline and costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=.venv/.reconciler-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras:-[base]}"
# A dev install also satisfies a plain one; a plain one does not satisfy --dev.
if [ -f "$stamp" ] && { [ "$(cat "$stamp")" = "$want" ] \
    || { [ -z "$extras" ] && [ "$(cat "$stamp")" = "${want% *} [dev]" ]; }; } \
    && .venv/bin/python -c 'import reconciler' 2>/dev/null; then
  exit 0
fi
.venv/bin/python -m pip install -q -e ".${extras}"
echo "$want" > "$stamp"
