"""The pure parts of authentication and authorization: request attributes as kube derives them,
rule matching, aggregation, impersonation, token lifetimes, and the protobuf review bodies."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.apiserver.authn import ADMIN, Tokens, UserInfo, split_service_account
from simulator.apiserver.errors import ApiError
from simulator.apiserver.impersonation import ImpersonationError, impersonate
from simulator.apiserver.protobuf import ProtobufError, decode, decode_review
from simulator.apiserver.rbac import (
    Attributes,
    Authorizer,
    bootstrap_policy,
    forbidden,
    request_attributes,
    rule_allows,
)

BOB = UserInfo("bob", groups=("devs", "system:authenticated"))


@pytest.mark.parametrize(("method", "target", "want"), [
    ("GET", "/api", (False, "get", "", "", "", "", "")),
    ("GET", "/apis/apps/v1", (False, "get", "", "", "", "", "")),
    ("GET", "/api/v1/namespaces/ns/configmaps", (True, "list", "", "configmaps", "", "ns", "")),
    ("GET", "/api/v1/namespaces/ns/configmaps?watch=true",
     (True, "watch", "", "configmaps", "", "ns", "")),
    ("GET", "/api/v1/watch/namespaces/ns/configmaps",
     (True, "watch", "", "configmaps", "", "ns", "")),
    ("GET", "/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dx&watch=1",
     (True, "watch", "", "configmaps", "", "ns", "x")),
    ("GET", "/api/v1/namespaces/ns/configmaps/x?watch=true",
     (True, "get", "", "configmaps", "", "ns", "x")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/deployments",
     (True, "deletecollection", "apps", "deployments", "", "ns", "")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/status",
     (True, "patch", "apps", "deployments", "status", "ns", "d")),
    ("GET", "/api/v1/namespaces/ns", (True, "get", "", "namespaces", "", "ns", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize",
     (True, "update", "", "namespaces", "finalize", "ns", "ns")),
    ("GET", "/api/v1/nodes", (True, "list", "", "nodes", "", "", "")),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token",
     (True, "create", "", "serviceaccounts", "token", "ns", "sa")),
    ("GET", "/apis/carto.run/v1alpha1/workloads", (True, "list", "carto.run", "workloads", "",
                                                   "", "")),
])
def test_request_attributes_as_kube_derives_them(method: str, target: str,
                                                 want: tuple[Any, ...]) -> None:
    a = request_attributes(method, target, BOB)
    assert (a.resource_request, a.verb, a.group, a.resource, a.subresource, a.namespace,
            a.name) == want


def attrs(verb: str, resource: str, group: str = "", sub: str = "", name: str = "",
          namespace: str = "ns", user: UserInfo = BOB) -> Attributes:
    return Attributes(user, verb, True, "", group, "v1", resource, sub, namespace, name)


def test_rule_matching() -> None:
    rule = {"apiGroups": ["apps"], "resources": ["deployments", "*/scale"],
            "verbs": ["get", "update"]}
    assert rule_allows(attrs("get", "deployments", "apps"), rule)
    assert not rule_allows(attrs("list", "deployments", "apps"), rule)
    assert not rule_allows(attrs("get", "deployments", ""), rule)
    assert not rule_allows(attrs("get", "deployments", "apps", "status"), rule)
    assert rule_allows(attrs("update", "statefulsets", "apps", "scale"), rule)
    named = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"], "resourceNames": ["a"]}
    assert rule_allows(attrs("delete", "secrets", name="a"), named)
    assert not rule_allows(attrs("list", "secrets"), named)
    urls = {"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}
    plain = Attributes(BOB, "get", False, "/apis/apps/v1")
    assert rule_allows(plain, urls)
    assert not rule_allows(Attributes(BOB, "get", False, "/metrics"), urls)
    assert not rule_allows(attrs("get", "apis"), urls)


def objects(*extra: dict[str, Any]) -> Authorizer:
    store = [*bootstrap_policy(), *extra]

    def list_kind(kind: str) -> list[Any]:
        return [o for o in store if o["kind"] == kind]

    return Authorizer(list_kind, lambda: (len(store),), lambda work: work())


def binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]],
            namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": role}}


def test_authorizer_bindings_aggregation_and_reasons() -> None:
    authorizer = objects(
        binding("RoleBinding", "devs-edit", "ClusterRole", "edit",
                [{"kind": "Group", "name": "devs"}], "ns"),
        binding("ClusterRoleBinding", "gone", "ClusterRole", "missing",
                [{"kind": "User", "name": "bob"}]),
        {"kind": "ClusterRole", "metadata": {"name": "extra", "labels": {
            "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
         "rules": [{"apiGroups": ["carto.run"], "resources": ["workloads"], "verbs": ["get"]}]})
    assert authorizer.authorize(attrs("create", "deployments", "apps")) == (
        True, 'RBAC: allowed by RoleBinding "devs-edit/ns" of ClusterRole "edit" to Group '
              '"devs"')
    assert authorizer.authorize(attrs("get", "workloads", "carto.run"))[0]
    denied = attrs("create", "deployments", "apps", namespace="other")
    allowed, reason = authorizer.authorize(denied)
    assert not allowed
    assert reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found'
    assert forbidden(denied, reason).message == (
        'deployments.apps is forbidden: User "bob" cannot create resource "deployments" in API '
        'group "apps" in the namespace "other": RBAC: clusterrole.rbac.authorization.k8s.io '
        '"missing" not found')
    assert authorizer.authorize(attrs("get", "x", user=ADMIN)) == (True, "")
    anyone = UserInfo("carol", groups=("system:authenticated",))
    assert authorizer.authorize(Attributes(anyone, "get", False, "/apis/apps/v1"))[0]
    assert not authorizer.authorize(Attributes(anyone, "get", False, "/metrics"))[0]
    sa = UserInfo("system:serviceaccount:ns:bot", groups=("system:authenticated",))
    with_sa = objects(binding("RoleBinding", "b", "ClusterRole", "view",
                              [{"kind": "ServiceAccount", "name": "bot"}], "ns"))
    assert with_sa.authorize(attrs("list", "pods", user=sa))[0]
    assert not with_sa.authorize(attrs("list", "pods", user=sa, namespace="ns2"))[0]


def test_impersonation() -> None:
    allow_all = objects(binding("ClusterRoleBinding", "b", "ClusterRole", "cluster-admin",
                                [{"kind": "User", "name": "bob"}]))
    user = impersonate([("Impersonate-User", "system:serviceaccount:ns:x")], BOB,
                       allow_all.authorize)
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns",
                           "system:authenticated")
    user = impersonate([("Impersonate-User", "alice"), ("Impersonate-Group", "a"),
                        ("Impersonate-Group", "b"), ("Impersonate-Extra-Scopes%2Fx", "1"),
                        ("Impersonate-Uid", "u1")], BOB, allow_all.authorize)
    assert user == UserInfo("alice", "u1", ("a", "b", "system:authenticated"),
                            {"scopes/x": ("1",)})
    assert impersonate([("Accept", "x")], BOB, allow_all.authorize) is BOB
    with pytest.raises(ImpersonationError, match="without impersonating a user"):
        impersonate([("Impersonate-Group", "a")], BOB, allow_all.authorize)
    with pytest.raises(ApiError) as err:
        impersonate([("Impersonate-User", "alice")], BOB, objects().authorize)
    assert err.value.code == 403 and err.value.message == (
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API '
        'group "" at the cluster scope')


def test_tokens_expire_and_check_audiences() -> None:
    now = [1_000_000.0]
    tokens = Tokens("admin-token", lambda: now[0])
    sa = {"metadata": {"name": "bot", "namespace": "ns", "uid": "u-1"}}

    def lookup(kind: str, namespace: str, name: str) -> Any:
        return sa if (kind, namespace, name) == ("ServiceAccount", "ns", "bot") else None

    issued = tokens.issue(sa, [], 600)
    found = tokens.authenticate(f"Bearer {issued.token}", lookup)
    assert found is not None and found[0].name == "system:serviceaccount:ns:bot"
    assert tokens.authenticate("Bearer admin-token", lookup) == (ADMIN, (
        "https://kubernetes.default.svc.cluster.local",))
    assert tokens.authenticate(f"Basic {issued.token}", lookup) is None
    assert tokens.issue(sa, [], 10**9).seconds == 48 * 3600
    vault = tokens.issue(sa, ["vault"], 600)
    assert tokens.authenticate(f"Bearer {vault.token}", lookup) is None
    assert tokens.review(vault.token, lookup, ["vault"]) is not None
    assert Tokens("admin-token").review(issued.token, lookup) is None  # another server's key
    now[0] += 600
    assert tokens.authenticate(f"Bearer {issued.token}", lookup) is None
    assert split_service_account("system:serviceaccount:ns:bot") == ("ns", "bot")
    assert split_service_account("system:serviceaccount:ns") is None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def test_protobuf_review_bodies_decode_as_their_json() -> None:
    attributes = _field(1, b"ns") + _field(2, b"get") + _field(5, b"configmaps")
    spec = _field(1, attributes)
    raw = _field(1, _field(1, b"ignored")) + _field(2, spec)
    type_meta = _field(1, b"authorization.k8s.io/v1") + _field(2, b"SelfSubjectAccessReview")
    body = b"k8s\x00" + _field(1, type_meta) + _field(2, raw) + _field(4, b"")
    assert decode_review(body) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {"name": "ignored"},
        "spec": {"resourceAttributes": {"namespace": "ns", "verb": "get",
                                        "resource": "configmaps"}}}
    token_spec = _field(1, b"a") + _field(1, b"b") + _field(4, 3600)
    raw = _field(2, token_spec)
    type_meta = _field(1, b"authentication.k8s.io/v1") + _field(2, b"TokenRequest")
    decoded = decode_review(b"k8s\x00" + _field(1, type_meta) + _field(2, raw))
    assert decoded["spec"] == {"audiences": ["a", "b"], "expirationSeconds": 3600}
    extra = _field(1, b"k") + _field(2, _field(1, b"v1") + _field(1, b"v2"))
    raw = _field(2, _field(3, b"alice") + _field(5, extra))
    type_meta = _field(2, b"SubjectAccessReview")
    decoded = decode_review(b"k8s\x00" + _field(1, type_meta) + _field(2, raw))
    assert decoded["spec"] == {"user": "alice", "extra": {"k": ["v1", "v2"]}}
    with pytest.raises(ProtobufError, match="past the end"):
        decode_review(b"k8s\x00" + _field(1, type_meta) + b"\x12\xff\xff")
    # a review's status, or a field newer than the tables, is skipped; values are kept as read
    raw = _field(2, _field(4, 0) + _field(9, b"newer")) + _field(3, _field(1, 1))
    type_meta = _field(1, b"authentication.k8s.io/v1") + _field(2, b"TokenRequest")
    decoded = decode_review(b"k8s\x00" + _field(1, type_meta) + _field(2, raw))
    assert decoded["spec"] == {"expirationSeconds": 0}
    with pytest.raises(ProtobufError, match="cannot decode a ConfigMap"):
        decode_review(b"k8s\x00" + _field(1, _field(1, b"v1") + _field(2, b"ConfigMap")))
    with pytest.raises(ProtobufError, match=r"does not decode protobuf for .*TokenRequest"):
        decode(b"k8s\x00" + _field(1, type_meta) + _field(2, raw))


def test_escalation_covers_and_compact_strings() -> None:
    from simulator.apiserver.escalation import _breakdown, _compact, _covers, compact_string

    owner = {"apiGroups": ["apps"], "resources": ["deployments", "*/scale"], "verbs": ["*"]}
    wanted = _breakdown([{"apiGroups": ["apps"], "resources": ["deployments",
                                                                 "statefulsets/scale",
                                                                 "statefulsets"],
                          "verbs": ["get", "list"]}])
    missing = [r for r in wanted if not _covers(owner, r)]
    assert [compact_string(r) for r in _compact(missing)] == [
        '{APIGroups:["apps"], Resources:["statefulsets"], Verbs:["get" "list"]}']
    named = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
             "resourceNames": ["a"]}
    assert _covers(named, _breakdown([{**named}])[0])
    assert not _covers(named, _breakdown([{**named, "resourceNames": []}])[0])
    assert _covers({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]},
                   {"nonResourceURLs": ["/apis/apps"], "verbs": ["get"]})
