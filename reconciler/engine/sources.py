"""The source controller as the engine runs it: GitRepository objects in, status and events out.

It hands the controller the Backend's `get`, through which Secrets (`spec.secretRef`,
`spec.verify.secretRef`, `spec.proxySecretRef`) and included GitRepositories are read; the
controller never writes. Its steps (`GitRepositoryController.steps`: check_spec, check_interval,
load_inputs, sync) run in the one reconcile shape (`engine/reconcile`), and the status they
summarize is written here, from the `finally` of that reconcile, once.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.backends.base import Backend, write_status
from reconciler.model.objects import Obj, status_of
from reconciler.sources.git import GitRepositoryController
from reconciler.sources.gitspec import SourceResult

GIT_API = "source.toolkit.fluxcd.io/v1"


class GitRepositoryReconciler:
    name = "source-controller"

    def __init__(self, backend: Backend, git: GitRepositoryController) -> None:
        self.backend = backend
        self.git = git

    def forget(self, namespace: str, name: str) -> None:
        self.git.forget(namespace, name)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(GIT_API, "GitRepository")]

    def reconcile(self, obj: Obj) -> float | None:
        def write(result: SourceResult) -> None:
            if result.status != status_of(obj):
                write_status(self.backend, {**obj, "status": result.status})
            for event in result.events:
                self.backend.emit_event(obj, event.type, event.reason, event.message,
                                        source="source-controller")

        return self.git.reconcile(obj, self.backend.get, write).requeue_after

