"""Authorization as kube-apiserver's RBAC authorizer decides it, from the Roles, ClusterRoles,
RoleBindings and ClusterRoleBindings stored in the cluster.

- `request_attributes` derives what is asked exactly as the API server's RequestInfoFactory
  does: `/api` and `/apis/GROUP[/VERSION]` are non-resource paths (verb = the HTTP method in
  lower case); a resource request's verb comes from the method, `get` without a name being
  `list` (or `watch` with `?watch=true`, or under `/watch/`), `delete` without a name
  `deletecollection`; a `metadata.name=` field selector names the object of a list or watch;
  `/api/v1/namespaces/NS` is the Namespace NS *in* namespace NS.
- `Authorizer.authorize`: `system:masters` is allowed everything; otherwise the rules of every
  ClusterRoleBinding, and (for a namespaced request) every RoleBinding in the namespace, whose
  subjects include the user, one of its groups or its ServiceAccount. Rules match as kube's
  (`*`, `deployments/status`, `*/scale`, resourceNames, nonResourceURLs with a trailing `*`).
  A ClusterRole with an aggregationRule has the rules of the ClusterRoles its selectors pick
  (what kube's aggregation controller writes into it), computed when asked.
- `forbidden` words the 403 as the API server does; a binding whose role is missing adds
  `RBAC: clusterrole.rbac.authorization.k8s.io "x" not found` to it, as kube does.
- `bootstrap_policy`: the default ClusterRoles (cluster-admin, admin, edit, view, aggregated as
  in kube, plus system:discovery, system:basic-user, system:public-info-viewer) and their
  bindings, created at start when missing.

The index of roles and bindings is rebuilt only when one of the four kinds changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from reconciler.model.selectors import Selector, matches
from simulator.apiserver.authn import MASTERS, UserInfo
from simulator.apiserver.errors import ApiError, qualified

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_API = f"{RBAC_GROUP}/v1"
KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
NAMESPACE_SUBRESOURCES = ("status", "finalize")
READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
Rule = Mapping[str, Any]


@dataclass(frozen=True)
class Attributes:
    """One request's authorization attributes (kube's authorizer.Attributes)."""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def request_attributes(method: str, target: str, user: UserInfo) -> Attributes:
    parts = urlsplit(target)
    path = parts.path or "/"
    segments = [unquote(s) for s in path.split("/") if s]
    plain = Attributes(user, method.lower(), False, path)
    if len(segments) < 3 or segments[0] not in ("api", "apis"):
        return plain
    rest = segments[1:]
    group = ""
    if segments[0] == "apis":
        if len(rest) < 3:
            return plain
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    if rest[0] in ("watch", "proxy"):
        if len(rest) < 2:
            return Attributes(user, method.lower(), True, path, group, version)
        verb, rest = rest[0], rest[1:]
        by_method = False
    else:
        verb = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}.get(method.upper(), "")
        by_method = True
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 and verb != "proxy" else ""
    if by_method and not name and verb == "get":
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        verb = "watch" if query.get("watch") in ("true", "1", "True") else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if by_method and not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path, group, version, resource, subresource, namespace,
                      name)


def _exact_name(selector: str) -> str:
    for term in selector.split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and key.strip() == "metadata.name" and not key.endswith("!"):
            value = value.strip()
            if value and value not in (".", "..") and "/" not in value and "%" not in value:
                return value
    return ""


# --- rules ----------------------------------------------------------------------------------

def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    verbs = _strings(rule.get("verbs"))
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(_url_matches(u, attrs.path) for u in _strings(rule.get("nonResourceURLs")))
    groups = _strings(rule.get("apiGroups"))
    if "*" not in groups and attrs.group not in groups:
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not any(_resource_matches(r, combined, attrs.subresource)
               for r in _strings(rule.get("resources"))):
        return False
    names = _strings(rule.get("resourceNames"))
    return not names or attrs.name in names


def _resource_matches(rule_resource: str, combined: str, subresource: str) -> bool:
    if rule_resource in ("*", combined):
        return True
    return bool(subresource) and rule_resource == f"*/{subresource}"


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url in ("*", path):
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


# --- the index of roles and bindings ---------------------------------------------------------

@dataclass
class _Binding:
    kind: str
    name: str
    namespace: str
    subjects: list[Mapping[str, Any]]
    role_kind: str
    role_name: str

    def describe(self, subject: Mapping[str, Any]) -> str:
        name = f"{self.name}/{self.namespace}" if self.kind == "RoleBinding" else self.name
        return f"{self.kind} {_q(name)} of {self.role_kind} {_q(self.role_name)} to " \
               f"{_describe_subject(subject, self.namespace)}"


@dataclass
class _Index:
    cluster_roles: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    cluster_bindings: list[_Binding] = field(default_factory=list)
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    aggregated: dict[str, list[Rule]] = field(default_factory=dict)

    def cluster_role_rules(self, name: str, seen: frozenset[str] = frozenset()) -> list[Rule]:
        if name in self.aggregated:
            return self.aggregated[name]
        role = self.cluster_roles[name]
        aggregation = role.get("aggregationRule")
        if not isinstance(aggregation, Mapping):
            rules = _rules(role)
        else:
            rules = []
            for selector in aggregation.get("clusterRoleSelectors") or []:
                if not isinstance(selector, Mapping):
                    continue
                chosen = Selector.of_option(selector)
                if chosen.size == 0:
                    continue
                for other_name, other in sorted(self.cluster_roles.items()):
                    if other_name == name or other_name in seen or not matches(chosen, other):
                        continue
                    for rule in self.cluster_role_rules(other_name, seen | {name}):
                        if rule not in rules:
                            rules.append(rule)
        self.aggregated[name] = rules
        return rules


def _rules(role: Mapping[str, Any]) -> list[Rule]:
    return [r for r in role.get("rules") or [] if isinstance(r, Mapping)]


def _binding(obj: Mapping[str, Any]) -> _Binding:
    meta = obj.get("metadata") or {}
    ref = obj.get("roleRef") or {}
    return _Binding(str(obj.get("kind")), str(meta.get("name")),
                    str(meta.get("namespace") or ""),
                    [s for s in obj.get("subjects") or [] if isinstance(s, Mapping)],
                    str(ref.get("kind")), str(ref.get("name")))


def _applies(subject: Mapping[str, Any], user: UserInfo, namespace: str) -> bool:
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = str(subject.get("namespace") or namespace)
        return bool(sa_namespace) and user.name == f"system:serviceaccount:{sa_namespace}:{name}"
    return False


def _describe_subject(subject: Mapping[str, Any], namespace: str) -> str:
    kind, name = str(subject.get("kind")), str(subject.get("name"))
    if kind == "ServiceAccount":
        return f"{kind} {_q(name + '/' + str(subject.get('namespace') or namespace))}"
    return f"{kind} {_q(name)}"


Visitor = Callable[[str, Rule | None, str | None], bool]
"""(source description, rule or None, error or None) -> keep going?"""


class Authorizer:
    """RBAC over the objects `read_all` returns (called under the store's lock by the caller
    of `authorize`, or through `locked`)."""

    def __init__(self, list_kind: Callable[[str], list[Mapping[str, Any]]],
                 stamp: Callable[[], tuple[int, ...]],
                 locked: Callable[[Callable[[], Any]], Any]) -> None:
        self._list_kind = list_kind
        self._stamp = stamp
        self._locked = locked
        self._index: _Index | None = None
        self._index_stamp: tuple[int, ...] | None = None
        self._mutex = threading.Lock()

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as kube's authorizer chain answers: system:masters first, RBAC."""
        if MASTERS in attrs.user.groups:
            return True, ""
        allowed, reason, errors = False, "", []

        def visit(source: str, rule: Rule | None, error: str | None) -> bool:
            nonlocal allowed, reason
            if rule is not None and rule_allows(attrs, rule):
                allowed, reason = True, f"RBAC: allowed by {source}"
                return False
            if error is not None:
                errors.append(error)
            return True

        self.visit_rules(attrs.user, attrs.namespace, visit)
        if allowed:
            return True, reason
        return False, f"RBAC: {_aggregate(errors)}" if errors else ""

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        rules: list[Rule] = []
        errors: list[str] = []

        def visit(source: str, rule: Rule | None, error: str | None) -> bool:
            if rule is not None:
                rules.append(rule)
            if error is not None:
                errors.append(error)
            return True

        self.visit_rules(user, namespace, visit)
        return rules, errors

    def role_rules(self, kind: str, namespace: str, name: str) -> list[Rule] | None:
        """The rules of a Role (in `namespace`) or ClusterRole (aggregated); None if missing."""
        index = self._current()
        if kind == "ClusterRole":
            if name not in index.cluster_roles:
                return None
            return index.cluster_role_rules(name)
        if kind == "Role":
            return index.roles.get((namespace, name))
        return None

    def visit_rules(self, user: UserInfo, namespace: str, visit: Visitor) -> None:
        index = self._current()
        for binding in index.cluster_bindings:
            subject = next((s for s in binding.subjects if _applies(s, user, "")), None)
            if subject is None:
                continue
            if not self._visit_binding(index, binding, subject, visit):
                return
        if not namespace:
            return
        for binding in index.bindings.get(namespace, ()):
            subject = next((s for s in binding.subjects if _applies(s, user, namespace)), None)
            if subject is None:
                continue
            if not self._visit_binding(index, binding, subject, visit):
                return

    def _visit_binding(self, index: _Index, binding: _Binding, subject: Mapping[str, Any],
                       visit: Visitor) -> bool:
        if binding.role_kind == "ClusterRole":
            if binding.role_name not in index.cluster_roles:
                return visit("", None, f"clusterrole.{RBAC_GROUP} {_q(binding.role_name)} "
                                       "not found")
            rules = index.cluster_role_rules(binding.role_name)
        elif binding.role_kind == "Role" and binding.kind == "RoleBinding":
            found = index.roles.get((binding.namespace, binding.role_name))
            if found is None:
                return visit("", None, f"role.{RBAC_GROUP} {_q(binding.role_name)} not found")
            rules = found
        else:
            return True
        source = binding.describe(subject)
        return all(visit(source, rule, None) for rule in rules)

    def _current(self) -> _Index:
        def build() -> _Index:
            stamp = self._stamp()
            with self._mutex:
                if self._index is not None and stamp == self._index_stamp:
                    return self._index
                index = _Index()
                for role in self._list_kind("ClusterRole"):
                    index.cluster_roles[str((role.get("metadata") or {}).get("name"))] = role
                for role in self._list_kind("Role"):
                    meta = role.get("metadata") or {}
                    index.roles[(str(meta.get("namespace")), str(meta.get("name")))] = \
                        _rules(role)
                index.cluster_bindings = sorted(
                    (_binding(b) for b in self._list_kind("ClusterRoleBinding")),
                    key=lambda b: b.name)
                for b in sorted((_binding(b) for b in self._list_kind("RoleBinding")),
                                key=lambda b: b.name):
                    index.bindings.setdefault(b.namespace, []).append(b)
                self._index, self._index_stamp = index, stamp
                return index
        result: _Index = self._locked(build)
        return result


