"""The pure parts of the served API: patches, selectors, routing, tables, the 500 path."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from simulator.apiserver.authn import Tokens
from simulator.apiserver.errors import ApiError
from simulator.apiserver.gate import Gate
from simulator.apiserver.handlers import Api, Request
from simulator.apiserver.patches import json_patch, merge_patch, strategic_merge_patch
from simulator.apiserver.routing import Route, route
from simulator.apiserver.selectors import field_matcher, label_matcher
from simulator.apiserver.server import _Handler
from simulator.apiserver.store import Store
from simulator.apiserver.tables import human_duration
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster


def test_merge_patch_removes_nulls_and_replaces_lists() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None}, "l": [3]}) == \
        {"a": {"c": 2}, "l": [3]}


def test_json_patch_operations_and_failures() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    assert json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3},
                            {"op": "move", "from": "/b/c", "path": "/d"},
                            {"op": "test", "path": "/d", "value": 1}]) == \
        {"a": [1, 2, 3], "b": {}, "d": 1}
    with pytest.raises(ApiError) as caught:
        json_patch(doc, [{"op": "test", "path": "/a/0", "value": 9}])
    assert caught.value.code == 422
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


def test_strategic_merge_patch_merges_by_keys_and_honours_directives() -> None:
    live = {"spec": {"containers": [{"name": "a", "image": "a:1", "ports": [
        {"containerPort": 80, "name": "http"}]}, {"name": "b", "image": "b:1"}]},
        "metadata": {"finalizers": ["x"]}}
    patched = strategic_merge_patch(live, {
        "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 81}]},
                                {"name": "b", "$patch": "delete"}],
                 "$setElementOrder/containers": [{"name": "a"}]},
        "metadata": {"finalizers": ["y"]}})
    assert patched["spec"]["containers"] == [{"name": "a", "image": "a:1", "ports": [
        {"containerPort": 80, "name": "http"}, {"containerPort": 81}]}]
    assert patched["metadata"]["finalizers"] == ["x", "y"]
    replaced = strategic_merge_patch(live, {"spec": {"$patch": "replace", "x": 1}})
    assert replaced["spec"] == {"x": 1}


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a!=b", {}, True),
    ("a in (b, c)", {"a": "c"}, True), ("a notin (b)", {"a": "b"}, False),
    ("a", {"a": ""}, True), ("!a", {"a": "x"}, False), ("a=b,c", {"a": "b"}, False),
])
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_matcher(selector)({"metadata": {"labels": labels}}) is expected


def test_field_selectors_and_unsupported_fields() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x", "namespace": "n"}}
    assert field_matcher("metadata.name=x,metadata.namespace!=m", "", "ConfigMap")(obj)
    with pytest.raises(ApiError) as caught:
        field_matcher("spec.foo=1", "", "ConfigMap")
    assert caught.value.code == 400 and "field label not supported" in caught.value.message


def test_routing() -> None:
    assert route(["apis", "carto.run", "v1alpha1", "namespaces", "d", "workloads", "w",
                  "status"]) == Route("carto.run", "v1alpha1", "workloads", "d", "w", "status")
    assert route(["api", "v1", "namespaces", "d"]) == Route("", "v1", "namespaces", None, "d")
    assert route(["api", "v1", "namespaces", "d", "status"]) == Route(
        "", "v1", "namespaces", None, "d", "status")
    assert route(["api", "v1", "watch", "namespaces", "d", "pods"]) == Route(
        "", "v1", "pods", "d", watch_path=True)
    assert route(["metrics"]) is None


def test_human_duration_as_kubectl_prints_ages() -> None:
    assert [human_duration(s) for s in (5, 119, 150, 600, 7200, 90000, 864000)] == \
        ["5s", "119s", "2m30s", "10m", "120m", "25h", "10d"]


def test_a_broken_handler_is_a_500_status_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(InMemoryCluster(VirtualClock()), threading.Lock())
    api = Api(store, "127.0.0.1:1", lambda: False)

    def broken(request: Request) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "handle", broken)
    sent: list[Any] = []

    class Fake(_Handler):
        def __init__(self) -> None:
            self.command, self.path = "GET", "/api/v1/namespaces/default/configmaps"
            self.headers = {"Authorization": "Bearer t"}  # type: ignore[assignment]
            self.server = type("S", (), {"gate": Gate(api, Tokens("t"))})()
            self.close_connection = False

        def _respond(self, response: Any) -> None:
            sent.append(response)

    Fake()._serve()
    assert sent[0].code == 500 and sent[0].body["reason"] == "InternalError"
    assert "secret internals" not in str(sent[0].body)
