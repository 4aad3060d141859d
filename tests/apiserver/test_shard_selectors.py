"""`ShardFilter.selector` as a served API reads it: list and watch split objects between the
unsharded replica and each shard, and relabelling an object moves it (the old shard's watch
sees it DELETED, the new one's ADDED), which is how an owner changes replicas.

ConfigMaps stand in for the owners: label selectors work the same on every kind."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.ha.shard import SHARD_LABEL, ShardFilter
from tests.apiserver.conftest import Served, serving

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("shard-serve"), "--controllers", "ecosystem") as server:
        yield server


@pytest.fixture
def namespace(served: Served) -> str:
    name = f"shard-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    code, _ = served.request("POST", "/api/v1/namespaces", body.encode(), JSON)
    assert code == 201
    return name


def _configmap(served: Served, namespace: str, name: str, shard: str | None) -> None:
    labels = {SHARD_LABEL: shard} if shard is not None else {"app": name}
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": labels}})
    code, answer = served.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                                  body.encode(), JSON)
    assert code == 201, answer


def _list(served: Served, namespace: str, shard: ShardFilter) -> tuple[list[str], str]:
    query = urllib.parse.urlencode({"labelSelector": shard.selector})
    code, answer = served.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?{query}")
    assert code == 200 and isinstance(answer, dict), answer
    names = sorted(item["metadata"]["name"] for item in answer["items"])
    return names, str(answer["metadata"]["resourceVersion"])


def _watch(served: Served, namespace: str, shard: ShardFilter,
           since: str) -> list[tuple[str, str]]:
    """The events after `since` a watch with the shard's selector gets (closed after 1 s)."""
    query = urllib.parse.urlencode({"labelSelector": shard.selector, "watch": "true",
                                    "resourceVersion": since, "timeoutSeconds": "1"})
    ca = base64.b64decode(served.config["clusters"][0]["cluster"][
        "certificate-authority-data"]).decode()
    request = urllib.request.Request(
        f"{served.server}/api/v1/namespaces/{namespace}/configmaps?{query}",
        headers={"Authorization": f"Bearer {served.token}"})
    events: list[tuple[str, str]] = []
    with urllib.request.urlopen(request, context=ssl.create_default_context(cadata=ca),
                                timeout=10) as response:
        for line in response:
            event: dict[str, Any] = json.loads(line)
            if event["type"] != "BOOKMARK":
                events.append((event["type"], event["object"]["metadata"]["name"]))
    return events


def test_list_splits_objects_between_replicas(served: Served, namespace: str) -> None:
    _configmap(served, namespace, "main-a", None)
    _configmap(served, namespace, "main-b", None)
    _configmap(served, namespace, "one", "shard1")
    _configmap(served, namespace, "two", "shard2")
    assert _list(served, namespace, ShardFilter())[0] == ["main-a", "main-b"]
    assert _list(served, namespace, ShardFilter("shard1"))[0] == ["one"]
    assert _list(served, namespace, ShardFilter("shard2"))[0] == ["two"]


def test_relabelling_moves_an_object_between_shards(served: Served, namespace: str) -> None:
    _configmap(served, namespace, "moving", "shard1")
    shard1, shard2, main = ShardFilter("shard1"), ShardFilter("shard2"), ShardFilter()
    since = _list(served, namespace, shard1)[1]
    patch = json.dumps({"metadata": {"labels": {SHARD_LABEL: "shard2"}}}).encode()
    code, answer = served.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/moving",
                                  patch, {"Content-Type": "application/merge-patch+json"})
    assert code == 200, answer
    assert _watch(served, namespace, shard1, since) == [("DELETED", "moving")]
    assert _watch(served, namespace, shard2, since) == [("ADDED", "moving")]
    assert _watch(served, namespace, main, since) == []