def cluster_authorizer(store: Any) -> Authorizer:
    """An Authorizer over a `Store`'s cluster (it takes the store's lock to read)."""
    cluster = store.cluster

    def list_kind(kind: str) -> list[Mapping[str, Any]]:
        return list(cluster.list(RBAC_API, kind))

    def stamp() -> tuple[int, ...]:
        return tuple(cluster.last_kind_change(RBAC_GROUP, k, None) for k in KINDS)

    return Authorizer(list_kind, stamp, store.locked)


def _aggregate(errors: Sequence[str]) -> str:
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the 403 ----------------------------------------------------------------------------------

def forbidden_message(attrs: Attributes) -> str:
    user = attrs.user.name
    if not attrs.resource_request:
        return f"User {_q(user)} cannot {attrs.verb} path {_q(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.namespace:
        return (f"User {_q(user)} cannot {attrs.verb} resource {_q(resource)} in API group "
                f"{_q(attrs.group)} in the namespace {_q(attrs.namespace)}")
    return (f"User {_q(user)} cannot {attrs.verb} resource {_q(resource)} in API group "
            f"{_q(attrs.group)} at the cluster scope")


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """kube's responsewriters.Forbidden: `<resource>[.<group>] ["name"] is forbidden: ...`."""
    message = forbidden_message(attrs)
    if reason:
        message = f"{message}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return ApiError(403, f"forbidden: {message}", "Forbidden")
    target = qualified(attrs.resource, attrs.group)
    head = f"{target} {_q(attrs.name)}" if attrs.name else target
    return ApiError(403, f"{head} is forbidden: {message}", "Forbidden", name=attrs.name,
                    group=attrs.group, kind=attrs.resource)


