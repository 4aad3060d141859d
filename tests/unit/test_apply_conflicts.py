"""Which 409s of a server-side apply are retried.

kube-apiserver answers a plain 409 Conflict ("the object has been modified; please apply your
changes to the latest version and try again") when the object changed under the request: that
is retryable. A 409 whose causes are `FieldManagerConflict` is a field conflict: sending the same
apply again cannot help, so it stays a refusal. The errors here are the ones the Kubernetes
backend makes of real `ApiException`s carrying those Status bodies (`map_api_exception`); the
cluster they are raised from is the simulator's, failing the stamped object's apply on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.applier import APPLY_RACED, Action, apply_object
from reconciler.backends.kubernetes import Operation, map_api_exception
from reconciler.loader import load_paths
from reconciler.model.conflicts import ApplyConflict
from reconciler.model.errors import Conflict, ReconcilerError, Transient
from reconciler.model.objects import Obj
from reconciler.settings import SimulateSettings
from reconciler.simulation import SimulationResult, simulate
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from tests.manifests import settings_chain
from tests.unit.test_kubernetes_backend_errors import SSA_CONFLICT, _from_response, _status

STALE = _status(
    409, "Conflict",
    'Operation cannot be fulfilled on configmaps "app-settings": the object has been modified; '
    "please apply your changes to the latest version and try again",
    {"name": "app-settings", "kind": "configmaps"})
"""kube-apiserver's optimistic-concurrency Conflict (`errors.NewConflict`): no causes."""

PATCH = Operation("patch", "configmaps", "default", "app-settings")


def _mapped(body: dict[str, Any]) -> ReconcilerError:
    return map_api_exception(_from_response(409, "Conflict", body), PATCH,
                             applied="ConfigMap/default/app-settings")


def _cm(value: str = "one") -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app-settings", "namespace": "default"},
            "data": {"value": value}}


@pytest.fixture
def failing_applies(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., list[str]]]:
    """`arm(error, times)`: the next `times` applies of ConfigMap `app-settings` raise `error`;
    returns the list the failed applies are recorded in."""
    real = InMemoryCluster.apply

    def arm(error: ReconcilerError, times: int) -> list[str]:
        failed: list[str] = []

        def apply(self: InMemoryCluster, obj: Obj, *args: Any, **kwargs: Any) -> Obj:
            if (obj.get("kind"), obj.get("metadata", {}).get("name")) == (
                    "ConfigMap", "app-settings") and len(failed) < times:
                failed.append(str(error))
                raise error
            return real(self, obj, *args, **kwargs)

        monkeypatch.setattr(InMemoryCluster, "apply", apply)
        return failed

    yield arm


def test_the_backend_maps_the_two_409s_apart() -> None:
    stale, fields = _mapped(STALE), _mapped(SSA_CONFLICT)
    assert type(stale) is Conflict
    assert isinstance(fields, ApplyConflict)


def test_a_plain_409_on_apply_is_transient(failing_applies: Callable[..., list[str]]) -> None:
    cluster = InMemoryCluster(VirtualClock())
    failing_applies(_mapped(STALE), times=1)
    with pytest.raises(Transient) as raised:
        apply_object(cluster, _cm())
    assert raised.value.reason == APPLY_RACED
    assert "ConfigMap/default/app-settings" in str(raised.value)
    assert "the object has been modified" in str(raised.value)
    # The next attempt goes through.
    assert apply_object(cluster, _cm()).action is Action.CREATED


def test_a_field_manager_conflict_is_not_retried(
        failing_applies: Callable[..., list[str]]) -> None:
    cluster = InMemoryCluster(VirtualClock())
    failing_applies(_mapped(SSA_CONFLICT), times=1)
    with pytest.raises(ApplyConflict) as raised:
        apply_object(cluster, _cm())
    assert not isinstance(raised.value, Transient)
    assert ".data.a (owned by kubectl-edit)" in str(raised.value)


WORKLOAD = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app
  namespace: default
  labels:
    app.example.com/kind: settings
spec:
  params:
    - name: value
      value: one
"""


def _simulate(tmp_path: Path) -> SimulationResult:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "chain.yaml").write_text(settings_chain())
    (folder / "workload.yaml").write_text(WORKLOAD)
    return simulate(load_paths([folder], {}), settings=SimulateSettings(budget_seconds=600))


def _ready(result: SimulationResult) -> dict[str, Any]:
    conditions = result.workloads[0]["status"]["conditions"]
    return dict(next(c for c in conditions if c["type"] == "Ready"))


def test_a_workload_whose_apply_met_a_plain_409_is_retried_and_gets_ready(
        tmp_path: Path, failing_applies: Callable[..., list[str]]) -> None:
    failed = failing_applies(_mapped(STALE), times=2)
    result = _simulate(tmp_path)
    assert len(failed) == 2  # both failed applies happened, and a later one went through
    assert _ready(result)["status"] == "True", result.summary
    assert any(o["kind"] == "ConfigMap" and o["metadata"]["name"] == "app-settings"
               for o in result.objects)


def test_a_workload_whose_apply_met_a_field_conflict_is_rejected(
        tmp_path: Path, failing_applies: Callable[..., list[str]]) -> None:
    failed = failing_applies(_mapped(SSA_CONFLICT), times=1_000)
    result = _simulate(tmp_path)
    ready = _ready(result)
    assert (ready["status"], ready["reason"]) == ("False", "TemplateRejectedByAPIServer")
    assert "Apply failed with 2 conflict(s)" in ready["message"]
    assert len(failed) == 1  # not retried: only a change of the input runs it again
