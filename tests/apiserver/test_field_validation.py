"""`fieldValidation` (Strict, Warn, Ignore) on the served API, with the real kubectl (which sends
Strict unless told `--validate=warn|false`) and through raw HTTP, for a built-in kind
(Deployment) and a CRD-defined kind."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.apiserver.conftest import Served, needs_kubectl

pytestmark = needs_kubectl

GROUP = "fv.example.com"
CRD = f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{GROUP}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
"""


def _deployment(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "foo": "bar",
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def _gadget(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gadget",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"size": 1, "foo": "bar", "extra": {"kept": True}}}


@pytest.fixture(scope="module")
def crd(served: Served) -> Iterator[None]:
    served.kubectl("apply", "-f", "-", stdin=CRD)
    yield


def _call(served: Served, method: str, path: str, body: Any,
          content_type: str = "application/json") -> tuple[int, dict[str, Any], str]:
    """A raw request; the status code, the JSON body and the Warning header ("" if none)."""
    ca = base64.b64decode(served.config["clusters"][0]["cluster"][
        "certificate-authority-data"]).decode()
    context = ssl.create_default_context(cadata=ca)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(served.server + path, data=data, method=method, headers={
        "Authorization": f"Bearer {served.token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as response:
            code, text = response.status, response.read().decode()
            warning = response.headers.get("Warning") or ""
    except urllib.error.HTTPError as exc:
        code, text, warning = exc.code, exc.read().decode(), exc.headers.get("Warning") or ""
    parsed: dict[str, Any] = json.loads(text)
    return code, parsed, warning


# --- the real kubectl ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Deployment", "Gadget"])
def test_kubectl_apply_is_strict_by_default(served: Served, namespace: str, crd: None,
                                            kind: str) -> None:
    obj = _deployment(namespace, "strict") if kind == "Deployment" else \
        _gadget(namespace, "strict")
    done = served.kubectl("apply", "-f", "-", stdin=json.dumps(obj), check=False)
    assert done.returncode != 0
    assert "Error from server (BadRequest)" in done.stderr, done.stderr
    assert f'{kind} in version "v1" cannot be handled as a {kind}: strict decoding error: ' \
           'unknown field "spec.foo"' in done.stderr, done.stderr
    gone = served.kubectl("get", kind.lower(), "strict", "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


@pytest.mark.parametrize("kind", ["Deployment", "Gadget"])
def test_kubectl_apply_validate_warn_accepts_and_warns(served: Served, namespace: str,
                                                       crd: None, kind: str) -> None:
    obj = _deployment(namespace, "warned") if kind == "Deployment" else \
        _gadget(namespace, "warned")
    done = served.kubectl("apply", "--validate=warn", "-f", "-", stdin=json.dumps(obj))
    assert 'Warning: unknown field "spec.foo"' in done.stderr, done.stderr
    stored = served.get_json(kind.lower(), "warned", "-n", namespace)
    assert "foo" not in stored["spec"]
    # A second apply (a patch of the live object) warns again and still stores nothing new.
    again = served.kubectl("apply", "--validate=warn", "-f", "-", stdin=json.dumps(obj))
    assert 'Warning: unknown field "spec.foo"' in again.stderr, again.stderr
    assert "foo" not in served.get_json(kind.lower(), "warned", "-n", namespace)["spec"]


def test_kubectl_apply_validate_false_prunes_silently(served: Served, namespace: str,
                                                      crd: None) -> None:
    done = served.kubectl("apply", "--validate=false", "-f", "-",
                          stdin=json.dumps(_gadget(namespace, "ignored")))
    assert "Warning" not in done.stderr, done.stderr
    stored = served.get_json("gadget", "ignored", "-n", namespace)
    assert stored["spec"] == {"size": 1, "extra": {"kept": True}}


def test_kubectl_patch_warns_by_default(served: Served, namespace: str, crd: None) -> None:
    """`kubectl patch` sends no fieldValidation: the server's default, Warn."""
    served.kubectl("apply", "--validate=false", "-f", "-",
                   stdin=json.dumps(_gadget(namespace, "patched")))
    done = served.kubectl("patch", "gadget", "patched", "-n", namespace, "--type=merge",
                          "-p", '{"spec":{"bar":1,"size":2}}')
    assert 'Warning: unknown field "spec.bar"' in done.stderr, done.stderr
    stored = served.get_json("gadget", "patched", "-n", namespace)
    assert stored["spec"] == {"size": 2, "extra": {"kept": True}}


# --- raw HTTP -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Deployment", "Gadget"])
def test_raw_create_with_each_directive(served: Served, namespace: str, crd: None,
                                        kind: str) -> None:
    if kind == "Deployment":
        base, make = f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment
    else:
        base, make = f"/apis/{GROUP}/v1/namespaces/{namespace}/gadgets", _gadget

    code, body, warning = _call(served, "POST", base + "?fieldValidation=Strict",
                                make(namespace, "s"))
    assert (code, body["reason"]) == (400, "BadRequest"), body
    assert body["message"] == (f'{kind} in version "v1" cannot be handled as a {kind}: '
                               'strict decoding error: unknown field "spec.foo"')

    code, body, warning = _call(served, "POST", base + "?fieldValidation=Warn",
                                make(namespace, "w"))
    assert code == 201, body
    assert warning == '299 - "unknown field \\"spec.foo\\""'
    assert "foo" not in body["spec"]

    code, body, warning = _call(served, "POST", base, make(namespace, "d"))  # Warn by default
    assert code == 201 and warning == '299 - "unknown field \\"spec.foo\\""', (body, warning)

    code, body, warning = _call(served, "POST", base + "?fieldValidation=Ignore",
                                make(namespace, "i"))
    assert (code, warning) == (201, ""), body
    assert "foo" not in body["spec"]
    code, stored, _ = _call(served, "GET", base + "/i", b"")
    assert code == 200 and "foo" not in stored["spec"]

    code, body, _ = _call(served, "POST", base + "?fieldValidation=strict", make(namespace, "x"))
    assert (code, body["reason"]) == (422, "Invalid"), body
    assert body["message"] == ('CreateOptions.meta.k8s.io "" is invalid: fieldValidation: '
                               'Unsupported value: "strict": supported values: "", "Ignore", '
                               '"Strict", "Warn"')


@pytest.mark.parametrize("kind", ["Deployment", "Gadget"])
def test_raw_update_and_patches(served: Served, namespace: str, crd: None, kind: str) -> None:
    if kind == "Deployment":
        base, make = f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment
    else:
        base, make = f"/apis/{GROUP}/v1/namespaces/{namespace}/gadgets", _gadget
    code, live, _ = _call(served, "POST", base + "?fieldValidation=Ignore", make(namespace, "u"))
    assert code == 201

    put = {**live, "spec": {**live["spec"], "foo": 1}}
    code, body, _ = _call(served, "PUT", base + "/u?fieldValidation=Strict", put)
    assert code == 400 and body["message"].endswith('unknown field "spec.foo"'), body
    code, body, warning = _call(served, "PUT", base + "/u?fieldValidation=Warn",
                                {**put, "metadata": {**put["metadata"], "resourceVersion": ""}})
    assert code == 200 and "foo" not in body["spec"], body
    assert warning == '299 - "unknown field \\"spec.foo\\""'

    merge = "application/merge-patch+json"
    code, body, _ = _call(served, "PATCH", base + "/u?fieldValidation=Strict",
                          {"spec": {"bar": 1}}, merge)
    assert (code, body["reason"]) == (422, "Invalid"), body
    assert body["message"].startswith(' "" is invalid: patch: Invalid value: ')
    assert body["message"].endswith('strict decoding error: unknown field "spec.bar"')
    code, body, warning = _call(served, "PATCH", base + "/u", {"spec": {"bar": 1}}, merge)
    assert (code, warning) == (200, '299 - "unknown field \\"spec.bar\\""'), body
    assert "bar" not in body["spec"]
    code, body, warning = _call(served, "PATCH", base + "/u?fieldValidation=Ignore",
                                [{"op": "add", "path": "/spec/bar", "value": 1}],
                                "application/json-patch+json")
    assert (code, warning) == (200, "") and "bar" not in body["spec"], body
    if kind == "Deployment":
        code, body, _ = _call(served, "PATCH", base + "/u?fieldValidation=Strict",
                              {"spec": {"bar": 1}}, "application/strategic-merge-patch+json")
        assert code == 422 and body["message"] == (
            ' "" is invalid: patch: Invalid value: "map[spec:map[bar:1]]": strict decoding '
            'error: unknown field "spec.bar"'), body

    # Server-side apply converts the configuration to the kind's type whatever the directive.
    config = {"apiVersion": live["apiVersion"], "kind": kind,
              "metadata": {"name": "u", "namespace": namespace}, "spec": {"bar": 1}}
    code, body, _ = _call(served, "PATCH", base + "/u?fieldManager=t&fieldValidation=Ignore",
                          config, "application/apply-patch+yaml")
    group_version = live["apiVersion"]
    assert code == 500 and body["message"] == (
        f"failed to create typed patch object ({namespace}/u; {group_version}, Kind={kind}): "
        ".spec.bar: field not declared in schema"), body


def test_raw_duplicate_fields(served: Served, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    doc = b'{"metadata": {"name": "dup"}, "data": {"a": "1", "a": "2"}}'
    code, body, _ = _call(served, "POST", base + "?fieldValidation=Strict", doc)
    assert code == 400 and body["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "data.a"'), body
    code, body, warning = _call(served, "POST", base, doc)
    assert (code, warning) == (201, '299 - "duplicate field \\"data.a\\""'), body
    assert body["data"] == {"a": "2"}
    code, body, warning = _call(served, "PUT", base + "/dup?fieldValidation=Ignore",
                                doc.replace(b'"2"', b'"3"'))
    assert (code, warning) == (200, "") and body["data"] == {"a": "3"}, body