# --- the default policy ----------------------------------------------------------------------

AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _rule(groups: Iterable[str], resources: Iterable[str], verbs: Iterable[str]) -> Rule:
    return {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}


def _cluster_role(name: str, rules: list[Rule], labels: Mapping[str, str] | None = None,
                  aggregate_from: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": RBAC_API, "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})},
                     "annotations": dict(AUTOUPDATE)},
        "rules": rules}
    if aggregate_from is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{AGGREGATE}{aggregate_from}": "true"}}]}
    return obj


def _cluster_binding(name: str, role: str, groups: Iterable[str]) -> dict[str, Any]:
    return {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS),
                         "annotations": dict(AUTOUPDATE)},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups]}


_VIEW_CORE = ("configmaps", "endpoints", "persistentvolumeclaims",
              "persistentvolumeclaims/status", "pods", "replicationcontrollers",
              "replicationcontrollers/scale", "serviceaccounts", "services", "services/status",
              "bindings", "events", "limitranges", "namespaces/status", "pods/log",
              "pods/status", "replicationcontrollers/status", "resourcequotas",
              "resourcequotas/status")
_APPS = ("controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
         "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
         "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status")
_EDIT_CORE = ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
              "configmaps", "endpoints", "persistentvolumeclaims", "replicationcontrollers",
              "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
              "services/proxy")


