"""RBAC's escalation prevention, as kube-apiserver's rbac storage enforces it: a user may write
a Role or ClusterRole only with rules they already hold (or the `escalate` verb on it), and a
RoleBinding or ClusterRoleBinding only to a role whose rules they hold (or the `bind` verb on
it). `system:masters` is exempt. Only cluster-admins (or `escalate`) may write an
aggregationRule.

The refusal is kube's 403: `roles.rbac.authorization.k8s.io "x" is forbidden: user "bob"
(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently
held:` followed by the missing rules in kube's compact form, one per line.

The object checked is the one the request would store: the body of a create or update; for a
patch, the live object with the patch applied (an apply's `rules`/`roleRef`, when it gives
them, replace the live ones: both are atomic in kube's schema).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.model.errors import LoadError
from reconciler.model.yamlsafe import load_json_bounded, load_yaml
from simulator.apiserver import errors
from simulator.apiserver.authn import MASTERS, UserInfo
from simulator.apiserver.errors import ApiError
from simulator.apiserver.patches import json_patch, merge_patch, strategic_merge_patch
from simulator.apiserver.rbac import RBAC_GROUP, Attributes, Rule

KINDS = {"roles": "Role", "clusterroles": "ClusterRole", "rolebindings": "RoleBinding",
         "clusterrolebindings": "ClusterRoleBinding"}
MAX_BYTES = 3 * 1024 * 1024

Authorize = Callable[[Attributes], tuple[bool, str]]
RulesFor = Callable[[UserInfo, str], tuple[list[Rule], list[str]]]
Live = Callable[[str, str, str], Mapping[str, Any] | None]
"""(kind, namespace, name) -> the stored RBAC object or None."""
RoleRules = Callable[[str, str, str], list[Rule] | None]
"""(role kind, namespace, name) -> the role's rules (aggregated) or None when missing."""


def applies(attrs: Attributes) -> bool:
    return (attrs.resource_request and attrs.group == RBAC_GROUP
            and attrs.resource in KINDS and not attrs.subresource
            and attrs.verb in ("create", "update", "patch")
            and MASTERS not in attrs.user.groups)


def check(attrs: Attributes, content_type: str, body: bytes, authorize: Authorize,
          rules_for: RulesFor, live: Live, role_rules: RoleRules) -> None:
    """Raise kube's 403 if the write would grant what the user does not hold."""
    kind = KINDS[attrs.resource]
    obj = _new_object(attrs, kind, content_type, body, live)
    if obj is None:
        return  # not decodable here: the resource API refuses it with its own error
    name = attrs.name or str((obj.get("metadata") or {}).get("name") or "")
    namespace = attrs.namespace
    if kind in ("Role", "ClusterRole"):
        escalate = Attributes(attrs.user, "escalate", True, "", RBAC_GROUP, attrs.version,
                              attrs.resource, "", namespace, name)
        if authorize(escalate)[0]:
            return
        if kind == "ClusterRole" and obj.get("aggregationRule"):
            raise _forbidden(attrs.resource, name, "must have cluster-admin privileges to use "
                                                   "the aggregationRule")
        wanted = [r for r in obj.get("rules") or [] if isinstance(r, Mapping)]
    else:
        given = obj.get("roleRef")
        ref: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        role_kind, role_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        plural = "clusterroles" if role_kind == "ClusterRole" else "roles"
        bind = Attributes(attrs.user, "bind", True, "", RBAC_GROUP, attrs.version, plural,
                          "", namespace, role_name)
        if authorize(bind)[0]:
            return
        found = role_rules(role_kind, namespace if role_kind == "Role" else "", role_name)
        if found is None:
            singular = "clusterrole" if role_kind == "ClusterRole" else "role"
            raise _forbidden(attrs.resource, name,
                             f'{singular}.{RBAC_GROUP} "{role_name}" not found')
        wanted = found
    held, problems = rules_for(attrs.user, namespace)
    missing = [r for r in _breakdown(wanted) if not any(_covers(o, r) for o in held)]
    if not missing:
        return
    described = sorted({compact_string(r) for r in _compact(missing)})
    groups = " ".join(_go_quote(g) for g in attrs.user.groups)
    message = (f"user {_go_quote(attrs.user.name)} (groups=[{groups}]) is attempting to grant "
               "RBAC permissions not currently held:\n" + "\n".join(described))
    if problems:
        message += f"; resolution errors: [{', '.join(dict.fromkeys(problems))}]"
    raise _forbidden(attrs.resource, name, message)


