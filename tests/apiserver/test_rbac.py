"""`reconciler serve --rbac` with the real kubectl: ServiceAccount tokens, RBAC with kube's 403
messages, `auth can-i` (and `--list`), `auth whoami`, impersonation, the review APIs; and
without --rbac, everything allowed as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.conftest import Served, needs_kubectl, serving, start_server

pytestmark = needs_kubectl


@pytest.fixture(scope="module")
def rbac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("rbac"), "--rbac", "--controllers", "ecosystem") as server:
        yield server


_names = iter(range(1, 10_000))


def apply(served: Served, text: str, *args: str) -> None:
    served.kubectl("apply", "-f", "-", *args, stdin=text)


@pytest.fixture
def ns(rbac: Served) -> str:
    """A fresh namespace with a ServiceAccount `bot` in it."""
    name = f"r{next(_names)}"
    apply(rbac, f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n---\n"
                f"apiVersion: v1\nkind: ServiceAccount\n"
                f"metadata: {{name: bot, namespace: {name}}}\n")
    return name


def token(served: Served, namespace: str, sa: str = "bot", *args: str) -> str:
    return served.kubectl("create", "token", sa, "-n", namespace, *args).stdout.strip()


def as_sa(served: Served, tok: str, *args: str, check: bool = False) -> tuple[int, str]:
    done = served.kubectl("--token", tok, *args, check=check)
    return done.returncode, (done.stdout + done.stderr).strip()


def role(ns: str, name: str, rules: str, binding_subjects: str,
         kind: str = "Role") -> str:
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nrules:\n{rules}\n---\n"
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\n"
            f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: {name}}}\n"
            f"subjects: {binding_subjects}\n")


READ_CM = '- {apiGroups: [""], resources: [configmaps], verbs: [get, list]}'


def test_the_kubeconfig_user_is_an_admin_in_system_masters(rbac: Served) -> None:
    out = rbac.kubectl("auth", "whoami").stdout
    assert "reconciler-admin" in out and "[system:masters system:authenticated]" in out
    assert rbac.kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery",
            "system:basic-user"} <= {
        i["metadata"]["name"] for i in rbac.get_json("clusterroles")["items"]}


def test_a_service_account_token_authenticates_as_the_service_account(
        rbac: Served, ns: str) -> None:
    tok = token(rbac, ns)
    code, out = as_sa(rbac, tok, "auth", "whoami", "-o", "json")
    assert code == 0, out
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:bot"
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                              "system:authenticated"]
    uid = rbac.get_json("serviceaccount", "bot", "-n", ns)["metadata"]["uid"]
    assert info["uid"] == uid
    assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    # Discovery and self reviews work for any authenticated user (system:discovery, basic-user).
    assert as_sa(rbac, tok, "api-resources", "--api-group=apps")[0] == 0


def test_unknown_expired_or_orphaned_tokens_are_401(rbac: Served, ns: str) -> None:
    unauthorized = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized",
                    "code": 401}
    assert rbac.request("GET", "/api/v1/namespaces", token="nope") == (401, unauthorized)
    tok = token(rbac, ns)
    other_audience = token(rbac, ns, "bot", "--audience", "vault")
    assert rbac.request("GET", "/api", token=tok)[0] == 200
    assert rbac.request("GET", "/api", token=other_audience)[0] == 401
    assert rbac.request("GET", "/api", token=tok[:-4] + "AAAA")[0] == 401
    # A deleted ServiceAccount's tokens die with it, even if one of that name is made again.
    rbac.kubectl("delete", "serviceaccount", "bot", "-n", ns)
    code, out = as_sa(rbac, tok, "get", "configmaps", "-n", ns)
    assert code != 0 and "Unauthorized" in out
    apply(rbac, f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: bot, namespace: {ns}}}\n")
    assert rbac.request("GET", "/api", token=tok)[0] == 401
    assert rbac.request("GET", "/api", token=token(rbac, ns))[0] == 200


def test_token_requests_are_validated(rbac: Served, ns: str) -> None:
    short = rbac.kubectl("create", "token", "bot", "-n", ns, "--duration", "1m", check=False)
    assert short.returncode != 0
    assert ('TokenRequest.authentication.k8s.io "bot" is invalid: spec.expirationSeconds: '
            "Invalid value: 60: may not specify a duration less than 10 minutes") in short.stderr
    missing = rbac.kubectl("create", "token", "ghost", "-n", ns, check=False)
    assert 'serviceaccounts "ghost" not found' in missing.stderr
    code, body = rbac.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/bot/token",
        json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"expirationSeconds": 10 ** 7}}).encode(),
        {"Content-Type": "application/json"})
    assert code == 201 and isinstance(body, dict)
    assert body["spec"]["expirationSeconds"] == 48 * 3600  # cut to the maximum
    assert body["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert body["status"]["token"] and body["status"]["expirationTimestamp"].endswith("Z")


def test_denied_requests_get_the_api_servers_403_messages(rbac: Served, ns: str) -> None:
    tok = token(rbac, ns)
    user = f"system:serviceaccount:{ns}:bot"
    cases = [
        (("get", "configmaps", "-n", ns),
         f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API '
         f'group "" in the namespace "{ns}"'),
        (("get", "configmap", "x", "-n", ns),
         f'configmaps "x" is forbidden: User "{user}" cannot get resource "configmaps" in API '
         f'group "" in the namespace "{ns}"'),
        (("get", "deployments.apps", "web", "-n", ns),
         f'deployments.apps "web" is forbidden: User "{user}" cannot get resource '
         f'"deployments" in API group "apps" in the namespace "{ns}"'),
        (("get", "configmaps", "-A"),
         f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API '
         f'group "" at the cluster scope'),
        (("get", "nodes"),
         f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at '
         f"the cluster scope"),
        (("get", "--raw", "/metrics"),
         f'forbidden: User "{user}" cannot get path "/metrics"'),
        (("delete", "configmaps", "--all", "-n", ns),
         f'configmaps is forbidden: User "{user}" cannot list resource "configmaps"'),
    ]
    for args, message in cases:
        code, out = as_sa(rbac, tok, *args)
        assert code != 0 and message in out, (args, out)
    code, body = rbac.request("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true",
                              token=tok)
    assert code == 403 and isinstance(body, dict)
    assert body["reason"] == "Forbidden" and body["details"] == {"kind": "configmaps"}
    assert 'cannot watch resource "configmaps"' in body["message"]
    code, body = rbac.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps", token=tok)
    assert code == 403 and 'cannot deletecollection resource "configmaps"' in str(body)
    code, body = rbac.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/w/status",
                              b"{}", {"Content-Type": "application/merge-patch+json"},
                              token=tok)
    assert code == 403 and isinstance(body, dict)
    assert body["message"] == (
        f'deployments.apps "w" is forbidden: User "{user}" cannot patch resource '
        f'"deployments/status" in API group "apps" in the namespace "{ns}"')
    assert body["details"] == {"name": "w", "group": "apps", "kind": "deployments"}


def test_roles_and_bindings_grant_what_they_say(rbac: Served, ns: str) -> None:
    tok = token(rbac, ns)
    rules = (f"{READ_CM}\n"
             '- {apiGroups: [""], resources: [secrets], verbs: [get], resourceNames: [one]}\n'
             "- {apiGroups: [apps], resources: [deployments/status], verbs: [update]}")
    apply(rbac, role(ns, "reader", rules, "[{kind: ServiceAccount, name: bot}]"))
    rbac.kubectl("create", "configmap", "c", "-n", ns)
    code, out = as_sa(rbac, tok, "get", "configmaps", "-n", ns)
    assert code == 0 and "c " in out
    assert as_sa(rbac, tok, "get", "configmap", "c", "-n", ns, "-o", "name")[1] == \
        "configmap/c"
    code, out = as_sa(rbac, tok, "delete", "configmap", "c", "-n", ns)
    assert code != 0 and 'cannot delete resource "configmaps"' in out

    def can(*args: str) -> str:
        return as_sa(rbac, tok, "auth", "can-i", *args, "-n", ns)[1]

    assert can("list", "configmaps") == "yes"
    assert can("watch", "configmaps") == "no"
    assert can("get", "secrets/one") == "yes"
    assert can("get", "secrets/two") == "no"
    assert can("list", "secrets") == "no"
    assert can("update", "deployments.apps", "--subresource", "status") == "yes"
    assert can("update", "deployments.apps") == "no"
    assert as_sa(rbac, tok, "auth", "can-i", "list", "configmaps", "-n", "default")[1] == "no"
    # The same as seen by the admin through impersonation.
    sa = f"system:serviceaccount:{ns}:bot"
    assert rbac.kubectl("auth", "can-i", "list", "configmaps", "-n", ns,
                        f"--as={sa}").stdout.strip() == "yes"
    assert rbac.kubectl("auth", "can-i", "create", "configmaps", "-n", ns, f"--as={sa}",
                        check=False).returncode == 1
    listed = as_sa(rbac, tok, "auth", "can-i", "--list", "-n", ns)[1]
    assert "configmaps" in listed and "[get list]" in listed
    assert "selfsubjectaccessreviews.authorization.k8s.io" in listed


def test_a_binding_to_a_missing_role_is_the_403s_reason(rbac: Served, ns: str) -> None:
    tok = token(rbac, ns)
    apply(rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                f"metadata: {{name: dangling, namespace: {ns}}}\n"
                "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, "
                "name: not-there}\nsubjects: [{kind: ServiceAccount, name: bot}]\n")
    code, out = as_sa(rbac, tok, "get", "secrets", "-n", ns)
    assert code != 0 and out.endswith(
        f'in the namespace "{ns}": RBAC: clusterrole.rbac.authorization.k8s.io "not-there" '
        "not found")
    assert as_sa(rbac, tok, "auth", "can-i", "get", "secrets", "-n", ns)[1] == (
        'no - RBAC: clusterrole.rbac.authorization.k8s.io "not-there" not found')


def test_default_cluster_roles_and_aggregation(rbac: Served, ns: str) -> None:
    apply(rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                f"metadata:\n  name: workloads-view-{ns}\n  labels:\n"
                "    rbac.authorization.k8s.io/aggregate-to-view: 'true'\n"
                "rules:\n- {apiGroups: [carto.run], resources: [workloads], "
                "verbs: [get, list, watch]}\n---\n"
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                f"metadata: {{name: devs, namespace: {ns}}}\n"
                "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n"
                "subjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]\n")

    def can(*args: str, namespace: str = ns) -> str:
        done = rbac.kubectl("auth", "can-i", *args, "-n", namespace, "--as=alice",
                            "--as-group=devs", check=False)
        return done.stdout.strip()

    assert can("create", "deployments.apps") == "yes"
    assert can("delete", "secrets") == "yes"
    assert can("list", "workloads.carto.run") == "yes"  # view -> edit, through aggregation
    assert can("create", "roles.rbac.authorization.k8s.io") == "no"  # admin only
    assert can("create", "deployments.apps", namespace="default") == "no"
    assert can("list", "nodes") == "no"


def test_impersonation_needs_the_impersonate_verb(rbac: Served, ns: str) -> None:
    tok = token(rbac, ns)
    user = f"system:serviceaccount:{ns}:bot"
    code, out = as_sa(rbac, tok, "get", "configmaps", "-n", ns, "--as=bob")
    assert code != 0 and (f'users "bob" is forbidden: User "{user}" cannot impersonate '
                          'resource "users" in API group "" at the cluster scope') in out
    code, out = as_sa(rbac, tok, "get", "pods", "-n", ns, f"--as=system:serviceaccount:{ns}:other")
    assert code != 0 and (f'serviceaccounts "other" is forbidden: User "{user}" cannot '
                          f'impersonate resource "serviceaccounts" in API group "" in the '
                          f'namespace "{ns}"') in out
    apply(rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                f"metadata: {{name: impersonate-bob-{ns}}}\n"
                "rules:\n- {apiGroups: [''], resources: [users], verbs: [impersonate], "
                "resourceNames: [bob]}\n---\n"
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                f"metadata: {{name: impersonate-bob-{ns}}}\n"
                "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, "
                f"name: impersonate-bob-{ns}}}\n"
                f"subjects: [{{kind: ServiceAccount, name: bot, namespace: {ns}}}]\n")
    code, out = as_sa(rbac, tok, "auth", "whoami", "--as=bob", "-o", "json")
    assert code == 0, out
    assert json.loads(out)["status"]["userInfo"] == {"username": "bob",
                                                     "groups": ["system:authenticated"]}
    code, out = as_sa(rbac, tok, "get", "configmaps", "-n", ns, "--as=bob")
    assert code != 0 and 'User "bob" cannot list resource "configmaps"' in out
    code, out = as_sa(rbac, tok, "get", "pods", "--as=bob", "--as-group=system:masters")
    assert code != 0 and ('groups "system:masters" is forbidden: User "' + user +
                          '" cannot impersonate resource "groups"') in out
    # The admin may impersonate anyone: a ServiceAccount gets its fixed groups.
    out = rbac.kubectl("auth", "whoami", f"--as={user}", "-o", "json").stdout
    assert json.loads(out)["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    code, body = rbac.request("GET", "/api", headers={"Impersonate-Group": "x"})
    assert code == 500 and "without impersonating a user" in str(body)


def test_subject_access_and_token_reviews(rbac: Served, ns: str) -> None:
    apply(rbac, role(ns, "reader", READ_CM, "[{kind: ServiceAccount, name: bot}]"))
    review: dict[str, Any] = {"apiVersion": "authorization.k8s.io/v1",
                              "kind": "SubjectAccessReview",
              "spec": {"user": f"system:serviceaccount:{ns}:bot",
                       "resourceAttributes": {"namespace": ns, "verb": "list",
                                              "resource": "configmaps"}}}
    headers = {"Content-Type": "application/json"}
    path = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    code, body = rbac.request("POST", path, json.dumps(review).encode(), headers)
    assert code == 201 and isinstance(body, dict)
    assert body["status"] == {"allowed": True, "reason": (
        f'RBAC: allowed by RoleBinding "reader/{ns}" of Role "reader" to ServiceAccount '
        f'"bot/{ns}"')}
    review["spec"]["resourceAttributes"]["verb"] = "delete"
    code, body = rbac.request("POST", path, json.dumps(review).encode(), headers)
    assert code == 201 and isinstance(body, dict) and body["status"] == {"allowed": False}
    local = {**review, "kind": "LocalSubjectAccessReview"}
    code, body = rbac.request(
        "POST", f"/apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews",
        json.dumps(local).encode(), headers)
    assert code == 201 and isinstance(body, dict) and body["status"]["allowed"] is False
    tok = token(rbac, ns)
    code, body = rbac.request("POST", path, json.dumps(review).encode(), headers, token=tok)
    assert code == 403 and isinstance(body, dict) and body["message"] == (
        f'subjectaccessreviews.authorization.k8s.io is forbidden: User '
        f'"system:serviceaccount:{ns}:bot" cannot create resource "subjectaccessreviews" in '
        'API group "authorization.k8s.io" at the cluster scope')
    code, body = rbac.request(
        "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
        json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": {"token": tok}}).encode(), headers)
    assert code == 201 and isinstance(body, dict)
    assert body["status"]["authenticated"] is True
    assert body["status"]["user"]["username"] == f"system:serviceaccount:{ns}:bot"
    code, body = rbac.request(
        "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
        json.dumps({"spec": {"token": "garbage"}}).encode(), headers)
    assert code == 201 and isinstance(body, dict) and "authenticated" not in body["status"]


def test_without_rbac_every_valid_token_may_do_everything(tmp_path: Path) -> None:
    served = start_server(tmp_path, "--controllers", "ecosystem")
    try:
        apply(served, "apiVersion: v1\nkind: ServiceAccount\n"
                      "metadata: {name: bot, namespace: default}\n")
        tok = token(served, "default")
        assert as_sa(served, tok, "auth", "can-i", "*", "*")[1] == "yes"
        assert as_sa(served, tok, "create", "configmap", "anything")[0] == 0
        assert as_sa(served, tok, "get", "nodes")[0] == 0
        assert as_sa(served, tok, "auth", "can-i", "delete", "nodes", "-A",
                     "--as=bob")[1] == "yes"
        assert served.kubectl("get", "clusterroles", "-o", "name").stdout.strip() == ""
        code, _body = served.request("GET", "/api/v1/namespaces", token="nope")
        assert code == 401
    finally:
        assert served.stop() == 0


def test_serve_help_documents_the_flag() -> None:
    from click.testing import CliRunner

    from reconciler.cli import main
    out = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--rbac" in out and "kubectl create token" in out and "system:masters" in out


def test_roles_and_bindings_cannot_grant_more_than_the_writer_holds(
        rbac: Served, ns: str) -> None:
    apply(rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                f"metadata: {{name: alice-admin, namespace: {ns}}}\n"
                "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, "
                "name: admin}\nsubjects: [{kind: User, name: alice}]\n")
    ok = (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
          f"metadata: {{name: ok, namespace: {ns}}}\n"
          "rules:\n- {apiGroups: [''], resources: [configmaps], verbs: [get, list]}\n")
    apply(rbac, ok, "--as=alice")
    too_much = (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                f"metadata: {{name: big, namespace: {ns}}}\n"
                "rules:\n- {apiGroups: [''], resources: [nodes, configmaps], verbs: [get, list]}\n"
                "- {apiGroups: [carto.run], resources: [workloads], verbs: ['*']}\n")
    done = rbac.kubectl("apply", "-f", "-", "--as=alice", stdin=too_much, check=False)
    assert done.returncode != 0
    assert ('roles.rbac.authorization.k8s.io "big" is forbidden: user "alice" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
            'currently held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get" "list"]}\n'
            '{APIGroups:["carto.run"], Resources:["workloads"], Verbs:["*"]}') in done.stderr
    done = rbac.kubectl("patch", "role", "ok", "-n", ns, "--as=alice", "--type=json", "-p",
                        '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],'
                        '"resources":["nodes"],"verbs":["get"]}}]', check=False)
    assert done.returncode != 0 and '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}' \
        in done.stderr
    binding = (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
               f"metadata: {{name: up, namespace: {ns}}}\n"
               "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, "
               "name: cluster-admin}\nsubjects: [{kind: User, name: alice}]\n")
    done = rbac.kubectl("apply", "--server-side", "-f", "-", "--as=alice", stdin=binding,
                        check=False)
    assert done.returncode != 0 and (
        'rolebindings.rbac.authorization.k8s.io "up" is forbidden: user "alice"') in done.stderr
    # Binding a role one holds is fine; the admin (system:masters) may grant anything.
    apply(rbac, binding.replace("cluster-admin", "view").replace("name: up", "name: v"),
          "--as=alice")
    apply(rbac, too_much)


def test_a_401_does_not_leave_the_unread_body_on_the_connection(rbac: Served) -> None:
    import base64
    import http.client
    import ssl
    from urllib.parse import urlsplit

    ca = base64.b64decode(rbac.config["clusters"][0]["cluster"][
        "certificate-authority-data"]).decode()
    url = urlsplit(rbac.server)
    assert url.hostname is not None
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=10,
                                       context=ssl.create_default_context(cadata=ca))
    try:
        body = b"k8s\x00" + b"x" * 100
        conn.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body,
                     {"Authorization": "Bearer expired", "Content-Type": "application/json"})
        first = conn.getresponse()
        assert first.status == 401 and json.loads(first.read())["reason"] == "Unauthorized"
        conn.request("GET", "/api", headers={"Authorization": f"Bearer {rbac.token}"})
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read())["kind"] == "APIVersions"
    finally:
        conn.close()


def test_a_token_bound_to_a_secret_dies_with_it(rbac: Served, ns: str) -> None:
    apply(rbac, f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: {ns}}}\n"
                "stringData: {a: b}\n")
    tok = token(rbac, ns, "bot", "--bound-object-kind", "Secret", "--bound-object-name", "s")
    code, out = as_sa(rbac, tok, "auth", "whoami", "-o", "json")
    extra = json.loads(out)["status"]["userInfo"]["extra"]
    assert code == 0 and extra["authentication.kubernetes.io/secret-name"] == ["s"]
    rbac.kubectl("delete", "secret", "s", "-n", ns)
    assert rbac.request("GET", "/api", token=tok)[0] == 401
    missing = rbac.kubectl("create", "token", "bot", "-n", ns, "--bound-object-kind", "Secret",
                           "--bound-object-name", "s", check=False)
    assert 'secrets "s" not found' in missing.stderr
