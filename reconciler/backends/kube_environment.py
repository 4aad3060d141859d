"""The `kubernetes` environment: a real cluster behind `KubernetesBackend`, on real time.

Found by the CLI through the `reconciler.environments` entry point (`--environment kubernetes`).
It does not import the `kubernetes` package: the backend is built by
`reconciler.backends.kubernetes.connect`, the one module allowed to.

A real cluster runs its own kpack, Knative and Tekton, so the environment brings no controllers;
its clock is the system's, so `advance` has nothing to move. `revision()` counts the writes this
process made that changed something, enough for the runner to tell a round that changed the
cluster from one that did not; changes made by others arrive through the backend's informers,
whose change feed makes the runner reconcile what read them on the next round.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from reconciler.backends.base import Backend
from reconciler.backends.kubernetes import connect
from reconciler.model.errors import ReconcilerError
from reconciler.runtime.clock import Clock, SystemClock
from reconciler.runtime.controller import Controller
from reconciler.settings import KubernetesSettings

KUBECONFIG_VARIABLE = "RECONCILER_KUBECONFIG"
CONTEXT_VARIABLE = "RECONCILER_KUBE_CONTEXT"


class StateNotSupported(ReconcilerError):
    """`--state` on a real cluster: the cluster is the state."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"state files are a simulator feature: the kubernetes environment keeps its state "
            f"in the cluster; run without --state (got {path})")


class CountsWrites(Backend, Protocol):
    @property
    def writes(self) -> int: ...


class KubernetesEnvironment:
    stateful = False
    virtual_clock = False
    def __init__(self, backend: CountsWrites, clock: Clock | None = None) -> None:
        self._counting = backend
        self.backend: Backend = backend
        self.clock: Clock = clock or SystemClock()
        self.controllers: Sequence[Controller] = ()

    def advance(self, seconds: float) -> None:
        """Real time moves by itself; the daemon's clock follower calls this every tick."""

    def revision(self) -> int:
        return self._counting.writes

    def save_state(self, path: Path) -> None:
        raise StateNotSupported(path)

    def load_state(self, path: Path) -> None:
        raise StateNotSupported(path)


def create_environment(
    kubeconfig: Path | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    settings: KubernetesSettings | None = None,
) -> KubernetesEnvironment:
    """The entry point: connect with `kubeconfig` (default: `$RECONCILER_KUBECONFIG`), else the
    in-cluster service account, else the default kubeconfig (`$KUBECONFIG`, `~/.kube/config`).

    The entry point is called without arguments, so an explicit kubeconfig and context come
    from `RECONCILER_KUBECONFIG` and `RECONCILER_KUBE_CONTEXT`, and the client's settings
    (QPS, burst, retries, timeouts, informers, impersonation) from `RECONCILER_KUBE_*`
    (`KubernetesSettings.from_environ`) unless `settings` are given (the settings tree's
    `kubernetes` group, which already layered those variables over its file). Raises
    `BackendError` when the configuration cannot be loaded or the API server cannot be
    reached, `InputError` on a malformed setting.
    """
    env = os.environ if environ is None else environ
    if kubeconfig is None and env.get(KUBECONFIG_VARIABLE):
        kubeconfig = Path(env[KUBECONFIG_VARIABLE]).expanduser()
    clock = SystemClock()
    backend = connect(kubeconfig, context or env.get(CONTEXT_VARIABLE) or None, clock,
                      settings=settings or KubernetesSettings.from_environ(env))
    return KubernetesEnvironment(backend, clock)
