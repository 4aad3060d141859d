"""Stamping a run: names like the API server's generateName, labels, owner, `$(selected)$`."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.runnable_errors import RunStampError
from reconciler.chains.runnable_stamp import (
    RUN_TEMPLATE_NAME_LABEL,
    RUNNABLE_NAME_LABEL,
    generated_name,
    go_map,
    resolve_selected,
    stamp_run,
)
from reconciler.model.kinds import BUILTIN_KINDS
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

NS = "dev"


def _runnable(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "carto.run/v1alpha1", "kind": "Runnable",
        "metadata": {"name": "tests", "namespace": NS, "uid": "uid-1",
                     "labels": {"team": "a"}},
        "spec": {"runTemplateRef": {"name": "tpl"}, **spec},
    }


def _template(body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "carto.run/v1alpha1", "kind": "ClusterRunTemplate",
            "metadata": {"name": "tpl"}, "spec": {"template": body}}


CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"generateName": "run-"},
             "data": {"url": "$(runnable.spec.inputs.url)$"}}


@pytest.fixture
def cluster() -> InMemoryCluster:
    c = InMemoryCluster(VirtualClock(), BUILTIN_KINDS)
    c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return c


@pytest.mark.parametrize(
    ("prefix", "expected_prefix"),
    [("run-", "run-"), ("x" * 70, "x" * 58)],
    ids=["short", "truncated-to-fit-63"],
)
def test_generated_name_is_prefix_plus_five_server_characters(
    prefix: str, expected_prefix: str
) -> None:
    name = generated_name(prefix, {"data": {"a": "1"}})
    assert name.startswith(expected_prefix)
    assert len(name) == len(expected_prefix) + 5
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in name[-5:])


def test_generated_name_follows_content_not_name() -> None:
    first = generated_name("run-", {"metadata": {"name": "a"}, "data": {"a": "1"}})
    same = generated_name("run-", {"metadata": {"name": "b"}, "data": {"a": "1"}})
    other = generated_name("run-", {"metadata": {"name": "a"}, "data": {"a": "2"}})
    assert first == same
    assert first != other


def test_stamp_run_interpolates_labels_owns_and_names() -> None:
    run = stamp_run(_template(CONFIGMAP), _runnable(inputs={"url": "https://x"}), None)
    meta = run["metadata"]
    assert run["data"] == {"url": "https://x"}
    assert meta["namespace"] == NS
    assert meta["labels"] == {RUNNABLE_NAME_LABEL: "tests", RUN_TEMPLATE_NAME_LABEL: "tpl"}
    assert meta["ownerReferences"][0] | {"kind": "Runnable", "name": "tests",
                                         "uid": "uid-1"} == meta["ownerReferences"][0]
    assert meta["name"].startswith("run-") and meta["generateName"] == "run-"
    again = stamp_run(_template(CONFIGMAP), _runnable(inputs={"url": "https://x"}), None)
    changed = stamp_run(_template(CONFIGMAP), _runnable(inputs={"url": "https://y"}), None)
    assert again["metadata"]["name"] == meta["name"]
    assert changed["metadata"]["name"] != meta["name"]


def test_stamp_run_context_fills_run_template_kind_and_selected() -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fixed"},
            "data": {"kind": "$(runnable.spec.runTemplateRef.kind)$",
                     "picked": "$(selected.data.answer)$"}}
    selected = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"answer": "polo"}}
    run = stamp_run(_template(body), _runnable(), selected)
    assert run["data"] == {"kind": "ClusterRunTemplate", "picked": "polo"}
    assert run["metadata"]["name"] == "fixed"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**CONFIGMAP, "data": {"x": "$(runnable.spec.inputs.missing)$"}},
         "unable to stamp object for run template [tpl]"),
        ({"data": {"x": "y"}}, "apiVersion and kind are required"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "needs generateName"),
        ({**CONFIGMAP, "data": {"x": "$(selected.data)$"}}, "unable to stamp object"),
    ],
    ids=["missing-input", "not-an-object", "no-name", "selected-without-selector"],
)
def test_stamp_run_failures_say_what_and_where(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RunStampError) as info:
        stamp_run(_template(body), _runnable(inputs={}), None)
    assert fragment in str(info.value)
    assert info.value.reason == "TemplateStampFailure"


def _test_cm(name: str, labels: dict[str, str], namespace: str = NS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}


@pytest.mark.parametrize(
    ("objects", "labels", "expected", "error"),
    [
        ([_test_cm("a", {"stage": "prod", "group": "g"}),
          _test_cm("b", {"stage": "test", "group": "g"})],
         {"stage": "prod", "group": "g"}, "a", None),
        ([_test_cm("a", {"group": "g"}), _test_cm("b", {"group": "g"})],
         {"group": "g"}, None, "selector matched multiple objects (a, b)"),
        ([_test_cm("a", {"group": "g"}, namespace="default")],
         {"group": "g"}, None, "selector did not match any objects"),
    ],
    ids=["all-labels-must-match", "ambiguous", "other-namespace-not-seen"],
)
def test_resolve_selected(
    cluster: InMemoryCluster, objects: list[dict[str, Any]], labels: dict[str, str],
    expected: str | None, error: str | None,
) -> None:
    for obj in objects:
        cluster.apply(obj)
    runnable = _runnable(selector={"resource": {"apiVersion": "v1", "kind": "ConfigMap"},
                                   "matchingLabels": labels})
    if error is None:
        found = resolve_selected(cluster, runnable)
        assert found is not None and found["metadata"]["name"] == expected
        return
    with pytest.raises(RunStampError) as info:
        resolve_selected(cluster, runnable)
    assert error in str(info.value)
    assert f"unable to resolve selector [{go_map(labels)}], apiVersion [v1], kind [ConfigMap]" \
        in str(info.value)


def test_resolve_selected_unknown_kind_names_the_field(cluster: InMemoryCluster) -> None:
    runnable = _runnable(selector={"resource": {"apiVersion": "example.com/v1", "kind": "Nope"},
                                   "matchingLabels": {"a": "b"}})
    with pytest.raises(RunStampError, match=r"spec\.selector\.resource"):
        resolve_selected(cluster, runnable)


def test_no_selector_selects_nothing(cluster: InMemoryCluster) -> None:
    assert resolve_selected(cluster, _runnable()) is None
