"""The HTTP API itself, without kubectl: Status bodies, authentication, bounds, watch
resourceVersion semantics, aggregated discovery, shutdown with --state."""

from __future__ import annotations

import json
import signal
import ssl
import urllib.request
from pathlib import Path

import pytest

from tests.apiserver.conftest import Served, start_server, wait_for

CM = "/api/v1/namespaces/default/configmaps"


def body(name: str, **data: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": data}).encode()


JSON = {"Content-Type": "application/json"}


def test_health_and_version_need_no_token_everything_else_does(served: Served) -> None:
    assert served.request("GET", "/healthz", token="")[0] == 200
    assert served.request("GET", "/livez", token="")[0] == 200
    code, version = served.request("GET", "/version", token="")
    assert code == 200 and isinstance(version, dict) and version["major"] == "1"
    code, status = served.request("GET", CM, token="wrong")
    assert code == 401
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Failure", "message": "Unauthorized",
                      "reason": "Unauthorized", "code": 401}


def test_the_serving_certificate_is_only_trusted_through_the_kubeconfig_ca(
        served: Served) -> None:
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(served.server + "/healthz", timeout=5,
                               context=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert oct(served.kubeconfig.stat().st_mode & 0o777) == "0o600"


def test_status_bodies_as_kube_apiserver_words_them(served: Served) -> None:
    code, status = served.request("GET", CM + "/missing")
    assert code == 404 and status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "missing" not found', "reason": "NotFound",
        "details": {"name": "missing", "kind": "configmaps"}, "code": 404}
    assert served.request("POST", CM, body("dup", a="1"), JSON)[0] == 201
    code, status = served.request("POST", CM, body("dup", a="1"), JSON)
    assert code == 409 and isinstance(status, dict)
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "dup" already exists'
    code, status = served.request("PUT", CM + "/dup", json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dup", "resourceVersion": "1"}}).encode(), JSON)
    assert code == 409 and isinstance(status, dict) and status["reason"] == "Conflict"
    code, status = served.request("POST", CM, body("Not_Valid"), JSON)
    assert code == 422 and isinstance(status, dict) and status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    code, status = served.request("PATCH", CM + "/dup", b"{}",
                                  {"Content-Type": "text/plain"})
    assert code == 415 and isinstance(status, dict)
    assert status["reason"] == "UnsupportedMediaType"
    code, status = served.request("POST", "/api/v1/namespaces/default/nothings", b"{}", JSON)
    assert code == 404 and isinstance(status, dict)
    assert status["message"] == "the server could not find the requested resource"
    code, status = served.request("POST", CM + "/dup", b"{}", JSON)
    assert code == 405 and isinstance(status, dict) and status["reason"] == "MethodNotAllowed"


def test_hostile_bodies_are_bounded(served: Served) -> None:
    code, status = served.request("POST", CM, b"x" * (3 * 1024 * 1024 + 1), JSON)
    assert code == 413 and isinstance(status, dict)
    assert status["reason"] == "RequestEntityTooLarge"
    deep = b"[" * 5000 + b"]" * 5000
    code, status = served.request("POST", CM, deep, JSON)
    assert code == 400 and isinstance(status, dict) and status["reason"] == "BadRequest"
    assert "Traceback" not in json.dumps(status)
    code, status = served.request("GET", CM + "?labelSelector=a+in+(")
    assert code == 400 and isinstance(status, dict)


def test_watch_from_a_too_old_resource_version_is_gone(served: Served) -> None:
    code, text = served.request("GET", CM + "?watch=1&resourceVersion=1&timeoutSeconds=1")
    assert code == 200 and isinstance(text, dict)  # one event: the ERROR
    assert text["type"] == "ERROR"
    assert text["object"]["code"] == 410 and text["object"]["reason"] == "Expired"


def test_watch_sends_initial_events_and_the_bookmark_that_ends_them(served: Served) -> None:
    served.request("POST", CM, body("initial", a="1"), JSON)
    code, text = served.request(
        "GET", CM + "?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                    "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
    assert code == 200 and isinstance(text, str)
    events = [json.loads(line) for line in text.splitlines()]
    names = [e["object"]["metadata"].get("name") for e in events if e["type"] == "ADDED"]
    assert "initial" in names
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    assert bookmark["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


def test_aggregated_discovery(served: Served) -> None:
    code, doc = served.request("GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json"})
    assert code == 200 and isinstance(doc, dict) and doc["kind"] == "APIGroupDiscoveryList"
    carto = next(g for g in doc["items"] if g["metadata"]["name"] == "carto.run")
    workloads = next(r for r in carto["versions"][0]["resources"]
                     if r["resource"] == "workloads")
    assert workloads["shortNames"] == ["wrk"] and workloads["scope"] == "Namespaced"
    assert workloads["subresources"][0]["subresource"] == "status"


def test_sigterm_saves_the_state_and_exits_0(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    server = start_server(tmp_path, "--state", str(state), "--controllers", "ecosystem")
    try:
        assert server.stdout_line == f"export KUBECONFIG={server.kubeconfig}"
        wait_for(lambda: server.request("GET", "/readyz")[0] == 200)
        assert server.request("POST", CM, body("kept", a="1"), JSON)[0] == 201
        server.process.send_signal(signal.SIGTERM)
        assert server.stop() == 0
    finally:
        server.stop()
    saved = json.loads(state.read_text())
    assert any(o["metadata"]["name"] == "kept" for o in saved["objects"])
    again = start_server(tmp_path, "--state", str(state), "--controllers", "ecosystem")
    try:
        code, obj = again.request("GET", CM + "/kept")
        assert code == 200 and isinstance(obj, dict) and obj["data"] == {"a": "1"}
    finally:
        assert again.stop() == 0
