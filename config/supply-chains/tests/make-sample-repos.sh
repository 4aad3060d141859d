#!/usr/bin/env bash
# Make the Git repositories the kuttl suites (and the README's walk-through) use, under DIR:
#   DIR/app         the sample app (sample-app/), with a branch per outcome:
#                     main              passes its tests, no findings
#                     failing-tests     test.sh exits 1
#                     critical-finding  passes its tests; its image has a Critical CVE
#                                       (.reconciler/scan-report.json, Trivy's JSON format)
#   DIR/gitops.git  an empty bare repository for the config-writer to push to
# and print the variables the suites read. Run again to reuse what exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: make-sample-repos.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
git_() { git -C "$dir/app" -c user.name=sample -c user.email=sample@example.com "$@"; }
if [ ! -d "$dir/app/.git" ]; then
  mkdir -p "$dir/app"
  cp -r "$here/sample-app/." "$dir/app/"
  git_ init -q -b main
  git_ add -A
  git_ commit -qm "sample app"
  git_ checkout -q -b failing-tests
  printf 'echo "test_greeting: expected a greeting, got nothing"\nexit 1\n' >> "$dir/app/test.sh"
  git_ commit -qam "a change that breaks the tests"
  git_ checkout -q -b critical-finding main
  mkdir -p "$dir/app/.reconciler"
  cat > "$dir/app/.reconciler/scan-report.json" <<'JSON'
{
  "SchemaVersion": 2,
  "ArtifactName": "sample-app",
  "ArtifactType": "container_image",
  "Results": [
    {
      "Target": "requirements.txt",
      "Class": "lang-pkgs",
      "Type": "pip",
      "Vulnerabilities": [
        {"VulnerabilityID": "CVE-2023-30861", "PkgName": "flask", "InstalledVersion": "2.2.4",
         "FixedVersion": "2.2.5", "Severity": "HIGH"},
        {"VulnerabilityID": "CVE-2024-0001", "PkgName": "example-lib", "InstalledVersion": "1.0.0",
         "FixedVersion": "1.0.1", "Severity": "CRITICAL"}
      ]
    }
  ]
}
JSON
  git_ add -A
  git_ commit -qm "a dependency with a critical finding"
  git_ checkout -q main
fi
[ -d "$dir/gitops.git" ] || git init -q --bare -b main "$dir/gitops.git"
echo "export APP_REPO_URL=file://$dir/app"
echo "export GITOPS_REPO_URL=file://$dir/gitops.git"
