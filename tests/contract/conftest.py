"""A served simulated cluster for the `KubernetesBackend` half of the contract suite.

`reconciler serve --controllers ecosystem` runs as a subprocess (as a user runs it), once per
test session; `RECONCILER_TEST_KUBECONFIG` points the suite at a real cluster instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.backends.base import Backend
from reconciler.backends.kubernetes import connect
from reconciler.settings import KubernetesSettings
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from tests.apiserver.conftest import serving

KUBECONFIG_VARIABLE = "RECONCILER_TEST_KUBECONFIG"
UNCACHED = KubernetesSettings(informers=False, list_page_size=2)


@pytest.fixture(scope="session")
def served_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The kubeconfig of a cluster to run the contract against: `$RECONCILER_TEST_KUBECONFIG`,
    else a `reconciler serve --controllers ecosystem` started for this session."""
    override = os.environ.get(KUBECONFIG_VARIABLE)
    if override:
        yield Path(override)
        return
    with serving(tmp_path_factory.mktemp("contract-serve"), "--controllers", "ecosystem") as server:
        yield server.kubeconfig


@pytest.fixture(params=["kubernetes", "kubernetes-uncached", "simulator"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend the contract holds for: the simulated cluster, and `KubernetesBackend`
    against the served cluster with its informer caches and without (paged lists)."""
    if request.param == "simulator":
        yield InMemoryCluster(VirtualClock())
        return
    kubeconfig: Path = request.getfixturevalue("served_kubeconfig")
    kube = connect(kubeconfig, settings=UNCACHED if request.param.endswith("uncached") else None)
    try:
        yield kube
    finally:
        kube.close()  # its informers' watches