def _new_object(attrs: Attributes, kind: str, content_type: str, body: bytes,
                live: Live) -> Mapping[str, Any] | None:
    media = content_type.split(";")[0].strip().lower()
    try:
        if media.endswith("yaml"):
            data = load_yaml(body, "request body")
        elif media.endswith("json") or not media:
            data = load_json_bounded(body or b"null", "request body", max_bytes=MAX_BYTES)
        else:
            return None
    except LoadError:
        return None
    if attrs.verb in ("create", "update"):
        return data if isinstance(data, Mapping) else None
    current = live(kind, attrs.namespace, attrs.name)
    if media == "application/apply-patch+yaml":
        if not isinstance(data, Mapping):
            return None
        base = dict(current or {})
        for field in ("rules", "roleRef", "aggregationRule", "metadata"):
            if field in data:
                base[field] = data[field]
        return base
    if current is None:
        return None  # the resource API answers 404
    try:
        if media == "application/merge-patch+json":
            patched = merge_patch(current, data)
        elif media == "application/json-patch+json":
            patched = json_patch(current, data)
        elif media == "application/strategic-merge-patch+json":
            patched = strategic_merge_patch(current, data)
        else:
            return None
    except ApiError:
        return None
    return patched if isinstance(patched, Mapping) else None


# --- kube's Covers ----------------------------------------------------------------------------

def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _breakdown(rules: Sequence[Rule]) -> list[dict[str, list[str]]]:
    out: list[dict[str, list[str]]] = []
    for rule in rules:
        verbs = _strings(rule.get("verbs"))
        names = _strings(rule.get("resourceNames"))
        for group in _strings(rule.get("apiGroups")):
            for resource in _strings(rule.get("resources")):
                for verb in verbs:
                    base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                    if names:
                        out.extend({**base, "resourceNames": [n]} for n in names)
                    else:
                        out.append(base)
        for url in _strings(rule.get("nonResourceURLs")):
            out.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return out


def _covers(owner: Rule, sub: Mapping[str, list[str]]) -> bool:
    verbs, groups = _strings(owner.get("verbs")), _strings(owner.get("apiGroups"))
    resources, names = _strings(owner.get("resources")), _strings(owner.get("resourceNames"))
    urls = _strings(owner.get("nonResourceURLs"))
    if not ("*" in verbs or all(v in verbs for v in sub.get("verbs", []))):
        return False
    if not ("*" in groups or all(g in groups for g in sub.get("apiGroups", []))):
        return False
    if not _resources_cover(resources, sub.get("resources", [])):
        return False
    if not all(any(_url_covers(o, u) for o in urls) for u in sub.get("nonResourceURLs", [])):
        return False
    wanted = sub.get("resourceNames", [])
    return not names if not wanted else (not names or all(n in names for n in wanted))


def _resources_cover(owned: list[str], wanted: list[str]) -> bool:
    if "*" in owned:
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path or f"*/{path.split('/', 1)[1]}" not in owned:
            return False
    return True


def _url_covers(owner: str, requested: str) -> bool:
    return owner in ("*", requested) or (owner.endswith("*") and
                                         requested.startswith(owner[:-1]))


def _compact(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """kube's CompactRules: simple rules on one group and resource merge their verbs."""
    simple: dict[tuple[str, str], dict[str, list[str]]] = {}
    out: list[dict[str, list[str]]] = []
    for rule in rules:
        if (len(rule.get("apiGroups", [])) == 1 and len(rule.get("resources", [])) == 1
                and not rule.get("resourceNames") and not rule.get("nonResourceURLs")):
            key = (rule["apiGroups"][0], rule["resources"][0])
            if key in simple:
                simple[key]["verbs"] += [v for v in rule["verbs"]
                                         if v not in simple[key]["verbs"]]
                continue
            simple[key] = {**rule, "verbs": list(rule["verbs"])}
            out.append(simple[key])
        else:
            out.append(rule)
    return out


def compact_string(rule: Mapping[str, list[str]]) -> str:
    """rbacv1helpers.CompactString: `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`."""
    parts = []
    for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"),
                         ("nonResourceURLs", "NonResourceURLs"),
                         ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        if rule.get(field):
            parts.append(f"{label}:[{' '.join(_go_quote(v) for v in rule[field])}]")
    return "{" + ", ".join(parts) + "}"


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _forbidden(resource: str, name: str, message: str) -> ApiError:
    qualified = errors.qualified(resource, RBAC_GROUP)
    head = f"{qualified} {_go_quote(name)}" if name else qualified
    return ApiError(403, f"{head} is forbidden: {message}", "Forbidden", name=name,
                    group=RBAC_GROUP, kind=resource)
