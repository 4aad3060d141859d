"""Building the product's controllers for a backend, and loading an environment by name.

`reconciler` never imports `simulator`: environments are found through the
`reconciler.environments` entry point group, so the CLI wires them by name.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import cast

from reconciler.backends.base import Backend
from reconciler.engine.blueprints import BlueprintController
from reconciler.engine.kustomization import KustomizationReconciler
from reconciler.engine.owner import DELIVERABLE, WORKLOAD, OwnerController
from reconciler.engine.runnable import RunnableController
from reconciler.engine.runner import Environment
from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.model.errors import ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.notification.controller import ReceiverController
from reconciler.runtime.clock import Clock
from reconciler.runtime.controller import Controller
from reconciler.settings import KubernetesSettings, OwnerSettings, SourceSettings
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController

ENTRY_POINT_GROUP = "reconciler.environments"


def product_controllers(
    backend: Backend, clock: Clock, sources: SourceSettings, limits: Limits = DEFAULT_LIMITS,
    owners: OwnerSettings | None = None,
) -> list[Controller]:
    """The product's controllers; `owners` (the settings tree's group, defaults when None) goes
    to both owner controllers (Workload and Deliverable)."""
    owners = owners or OwnerSettings()
    store = ArtifactStore(sources.artifact_root, sources.artifact_base_url)
    git = GitRepositoryController(store, clock, sources.workdir,
                                  allow_local_urls=sources.allow_local_urls,
                                  interval_jitter=sources.interval_jitter)
    return [
        GitRepositoryReconciler(backend, git),
        # Blueprints before owners, so an owner reads a blueprint status from this same round.
        BlueprintController(backend, clock, WORKLOAD.blueprint_kind),
        BlueprintController(backend, clock, DELIVERABLE.blueprint_kind),
        OwnerController(backend, clock, WORKLOAD, settings=owners),
        OwnerController(backend, clock, DELIVERABLE, settings=owners),
        RunnableController(backend, clock),
        KustomizationReconciler(backend, clock, store, limits),
        # Flux's Receiver: publishes status.webhookPath for the daemon's --webhook-listen.
        ReceiverController(backend, clock),
    ]


def load_environment(name: str, kubernetes: KubernetesSettings | None = None) -> Environment:
    """The environment named `name`; `kubernetes` (the settings tree's group) goes to a factory
    that takes a `settings` argument (the `kubernetes` environment's), else it reads them from
    its `RECONCILER_KUBE_*` variables."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise ReconcilerError(f"no environment named {name!r} is installed (known: {known})")
    factory = found[0].load()
    if kubernetes is not None and "settings" in inspect.signature(factory).parameters:
        return cast(Environment, factory(settings=kubernetes))
    return cast(Environment, factory())
