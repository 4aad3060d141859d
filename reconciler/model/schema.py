"""The one source of truth for the shapes of the kinds the product serves.

Each kind's OpenAPI v3 schema is written once here. It is used to validate input files (as an API
server would, strict about unknown fields) and to generate the CustomResourceDefinitions shipped in
`config/crds/` and installed into the simulated cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

# --- builders --------------------------------------------------------------------------------


def string(description: str = "", enum: list[str] | None = None) -> Schema:
    s: Schema = {"type": "string"}
    if description:
        s["description"] = description
    if enum:
        s["enum"] = enum
    return s


def integer(description: str = "") -> Schema:
    s: Schema = {"type": "integer"}
    if description:
        s["description"] = description
    return s


def boolean(description: str = "") -> Schema:
    s: Schema = {"type": "boolean"}
    if description:
        s["description"] = description
    return s


def array(items: Schema, description: str = "") -> Schema:
    s: Schema = {"type": "array", "items": items}
    if description:
        s["description"] = description
    return s


def obj(
    properties: dict[str, Schema] | None = None,
    required: list[str] | None = None,
    description: str = "",
) -> Schema:
    s: Schema = {"type": "object", "properties": properties or {}}
    if required:
        s["required"] = required
    if description:
        s["description"] = description
    return s


def string_map(description: str = "") -> Schema:
    s: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
    if description:
        s["description"] = description
    return s


def free_form(description: str = "") -> Schema:
    """Any JSON value (an embedded Kubernetes object, a param value)."""
    s: Schema = {"x-kubernetes-preserve-unknown-fields": True}
    if description:
        s["description"] = description
    return s


def free_object(description: str = "") -> Schema:
    s: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if description:
        s["description"] = description
    return s


def int_or_string(description: str = "") -> Schema:
    s: Schema = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"},
                                                               {"type": "string"}]}
    if description:
        s["description"] = description
    return s


# --- shared pieces ---------------------------------------------------------------------------

ENV_VAR = free_object("A container environment variable (name, value or valueFrom).")

LABEL_SELECTOR_REQUIREMENT = obj(
    {
        "key": string("The label key the selector applies to."),
        "operator": string("In, NotIn, Exists or DoesNotExist.",
                           ["In", "NotIn", "Exists", "DoesNotExist"]),
        "values": array(string()),
    },
    required=["key", "operator"],
)

FIELD_SELECTOR_REQUIREMENT = obj(
    {
        "key": string("A JSONPath into the owner, e.g. spec.source.git.url."),
        "operator": string("In, NotIn, Exists or DoesNotExist.",
                           ["In", "NotIn", "Exists", "DoesNotExist"]),
        "values": array(string()),
    },
    required=["key", "operator"],
)

OWNER_PARAM = obj({"name": string(), "value": free_form()}, required=["name", "value"])

BLUEPRINT_PARAM = obj(
    {
        "name": string(),
        "value": free_form("A value the owner cannot override."),
        "default": free_form("A default the owner may override."),
    },
    required=["name"],
)

TEMPLATE_PARAM = obj(
    {"name": string(), "default": free_form(), "description": string()},
    required=["name", "default"],
)

HEALTH_MATCH = obj(
    {
        "matchConditions": array(obj({"type": string(), "status": string()},
                                     required=["type", "status"])),
        "matchFields": array(obj(
            {
                "key": string(),
                "operator": string(enum=["In", "NotIn", "Exists", "DoesNotExist"]),
                "values": array(string()),
                "messagePath": string(),
            },
            required=["key", "operator"],
        )),
    }
)

HEALTH_RULE = obj(
    {
        "alwaysHealthy": free_object(),
        "singleConditionType": string(),
        "multiMatch": obj({"healthy": HEALTH_MATCH, "unhealthy": HEALTH_MATCH},
                          required=["healthy", "unhealthy"]),
    },
    description="How to read the health of the stamped object.",
)

TEMPLATE_COMMON: dict[str, Schema] = {
    "template": free_object("The object to stamp, with $(...)$ interpolation."),
    "ytt": string("A ytt template (not supported by this product; use template or jinja2)."),
    "jinja2": string("A sandboxed Jinja2 template rendering one YAML object."),
    "params": array(TEMPLATE_PARAM),
    "healthRule": HEALTH_RULE,
    "lifecycle": string("mutable (default), immutable or tekton.",
                        ["mutable", "immutable", "tekton"]),
    "retentionPolicy": obj({"maxFailedRuns": integer(), "maxSuccessfulRuns": integer()},
                           required=["maxFailedRuns", "maxSuccessfulRuns"]),
}

RESOURCE_REF_LIST = array(obj({"resource": string(), "name": string()},
                              required=["resource", "name"]))

TEMPLATE_OPTION = obj(
    {
        "name": string(),
        "selector": obj({
            "matchLabels": string_map(),
            "matchExpressions": array(LABEL_SELECTOR_REQUIREMENT),
            "matchFields": array(FIELD_SELECTOR_REQUIREMENT),
        }),
        "passThrough": string(),
    },
    required=["selector"],
)


def blueprint_resource(
    template_kinds: list[str], inputs: list[str], single_inputs: tuple[str, ...] = ()
) -> Schema:
    props: dict[str, Schema] = {
        "name": string("Unique name of this resource in the blueprint."),
        "templateRef": obj(
            {
                "kind": string(enum=template_kinds),
                "name": string(),
                "options": array(TEMPLATE_OPTION),
            },
            required=["kind"],
        ),
        "params": array(BLUEPRINT_PARAM),
    }
    for key in inputs:
        props[key] = RESOURCE_REF_LIST
    for key in single_inputs:
        props[key] = obj({"resource": string(), "name": string()}, required=["resource"])
    return obj(props, required=["name", "templateRef"])


SERVICE_ACCOUNT_REF = obj({"name": string(), "namespace": string()}, required=["name"])

SOURCE = obj(
    {
        "git": obj({
            "url": string(),
            "ref": obj({"branch": string(), "tag": string(), "commit": string()}),
        }),
        "image": string(),
        "subPath": string(),
    }
)

OWNER_STATUS = free_object("Written by the controller.")

# --- kinds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindSchema:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    spec: Schema
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def openapi(self) -> Schema:
        return obj(
            {
                "apiVersion": string(),
                "kind": string(),
                "metadata": {"type": "object"},
                "spec": self.spec,
                "status": OWNER_STATUS,
            },
            required=["spec"],
        )


CARTO = "carto.run"
V1A1 = "v1alpha1"

WORKLOAD = KindSchema(CARTO, V1A1, "Workload", "workloads", True, obj({
    "params": array(OWNER_PARAM),
    "source": SOURCE,
    "build": obj({"env": array(ENV_VAR)}),
    "env": array(ENV_VAR),
    "image": string(),
    "resources": free_object(),
    "serviceAccountName": string(),
    "serviceClaims": array(free_object()),
}), short_names=("wrk",), categories=("all",))

CLUSTER_SUPPLY_CHAIN = KindSchema(CARTO, V1A1, "ClusterSupplyChain", "clustersupplychains", False, obj({
    "selector": string_map(),
    "selectorMatchExpressions": array(LABEL_SELECTOR_REQUIREMENT),
    "selectorMatchFields": array(FIELD_SELECTOR_REQUIREMENT),
    "params": array(BLUEPRINT_PARAM),
    "serviceAccountRef": SERVICE_ACCOUNT_REF,
    "resources": array(blueprint_resource(
        ["ClusterSourceTemplate", "ClusterImageTemplate", "ClusterConfigTemplate",
         "ClusterTemplate"],
        ["sources", "images", "configs"],
    )),
}, required=["resources"]), short_names=("csc",))

CLUSTER_SOURCE_TEMPLATE = KindSchema(CARTO, V1A1, "ClusterSourceTemplate", "clustersourcetemplates", False, obj({
    **TEMPLATE_COMMON,
    "urlPath": string("Path to the source URL in the stamped object."),
    "revisionPath": string("Path to the source revision in the stamped object."),
}, required=["urlPath", "revisionPath"]))

CLUSTER_IMAGE_TEMPLATE = KindSchema(CARTO, V1A1, "ClusterImageTemplate", "clusterimagetemplates", False, obj({
    **TEMPLATE_COMMON,
    "imagePath": string("Path to the image in the stamped object."),
}, required=["imagePath"]))

CLUSTER_CONFIG_TEMPLATE = KindSchema(CARTO, V1A1, "ClusterConfigTemplate", "clusterconfigtemplates", False, obj({
    **TEMPLATE_COMMON,
    "configPath": string("Path to the config in the stamped object."),
}, required=["configPath"]))

CLUSTER_TEMPLATE = KindSchema(CARTO, V1A1, "ClusterTemplate", "clustertemplates", False, obj({
    **TEMPLATE_COMMON,
}))

DELIVERABLE = KindSchema(CARTO, V1A1, "Deliverable", "deliverables", True, obj({
    "params": array(OWNER_PARAM),
    "source": SOURCE,
    "serviceAccountName": string(),
}))

CLUSTER_DELIVERY = KindSchema(CARTO, V1A1, "ClusterDelivery", "clusterdeliveries", False, obj({
    "selector": string_map(),
    "selectorMatchExpressions": array(LABEL_SELECTOR_REQUIREMENT),
    "selectorMatchFields": array(FIELD_SELECTOR_REQUIREMENT),
    "params": array(BLUEPRINT_PARAM),
    "serviceAccountRef": SERVICE_ACCOUNT_REF,
    "resources": array(blueprint_resource(
        ["ClusterSourceTemplate", "ClusterDeploymentTemplate", "ClusterTemplate",
         "ClusterConfigTemplate"],
        ["sources", "configs"],
        single_inputs=("deployment",),
    )),
}, required=["resources"]))

CLUSTER_DEPLOYMENT_TEMPLATE = KindSchema(CARTO, V1A1, "ClusterDeploymentTemplate", "clusterdeploymenttemplates", False, obj({
    **TEMPLATE_COMMON,
    "observedMatches": array(obj({"input": string(), "output": string()},
                                 required=["input", "output"])),
    "observedCompletion": obj({
        "succeeded": obj({"key": string(), "value": string()}, required=["key", "value"]),
        "failed": obj({"key": string(), "value": string()}, required=["key", "value"]),
    }, required=["succeeded"]),
}))

CLUSTER_RUN_TEMPLATE = KindSchema(CARTO, V1A1, "ClusterRunTemplate", "clusterruntemplates", False, obj({
    "template": free_object(),
    "outputs": string_map(),
}, required=["template"]))

RUNNABLE = KindSchema(CARTO, V1A1, "Runnable", "runnables", True, obj({
    "runTemplateRef": obj({"name": string(), "kind": string(), "namespace": string()},
                          required=["name"]),
    "selector": obj({"resource": obj({"apiVersion": string(), "kind": string()},
                                     required=["apiVersion", "kind"]),
                     "matchingLabels": string_map()}, required=["resource", "matchingLabels"]),
    "inputs": free_object(),
    "serviceAccountName": string(),
    "retentionPolicy": obj({"maxFailedRuns": integer(), "maxSuccessfulRuns": integer()}),
}, required=["runTemplateRef"]))

GIT_REPOSITORY = KindSchema("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories", True, obj({
    "url": string("The repository URL: https://, http://, ssh://, git://, file:// or a path."),
    "secretRef": obj({"name": string()}, required=["name"]),
    "interval": string("How often to poll, as a Go duration (1m0s)."),
    "timeout": string("Timeout for remote Git operations (default 60s)."),
    "ref": obj({
        "branch": string(), "tag": string(), "semver": string(), "name": string(),
        "commit": string(),
    }),
    "verify": obj({"mode": string(enum=["HEAD", "Tag", "TagAndHEAD"]),
                   "secretRef": obj({"name": string()}, required=["name"])},
                  required=["secretRef"]),
    "ignore": string(),
    "suspend": boolean(),
    "recurseSubmodules": boolean(),
    "sparseCheckout": array(string()),
    "include": array(obj({
        "repository": obj({"name": string()}, required=["name"]),
        "fromPath": string(), "toPath": string(),
    }, required=["repository"])),
    "proxySecretRef": obj({"name": string()}, required=["name"]),
    "provider": string(),
}, required=["url", "interval"]), short_names=("gitrepo",))

KUSTOMIZATION = KindSchema("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations", True, obj({
    "sourceRef": obj({"apiVersion": string(), "kind": string(enum=["GitRepository", "OCIRepository", "Bucket"]),
                      "name": string(), "namespace": string()}, required=["kind", "name"]),
    "path": string("Folder inside the source artifact (default: its root)."),
    "prune": boolean("Delete objects this Kustomization applied before and no longer renders."),
    "interval": string("How often to reconcile, as a Go duration (5m0s)."),
    "retryInterval": string("How soon to retry after a failure (default: interval)."),
    "timeout": string("How long to wait for health (default: interval)."),
    "wait": boolean("Wait for every applied object to be healthy."),
    "healthChecks": array(obj({"apiVersion": string(), "kind": string(), "name": string(),
                               "namespace": string()}, required=["kind", "name"])),
    "targetNamespace": string("Namespace set on every namespaced object."),
    "dependsOn": array(obj({"name": string(), "namespace": string()}, required=["name"])),
    "suspend": boolean(),
    "force": boolean("Take over fields other field managers own (server-side apply force)."),
    "postBuild": obj({
        "substitute": string_map(),
        "substituteFrom": array(obj({"kind": string(enum=["ConfigMap", "Secret"]), "name": string(),
                                     "optional": boolean()}, required=["kind", "name"])),
    }),
    "serviceAccountName": string(),
    "ignoreDifferences": array(obj({
        "group": string(), "kind": string(), "name": string(), "namespace": string(),
        "jsonPointers": array(string()), "jqPathExpressions": array(string()),
        "managedFieldsManagers": array(string()),
    }), "reconciler extension: fields diff and apply leave alone (Argo CD's ignoreDifferences)."),
    "patches": array(free_object()), "images": array(free_object()),
    "components": array(string()), "commonMetadata": free_object(), "namePrefix": string(),
    "nameSuffix": string(), "decryption": free_object(), "kubeConfig": free_object(),
}, required=["sourceRef", "interval", "prune"]), short_names=("ks",))

RECEIVER_TYPES = ["generic", "generic-hmac", "github", "gitlab"]
"""The `spec.type`s this product verifies; Flux's others (bitbucket, harbor, quay, ...) are refused
at load and admission rather than accepted and never served."""

RECEIVER_RESOURCE_KINDS = [
    "Bucket", "GitRepository", "Kustomization", "HelmRelease", "HelmChart", "HelmRepository",
    "ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "OCIRepository",
]

RECEIVER = KindSchema("notification.toolkit.fluxcd.io", "v1", "Receiver", "receivers", True, obj({
    "type": string("How a request is verified: generic (none), generic-hmac (X-Signature), "
                   "github (X-Hub-Signature-256) or gitlab (X-Gitlab-Token).", RECEIVER_TYPES),
    "interval": string("How often to re-read the token Secret, as a Go duration (default 10m)."),
    "events": array(string(), "Event types to act on (X-GitHub-Event, X-Gitlab-Event); "
                              "empty: every event."),
    "resources": array(obj({
        "apiVersion": string("Default: the Flux API version of the kind."),
        "kind": string(enum=RECEIVER_RESOURCE_KINDS),
        "name": string("The object's name, or * with matchLabels."),
        "namespace": string("Default: the Receiver's namespace."),
        "matchLabels": string_map("Labels the objects must carry; only with name *."),
    }, required=["kind", "name"]), "Objects to request a reconcile of."),
    "secretRef": obj({"name": string()}, required=["name"]),
    "suspend": boolean("Stop handling requests."),
}, required=["type", "resources", "secretRef"]))

ALL_KINDS: tuple[KindSchema, ...] = (
    WORKLOAD, CLUSTER_SUPPLY_CHAIN, CLUSTER_SOURCE_TEMPLATE, CLUSTER_IMAGE_TEMPLATE,
    CLUSTER_CONFIG_TEMPLATE, CLUSTER_TEMPLATE, DELIVERABLE, CLUSTER_DELIVERY,
    CLUSTER_DEPLOYMENT_TEMPLATE, CLUSTER_RUN_TEMPLATE, RUNNABLE, GIT_REPOSITORY,
    KUSTOMIZATION, RECEIVER,
)

_BY_GVK = {(k.group, k.version, k.kind): k for k in ALL_KINDS}


def schema_for(api_version: str, kind: str) -> KindSchema | None:
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


# --- validation ------------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    for name, types in _JSON_TYPES.items():
        if isinstance(value, types) and not (name in ("integer", "number")
                                             and isinstance(value, bool)):
            return name
    return type(value).__name__


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> list[tuple[str, str]]:
    """Check `value` against an OpenAPI v3 structural schema; return (field path, problem) pairs.

    Strict about unknown fields, like `kubectl apply --validate=strict`.
    """
    problems: list[tuple[str, str]] = []
    _validate(value, schema, path, problems)
    return problems


def _validate(value: Any, schema: Mapping[str, Any], path: str,
              problems: list[tuple[str, str]]) -> None:
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            problems.append((path, f"must be an integer or a string, got {_type_name(value)}"))
        return
    expected = schema.get("type")
    if expected is None:
        return
    if value is None:
        problems.append((path, f"must be {'an' if expected[0] in 'aeiou' else 'a'} {expected}, "
                               "got null"))
        return
    if _type_name(value) != expected and not (expected == "number"
                                              and _type_name(value) == "integer"):
        problems.append((path, f"must be {'an' if expected[0] in 'aeiou' else 'a'} {expected}, "
                               f"got {_type_name(value)} {value!r}"[:200]))
        return
    if "enum" in schema and value not in schema["enum"]:
        problems.append((path, f"unsupported value {value!r}: must be one of "
                               + ", ".join(repr(v) for v in schema["enum"])))
    if expected == "object":
        assert isinstance(value, dict)
        for req in schema.get("required", []):
            if req not in value:
                problems.append((_join(path, req), "required field is missing"))
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                _validate(item, props[key], _join(path, key), problems)
            elif isinstance(extra, Mapping):
                _validate(item, extra, _join(path, key), problems)
            elif "properties" in schema:
                known = ", ".join(sorted(props)) or "none"
                problems.append((_join(path, key), f"unknown field (known fields: {known})"))
    elif expected == "array":
        assert isinstance(value, list)
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                _validate(item, items, f"{path}[{i}]", problems)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
