#!/usr/bin/env bash
# Create (or reuse) a Git repository holding the example app on branch main; print its URL.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: make-repo.sh DIR}
if [ ! -d "$dir/.git" ]; then
  mkdir -p "$dir"
  cp -r "$here/developer/app/." "$dir/"
  git -C "$dir" init -q -b main
  git -C "$dir" -c user.name=example -c user.email=example@example.com add -A
  git -C "$dir" -c user.name=example -c user.email=example@example.com commit -qm "band-service 1.0.0"
fi
echo "file://$(cd "$dir" && pwd)"
