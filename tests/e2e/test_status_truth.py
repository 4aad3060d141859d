"""A reconcile that crashes or fails is never recorded as a success (as a user meets it).

Through `simulate` (and the CLI) over real input files: a template whose rendering crashes, a
Workload or Kustomization whose reads fail, a Kustomization whose build crashes. Each leaves the
object Ready=False with the failure's reason and message, keeps the last good outputs, revision
and inventory, prunes nothing, and a crash makes `simulate` fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import reconciler.chains.realizer as realizer_module
import reconciler.engine.kustomization as kustomization_module
from reconciler.loader import load_paths
from reconciler.model.errors import Transient
from reconciler.runtime.controller import RECONCILE_ERROR
from reconciler.settings import SimulateSettings
from reconciler.simulation import SimulationResult, simulate
from reconciler.sources.artifacts import ArtifactStore
from tests.conftest import CliResult, GitRepo
from tests.manifests import SETTINGS_TEMPLATE, git_kustomization, settings_chain

GOOD = SETTINGS_TEMPLATE

# A macro that calls itself for ever: Jinja2 raises RecursionError while rendering.
RECURSIVE = """jinja2: |
    {% macro again(n) %}{{ again(n + 1) }}{% endmacro %}
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ workload.metadata.name }}-settings
    data:
      value: "{{ again(0) }}\""""

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
      value: "{value}"