def bootstrap_policy() -> list[dict[str, Any]]:
    """kube-apiserver's default ClusterRoles and ClusterRoleBindings (a faithful subset)."""
    view_rules = [
        _rule([""], _VIEW_CORE, READ),
        _rule([""], ["namespaces"], READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["apps"], _APPS, READ),
        _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
              READ),
        _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"],
              READ),
    ]
    edit_rules = [
        _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                     "services/proxy"], READ),
        _rule([""], ["serviceaccounts"], ["impersonate"]),
        _rule([""], _EDIT_CORE, WRITE),
        _rule(["apps"], [r for r in _APPS if not r.endswith("/status")
                         and r != "controllerrevisions"], WRITE),
        _rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
        _rule(["batch"], ["cronjobs", "jobs"], WRITE),
        _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
        _rule(["policy"], ["poddisruptionbudgets"], WRITE),
        _rule(["coordination.k8s.io"], ["leases"], [*READ, *WRITE]),
        _rule([""], ["serviceaccounts/token"], ["create"]),
    ]
    admin_rules = [
        _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
        _rule([RBAC_GROUP], ["rolebindings", "roles"], [*READ, *WRITE]),
    ]
    to = AGGREGATE
    return [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]),
                                        {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _cluster_role("admin", [], {}, "admin"),
        _cluster_role("edit", [], {f"{to}admin": "true"}, "edit"),
        _cluster_role("view", [], {f"{to}edit": "true"}, "view"),
        _cluster_role("system:aggregate-to-admin", admin_rules, {f"{to}admin": "true"}),
        _cluster_role("system:aggregate-to-edit", edit_rules, {f"{to}edit": "true"}),
        _cluster_role("system:aggregate-to-view", view_rules, {f"{to}view": "true"}),
        _cluster_role("system:discovery", [{"nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
            "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        _cluster_role("system:public-info-viewer", [{"nonResourceURLs": [
            "/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        _cluster_role("system:basic-user", [
            _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews",
                                             "selfsubjectrulesreviews"], ["create"])]),
        _cluster_binding("cluster-admin", "cluster-admin", [MASTERS]),
        _cluster_binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _cluster_binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _cluster_binding("system:public-info-viewer", "system:public-info-viewer",
                         ["system:authenticated", "system:unauthenticated"]),
    ]


def bootstrap(store: Any, manager: str = "kube-apiserver") -> int:
    """Create the default policy's objects that are missing (a user's edits are kept, as
    kube keeps them for objects whose autoupdate annotation is false). Returns how many."""
    cluster = store.cluster
    made = 0

    def work() -> None:
        nonlocal made
        policy = bootstrap_policy()
        roles = {str(o["metadata"]["name"]): o for o in policy if o["kind"] == "ClusterRole"}
        aggregated = _Index(cluster_roles=dict(roles))
        for obj in policy:
            name = str(obj["metadata"]["name"])
            if cluster.get(RBAC_API, obj["kind"], "", name) is not None:
                continue
            if obj.get("aggregationRule"):
                # What kube's clusterrole-aggregation controller would write into it.
                obj = {**obj, "rules": aggregated.cluster_role_rules(name)}
            cluster.apply(obj, manager, force=True)
            made += 1
        store.changes.scan()

    store.locked(work)
    return made
