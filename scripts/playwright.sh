#!/usr/bin/env bash
# The browser tooling of the portal's tests (tests/portal): npm's playwright-core, at the version
# pinned in tests/portal/js/package-lock.json, installed into .tools/node (no browser download:
# playwright-core drives Debian's chromium at /usr/bin/chromium, which .ci/run apt-installs).
# Exits non-zero, saying what is missing, when node/npm or chromium is absent; the tests then
# skip, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
here=tests/portal/js
dest=.tools/node
chromium=${RECONCILER_CHROMIUM:-/usr/bin/chromium}
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "playwright.sh: $tool not found (apt-get install nodejs npm)" >&2; exit 1; }
done
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "playwright.sh: node $major is too old; playwright-core needs node >= 18" >&2; exit 1; }
mkdir -p "$dest"
# Reinstall only when the lock file changed.
if ! cmp -s "$here/package-lock.json" "$dest/package-lock.json" || [ ! -d "$dest/node_modules/playwright-core" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dest/"
  # --ignore-scripts: nothing from the registry runs at install.
  npm ci --prefix "$dest" --ignore-scripts --no-audit --no-fund --loglevel=error
fi
[ -x "$chromium" ] || { echo "playwright.sh: $chromium not found (apt-get install chromium)" >&2; exit 1; }
echo "playwright-core $(node -p "require('./$dest/node_modules/playwright-core/package.json').version") in $dest; chromium: $("$chromium" --version 2>/dev/null || echo "$chromium")"
