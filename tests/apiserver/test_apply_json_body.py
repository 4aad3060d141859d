"""Server-side apply bodies (`application/apply-patch+yaml`) sent as JSON, as client-go and the
Python client send them, are read by the JSON reader (many times faster than the YAML composer;
a settle of 10,000 workloads sends 20,000 of them), with the YAML reader's answer for anything
the JSON reader refuses: block-style YAML, flow-style YAML that is not JSON, duplicate keys."""

from __future__ import annotations

import json

from tests.apiserver.conftest import Served

APPLY = {"Content-Type": "application/apply-patch+yaml"}


def _apply(served: Served, namespace: str, name: str, body: bytes) -> tuple[int, object]:
    return served.request(
        "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=t", body,
        APPLY)


def test_json_and_yaml_apply_bodies_give_the_same_object(served: Served,
                                                           namespace: str) -> None:
    as_json = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "j", "labels": {"a": "1"}},
                          "data": {"k": "v", "n": "1"}}).encode()
    as_yaml = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  labels:\n"
               b"    a: '1'\ndata:\n  k: v\n  n: '1'\n")
    as_flow = b'{apiVersion: v1, kind: ConfigMap, metadata: {name: f, labels: {a: "1"}}, ' \
              b'data: {k: v, n: "1"}}'
    answers = [_apply(served, namespace, name, body)
               for name, body in (("j", as_json), ("y", as_yaml), ("f", as_flow))]
    assert [code for code, _ in answers] == [201, 201, 201], answers
    shapes = [(o["metadata"]["labels"], o["data"]) for _, o in answers]  # type: ignore[index]
    assert shapes == [({"a": "1"}, {"k": "v", "n": "1"})] * 3


def test_a_json_body_the_json_reader_refuses_gets_the_yaml_readers_answer(
        served: Served, namespace: str) -> None:
    duplicate = (b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, '
                 b'"data": {"k": "1", "k": "2"}}')
    code, body = _apply(served, namespace, "d", duplicate)
    assert code == 400, body
    assert "duplicate key 'k'" in str(body["message"]), body  # type: ignore[index]
    assert "invalid YAML" in str(body["message"]), body  # type: ignore[index]


def test_a_json_number_with_an_exponent_is_a_number(served: Served, namespace: str) -> None:
    # json.dumps writes 0.00001 as 1e-05; read as YAML 1.1 it would be the string "1e-05",
    # where kube-apiserver (which converts YAML to JSON) reads a number. A ConfigMap refuses a
    # number in data, which tells the two readings apart.
    body = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}, ' \
           b'"data": {"k": 1e-05}}'
    code, answer = _apply(served, namespace, "e", body)
    assert code in (400, 422), answer
    assert "1e-05" not in json.dumps(answer.get("data") if isinstance(answer, dict) else None)
