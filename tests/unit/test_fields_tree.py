"""`fieldsets.fields_tree(obj)` is `to_tree(fields_of(obj))` built in one walk (a create's
managedFields entry): the same tree, the same key order at every level (a served object's
managedFields are compared as JSON text by kubectl and the clients), for every shape of field
the walk knows, and for maps whose keys are spelt alike (merged, as the path set merges them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.model.fieldsets import fields_of, fields_tree, to_tree

OBJECTS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}},
    {"apiVersion": "v1", "kind": "ConfigMap",
     "metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "3",
                  "labels": {"z": "1", "a": "2", "m": ""}, "annotations": {},
                  "ownerReferences": [{"uid": "b", "name": "y", "kind": "K"},
                                      {"uid": "a", "name": "x", "kind": "K"}],
                  "finalizers": ["f/b", "f/a"]},
     "data": {"b": "2", "a": "1", "c": None}, "status": {"x": 1}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
     "spec": {"replicas": 2, "paused": False, "ratio": 0.5, "empty": {}, "none": [],
              "template": {"spec": {
                  "containers": [
                      {"name": "web", "image": "i", "ports": [
                          {"containerPort": 8080, "protocol": "TCP"},
                          {"containerPort": 80}],
                       "env": [{"name": "B", "value": "1"}, {"name": "A", "value": "2"}],
                       "args": ["x", "y"]},
                      {"name": "side", "image": "j", "volumeMounts": [
                          {"mountPath": "/b", "name": "v"}, {"mountPath": "/a", "name": "w"}]}],
                  "tolerations": [{"key": "k"}, {"key": "k"}],  # no merge key: atomic
                  "mixed": [{"name": "a"}, "b"],  # not all maps: atomic
                  "dupes": [{"name": "a"}, {"name": "a", "port": 1}, {"name": "b", "port": 2}],
              }}}},
    {"apiVersion": "x/v1", "kind": "K", "metadata": "not a map", "spec": "text"},
    {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "only-unowned", "uid": "u"},
     "spec": {"items": [{"type": 1}, {"type": True}, {"type": 1.5}]}},
    {"kind": "K", "spec": {1: "one", "1": "also one", "2": {"a": 1}, 2: {"b": 2}}},
    {"kind": "K", "metadata": {"labels": {"a": 1}}, "spec": {"l": [{"name": "x", 3: "c",
                                                                    "3": "d"}]}},
]


@pytest.mark.parametrize("obj", OBJECTS)
def test_the_tree_is_to_tree_of_the_field_set(obj: dict[str, Any]) -> None:
    expected = to_tree(fields_of(obj))
    got = fields_tree(obj)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # the same order at every level
