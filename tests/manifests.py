"""Input manifests several test modules write: one definition each, so they cannot drift."""

from __future__ import annotations


def git_kustomization(url: str, *, wait: bool | None = None) -> str:
    """A GitRepository `config` on `url` (branch main) and a Kustomization `app` deploying its
    `./deploy` folder into `default` with prune, both in `default`."""
    wait_line = "" if wait is None else f"  wait: {str(wait).lower()}\n"
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: config
  namespace: default
spec:
  url: {url}
  interval: 1m
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: app
  namespace: default
spec:
  interval: 10m
  path: ./deploy
  prune: true
{wait_line}  targetNamespace: default
  sourceRef:
    kind: GitRepository
    name: config
"""