"""


def _write(folder: Path, body: str, value: str = "one") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chain.yaml").write_text(settings_chain("ClusterConfigTemplate", body))
    (folder / "workload.yaml").write_text(WORKLOAD.format(value=value))
    return folder


def _simulate(folder: Path, state: Path | None = None, budget: float = 600) -> SimulationResult:
    return simulate(load_paths([folder], {}), state=state,
                    settings=SimulateSettings(budget_seconds=budget))


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def _find(result: SimulationResult, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in result.objects
                 if o["kind"] == kind and o["metadata"]["name"] == name), None)


def _settings_outputs(workload: dict[str, Any]) -> list[dict[str, Any]]:
    entry = next(r for r in workload["status"]["resources"] if r["name"] == "settings")
    return list(entry.get("outputs") or [])


def test_recursive_jinja_macro_is_not_ready_and_stamps_nothing(tmp_path: Path) -> None:
    result = _simulate(_write(tmp_path / "in", RECURSIVE), budget=120)
    workload = result.workloads[0]
    ready = _condition(workload, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] and ready["message"]
    assert _find(result, "ConfigMap", "app-settings") is None
    assert not result.ready


def test_recursive_jinja_macro_fails_the_cli(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    folder = _write(tmp_path / "in", RECURSIVE)
    result = cli("simulate", str(folder), "-o", "json", "--budget", "120")
    assert result.code != 0, result.stdout
    workload = result.json()["workloads"][0]
    assert _condition(workload, "Ready")["status"] == "False"


@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"),
                                   MemoryError("out of memory"), KeyError("boom")],
                         ids=["recursion", "memory", "bug"])
def test_a_crash_keeps_the_last_good_outputs_and_prunes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    state = tmp_path / "state.json"
    first = _simulate(_write(tmp_path / "in", GOOD, "one"), state)
    assert first.ready, first.summary
    good = _settings_outputs(first.workloads[0])
    assert good

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(realizer_module, "render", crash)
    second = _simulate(_write(tmp_path / "in", GOOD, "two"), state)
    workload = second.workloads[0]
    ready = _condition(workload, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == RECONCILE_ERROR
    assert type(error).__name__ in ready["message"]
    assert str(error).strip("'") in ready["message"]
    assert _condition(workload, "ResourcesSubmitted")["reason"] == RECONCILE_ERROR
    assert _settings_outputs(workload) == good
    assert workload["status"]["observedGeneration"] == workload["metadata"]["generation"]
    stamped = _find(second, "ConfigMap", "app-settings")
    assert stamped is not None and stamped["data"] == {"value": "one"}
    assert not second.ready
    assert second.report.crashed and "Workload default/app" in second.report.crashed[0]


def test_a_transient_read_failure_is_not_ready_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    first = _simulate(_write(tmp_path / "in", GOOD, "one"), state)
    assert first.ready, first.summary
    good = _settings_outputs(first.workloads[0])

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise Transient("SourceUnavailable", "cannot read the source: connection reset")

    monkeypatch.setattr(realizer_module, "apply_object", unavailable)
    second = _simulate(_write(tmp_path / "in", GOOD, "two"), state, budget=60)
    workload = second.workloads[0]
    ready = _condition(workload, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SourceUnavailable")
    assert "connection reset" in ready["message"]
    assert _settings_outputs(workload) == good
    assert _find(second, "ConfigMap", "app-settings") is not None
    # Retried (with backoff) while the budget lasted: not settled, and not a crash.
    assert not second.report.settled
    assert not second.report.crashed and second.report.failing


# --- Kustomization ---------------------------------------------------------------------------


def _cm(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n"


@pytest.fixture
def config_repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    return make_repo("config", {"deploy/a.yaml": _cm("a"), "deploy/b.yaml": _cm("b")})


def _ks(result: SimulationResult) -> dict[str, Any]:
    found = _find(result, "Kustomization", "app")
    assert found is not None
    return found


def _first_run(repo: GitRepo, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    folder = tmp_path / "ks"
    folder.mkdir()
    (folder / "ks.yaml").write_text(git_kustomization(repo.url))
    state = tmp_path / "ks-state.json"
    first = _simulate(folder, state)
    ks = _ks(first)
    assert _condition(ks, "Ready")["status"] == "True", ks["status"]
    return folder, state, ks


def test_a_crashing_build_keeps_the_applied_revision_and_prunes_nothing(
    config_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state, before = _first_run(config_repo, tmp_path)
    sha1 = config_repo.git("rev-parse", "HEAD")
    assert sha1 in before["status"]["lastAppliedRevision"]
    config_repo.git("rm", "-q", "deploy/b.yaml")
    config_repo.git("commit", "-q", "-m", "remove b")

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("kustomize exploded")

    monkeypatch.setattr(kustomization_module, "build", crash)
    second = _simulate(folder, state, budget=120)
    ks = _ks(second)
    ready = _condition(ks, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", RECONCILE_ERROR)
    assert "RuntimeError: kustomize exploded" in ready["message"]
    assert ks["status"]["lastAppliedRevision"] == before["status"]["lastAppliedRevision"]
    assert ks["status"]["inventory"] == before["status"]["inventory"]
    assert _find(second, "ConfigMap", "b") is not None  # nothing pruned
    assert not second.ready
    assert any("Kustomization default/app" in c for c in second.report.crashed)


def test_a_transient_artifact_failure_keeps_the_applied_revision(
    config_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state, before = _first_run(config_repo, tmp_path)
    config_repo.commit({"deploy/c.yaml": _cm("c")}, "add c")

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise Transient("ArtifactUnavailable", "artifact storage is not reachable")

    monkeypatch.setattr(ArtifactStore, "open", unavailable)
    second = _simulate(folder, state, budget=60)
    ks = _ks(second)
    ready = _condition(ks, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] and "not reachable" in ready["message"]
    assert ks["status"]["lastAppliedRevision"] == before["status"]["lastAppliedRevision"]
    assert ks["status"]["inventory"] == before["status"]["inventory"]
    assert _find(second, "ConfigMap", "c") is None


def test_a_first_transient_artifact_failure_writes_no_applied_revision(
    config_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ks"
    folder.mkdir()
    (folder / "ks.yaml").write_text(git_kustomization(config_repo.url))

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise Transient("ArtifactUnavailable", "artifact storage is not reachable")

    monkeypatch.setattr(ArtifactStore, "open", unavailable)
    ks = _ks(_simulate(folder, budget=60))
    ready = _condition(ks, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ArtifactUnavailable")
    assert "lastAppliedRevision" not in ks["status"]
