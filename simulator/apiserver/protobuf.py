"""The narrowest protobuf the real clients need: decoding request bodies of a few built-in kinds.

client-go's typed clients (helm's release storage, `kubectl create configmap|secret|namespace`)
send built-in objects as `application/vnd.kubernetes.protobuf` while accepting JSON answers
(`Accept: application/vnd.kubernetes.protobuf,application/json`), so the server only has to
*read* protobuf: answers stay JSON. The body is kube's envelope, the magic `k8s\\x00` and a
`runtime.Unknown` (typeMeta, raw, contentEncoding, contentType), whose `raw` is the object's
message. The messages decoded are those of `k8s.io/api/core/v1/generated.proto` and
`k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto` for Secret, ConfigMap, Namespace,
ServiceAccount, the RBAC roles and bindings, coordination.k8s.io Lease, core Event,
DeleteOptions, and the workloads `kubectl create|run|expose` make (Deployment, Job, CronJob,
Pod, Service, with the pod fields set that way); another kind, or a field outside the tables
(a probe, a volume), is refused with 415 naming it, never dropped.

Go's generated code writes zero values of non-pointer fields (`name: ""`, `generation: 0`), which
JSON omits; they are dropped here too. Decoding is bounded: the body size is already capped, the
nesting depth is fixed by the message tables, and every length is checked against what is left.

The same decoder reads the bodies kubectl's typed clients post to the authentication and
authorization APIs (`auth can-i`, `auth whoami`, `create token`): the reviews and TokenRequest,
through `decode_review`. Those messages (`REVIEW_MESSAGES`) store nothing, so a field outside
their tables is skipped rather than refused, and the values are kept as read.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.model.yamlsafe import load_json_bounded

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


# A field: (json name, type, repeated). Types: "string", "bytes", "int", "bool", "time",
# "microtime", "map:string", "map:bytes", "map:quantity", "map:ExtraValue" (a map<string,
# ExtraValue>, its values lists of strings), "ignore" (a status field a write drops anyway), or a
# message table's name. The tables are complete for their messages: a field number not in them
# is refused rather than silently dropped (except in `REVIEW_MESSAGES`, see there).
Field = tuple[str, str, bool]

MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "rawbytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {
        1: ("name", "string", False), 2: ("generateName", "string", False),
        3: ("namespace", "string", False), 4: ("selfLink", "string", False),
        5: ("uid", "string", False), 6: ("resourceVersion", "string", False),
        7: ("generation", "int", False), 8: ("creationTimestamp", "time", False),
        9: ("deletionTimestamp", "time", False), 10: ("deletionGracePeriodSeconds", "int", False),
        11: ("labels", "map:string", False), 12: ("annotations", "map:string", False),
        13: ("ownerReferences", "OwnerReference", True), 14: ("finalizers", "string", True),
        17: ("managedFields", "ManagedFieldsEntry", True)},
    "OwnerReference": {1: ("kind", "string", False), 3: ("name", "string", False),
                       4: ("uid", "string", False), 5: ("apiVersion", "string", False),
                       6: ("controller", "bool", False),
                       7: ("blockOwnerDeletion", "bool", False)},
    "ManagedFieldsEntry": {1: ("manager", "string", False), 2: ("operation", "string", False),
                           3: ("apiVersion", "string", False), 4: ("time", "time", False),
                           6: ("fieldsType", "string", False),
                           7: ("fieldsV1", "FieldsV1", False),
                           8: ("subresource", "string", False)},
    "FieldsV1": {1: ("Raw", "rawbytes", False)},
    "Time": {1: ("seconds", "int", False), 2: ("nanos", "int", False)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:bytes", False),
               3: ("type", "string", False), 4: ("stringData", "map:string", False),
               5: ("immutable", "bool", False)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:string", False),
                  3: ("binaryData", "map:bytes", False), 4: ("immutable", "bool", False)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False),
                  3: ("status", "NamespaceStatus", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "NamespaceStatus": {1: ("phase", "string", False), 2: ("conditions", "ignore", True)},
    "Lease": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "LeaseSpec", False)},
    "LeaseSpec": {1: ("holderIdentity", "string", False),
                  2: ("leaseDurationSeconds", "int", False),
                  3: ("acquireTime", "microtime", False), 4: ("renewTime", "microtime", False),
                  5: ("leaseTransitions", "int", False), 6: ("strategy", "string", False),
                  7: ("preferredHolder", "string", False)},
    "Event": {1: ("metadata", "ObjectMeta", False),
              2: ("involvedObject", "ObjectReference", False), 3: ("reason", "string", False),
              4: ("message", "string", False), 5: ("source", "EventSource", False),
              6: ("firstTimestamp", "time", False), 7: ("lastTimestamp", "time", False),
              8: ("count", "int", False), 9: ("type", "string", False),
              10: ("eventTime", "microtime", False), 11: ("series", "EventSeries", False),
              12: ("action", "string", False), 13: ("related", "ObjectReference", False),
              14: ("reportingComponent", "string", False),
              15: ("reportingInstance", "string", False)},
    "ObjectReference": {1: ("kind", "string", False), 2: ("namespace", "string", False),
                        3: ("name", "string", False), 4: ("uid", "string", False),
                        5: ("apiVersion", "string", False),
                        6: ("resourceVersion", "string", False),
                        7: ("fieldPath", "string", False)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", False),
                       2: ("secrets", "ObjectReference", True),
                       3: ("imagePullSecrets", "LocalObjectReference", True),
                       4: ("automountServiceAccountToken", "bool", False)},
    "LocalObjectReference": {1: ("name", "string", False)},
    "Role": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "ClusterRole": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True),
                    3: ("aggregationRule", "AggregationRule", False)},
    "PolicyRule": {1: ("verbs", "string", True), 2: ("apiGroups", "string", True),
                   3: ("resources", "string", True), 4: ("resourceNames", "string", True),
                   5: ("nonResourceURLs", "string", True)},
    "AggregationRule": {1: ("clusterRoleSelectors", "LabelSelector", True)},
    "LabelSelector": {1: ("matchLabels", "map:string", False),
                      2: ("matchExpressions", "LabelSelectorRequirement", True)},
    "LabelSelectorRequirement": {1: ("key", "string", False), 2: ("operator", "string", False),
                                 3: ("values", "string", True)},
    "RoleBinding": {1: ("metadata", "ObjectMeta", False), 2: ("subjects", "Subject", True),
                    3: ("roleRef", "RoleRef", False)},
    "Subject": {1: ("kind", "string", False), 2: ("apiGroup", "string", False),
                3: ("name", "string", False), 4: ("namespace", "string", False)},
    "RoleRef": {1: ("apiGroup", "string", False), 2: ("kind", "string", False),
                3: ("name", "string", False)},
    # Workloads and Services, for `kubectl create deployment|service`, `kubectl run`, `expose`:
    # the pod fields a person sets that way; probes, volumes, security contexts, affinity ...
    # are not in the tables, so a body carrying them is refused (send JSON or YAML instead).
    "Deployment": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "DeploymentSpec", False),
                   3: ("status", "ignore", False)},
    "DeploymentSpec": {1: ("replicas", "int", False), 2: ("selector", "LabelSelector", False),
                       3: ("template", "PodTemplateSpec", False),
                       4: ("strategy", "DeploymentStrategy", False),
                       5: ("minReadySeconds", "int", False),
                       6: ("revisionHistoryLimit", "int", False), 7: ("paused", "bool", False),
                       9: ("progressDeadlineSeconds", "int", False)},
    "DeploymentStrategy": {1: ("type", "string", False),
                           2: ("rollingUpdate", "RollingUpdateDeployment", False)},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intorstring", False),
                                2: ("maxSurge", "intorstring", False)},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False)},
    "Pod": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False),
            3: ("status", "ignore", False)},
    "PodSpec": {2: ("containers", "Container", True), 20: ("initContainers", "Container", True),
                3: ("restartPolicy", "string", False),
                4: ("terminationGracePeriodSeconds", "int", False),
                5: ("activeDeadlineSeconds", "int", False), 6: ("dnsPolicy", "string", False),
                7: ("nodeSelector", "map:string", False),
                8: ("serviceAccountName", "string", False),
                9: ("serviceAccount", "string", False),
                21: ("automountServiceAccountToken", "bool", False),
                10: ("nodeName", "string", False), 11: ("hostNetwork", "bool", False),
                12: ("hostPID", "bool", False), 13: ("hostIPC", "bool", False),
                27: ("shareProcessNamespace", "bool", False),
                15: ("imagePullSecrets", "LocalObjectReference", True),
                16: ("hostname", "string", False), 17: ("subdomain", "string", False),
                19: ("schedulerName", "string", False),
                24: ("priorityClassName", "string", False), 25: ("priority", "int", False),
                29: ("runtimeClassName", "string", False),
                30: ("enableServiceLinks", "bool", False),
                31: ("preemptionPolicy", "string", False),
                35: ("setHostnameAsFQDN", "bool", False), 37: ("hostUsers", "bool", False),
                41: ("hostnameOverride", "string", False)},
    "Container": {1: ("name", "string", False), 2: ("image", "string", False),
                  3: ("command", "string", True), 4: ("args", "string", True),
                  5: ("workingDir", "string", False), 6: ("ports", "ContainerPort", True),
                  7: ("env", "EnvVar", True), 8: ("resources", "ResourceRequirements", False),
                  13: ("terminationMessagePath", "string", False),
                  20: ("terminationMessagePolicy", "string", False),
                  14: ("imagePullPolicy", "string", False), 16: ("stdin", "bool", False),
                  17: ("stdinOnce", "bool", False), 18: ("tty", "bool", False),
                  24: ("restartPolicy", "string", False)},
    "ContainerPort": {1: ("name", "string", False), 2: ("hostPort", "int", False),
                      3: ("containerPort", "int", False), 4: ("protocol", "string", False),
                      5: ("hostIP", "string", False)},
    "EnvVar": {1: ("name", "string", False), 2: ("value", "string", False)},
    "ResourceRequirements": {1: ("limits", "map:quantity", False),
                             2: ("requests", "map:quantity", False)},
    "Job": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "JobSpec", False),
            3: ("status", "ignore", False)},
    "JobSpec": {1: ("parallelism", "int", False), 2: ("completions", "int", False),
                3: ("activeDeadlineSeconds", "int", False), 7: ("backoffLimit", "int", False),
                12: ("backoffLimitPerIndex", "int", False),
                13: ("maxFailedIndexes", "int", False), 4: ("selector", "LabelSelector", False),
                5: ("manualSelector", "bool", False), 6: ("template", "PodTemplateSpec", False),
                8: ("ttlSecondsAfterFinished", "int", False),
                9: ("completionMode", "string", False), 10: ("suspend", "bool", False),
                14: ("podReplacementPolicy", "string", False),
                15: ("managedBy", "string", False)},
    "CronJob": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "CronJobSpec", False),
                3: ("status", "ignore", False)},
    "CronJobSpec": {1: ("schedule", "string", False), 8: ("timeZone", "string", False),
                    2: ("startingDeadlineSeconds", "int", False),
                    3: ("concurrencyPolicy", "string", False), 4: ("suspend", "bool", False),
                    5: ("jobTemplate", "JobTemplateSpec", False),
                    6: ("successfulJobsHistoryLimit", "int", False),
                    7: ("failedJobsHistoryLimit", "int", False)},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "JobSpec", False)},
    "Service": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "ServiceSpec", False),
                3: ("status", "ignore", False)},
    "ServiceSpec": {1: ("ports", "ServicePort", True), 2: ("selector", "map:string", False),
                    3: ("clusterIP", "string", False), 18: ("clusterIPs", "string", True),
                    4: ("type", "string", False), 5: ("externalIPs", "string", True),
                    7: ("sessionAffinity", "string", False),
                    8: ("loadBalancerIP", "string", False),
                    9: ("loadBalancerSourceRanges", "string", True),
                    10: ("externalName", "string", False),
                    11: ("externalTrafficPolicy", "string", False),
                    12: ("healthCheckNodePort", "int", False),
                    13: ("publishNotReadyAddresses", "bool", False),
                    14: ("sessionAffinityConfig", "SessionAffinityConfig", False),
                    19: ("ipFamilies", "string", True), 17: ("ipFamilyPolicy", "string", False),
                    20: ("allocateLoadBalancerNodePorts", "bool", False),
                    21: ("loadBalancerClass", "string", False),
                    22: ("internalTrafficPolicy", "string", False),
                    23: ("trafficDistribution", "string", False)},
    "ServicePort": {1: ("name", "string", False), 2: ("protocol", "string", False),
                    6: ("appProtocol", "string", False), 3: ("port", "int", False),
                    4: ("targetPort", "intorstring", False), 5: ("nodePort", "int", False)},
    "SessionAffinityConfig": {1: ("clientIP", "ClientIPConfig", False)},
    "ClientIPConfig": {1: ("timeoutSeconds", "int", False)},
    "IntOrString": {1: ("type", "int", False), 2: ("intVal", "int", False),
                    3: ("strVal", "string", False)},
    "Quantity": {1: ("string", "string", False)},
    "DeleteOptions": {1: ("gracePeriodSeconds", "int", False),
                      2: ("preconditions", "Preconditions", False),
                      3: ("orphanDependents", "bool", False),
                      4: ("propagationPolicy", "string", False), 5: ("dryRun", "string", True),
                      6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool", False)},
    "Preconditions": {1: ("uid", "string", False), 2: ("resourceVersion", "string", False)},
    "EventSource": {1: ("component", "string", False), 2: ("host", "string", False)},
    "EventSeries": {1: ("count", "int", False), 2: ("lastObservedTime", "microtime", False)},
    # The review APIs and TokenRequest (k8s.io/api authorization/v1, authentication/v1): only
    # the fields they read; being in REVIEW_MESSAGES, the rest of each message is skipped.
    "ReviewObjectMeta": {1: ("name", "string", False), 2: ("generateName", "string", False),
                         3: ("namespace", "string", False)},
    "ResourceAttributes": {1: ("namespace", "string", False), 2: ("verb", "string", False),
                           3: ("group", "string", False), 4: ("version", "string", False),
                           5: ("resource", "string", False),
                           6: ("subresource", "string", False), 7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
    "ExtraValue": {1: ("items", "string", True)},
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", False),
        2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", False),
        2: ("nonResourceAttributes", "NonResourceAttributes", False),
        3: ("user", "string", False), 4: ("groups", "string", True),
        5: ("extra", "map:ExtraValue", False), 6: ("uid", "string", False)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", False)},
    "TokenReviewSpec": {1: ("token", "string", False), 2: ("audiences", "string", True)},
    "BoundObjectReference": {1: ("kind", "string", False), 2: ("apiVersion", "string", False),
                             3: ("name", "string", False), 4: ("uid", "string", False)},
    "TokenRequestSpec": {1: ("audiences", "string", True),
                         3: ("boundObjectRef", "BoundObjectReference", False),
                         4: ("expirationSeconds", "int", False)},
}

REVIEW_KINDS = {"SelfSubjectAccessReview": "SelfSubjectAccessReviewSpec",
                "SubjectAccessReview": "SubjectAccessReviewSpec",
                "LocalSubjectAccessReview": "SubjectAccessReviewSpec",
                "SelfSubjectRulesReview": "SelfSubjectRulesReviewSpec",
                "TokenReview": "TokenReviewSpec", "TokenRequest": "TokenRequestSpec",
                "SelfSubjectReview": ""}
"""Kinds `decode_review` reads (by kind alone: the caller checks the apiVersion), to their spec
message; each is (metadata, spec), SelfSubjectReview metadata only."""
for _kind, _spec in REVIEW_KINDS.items():
    MESSAGES[_kind] = {1: ("metadata", "ReviewObjectMeta", False)}
    if _spec:
        MESSAGES[_kind][2] = ("spec", _spec, False)

REVIEW_MESSAGES = frozenset({
    "ReviewObjectMeta", "ResourceAttributes", "NonResourceAttributes", "ExtraValue",
    "BoundObjectReference", *REVIEW_KINDS, *filter(None, REVIEW_KINDS.values())})
"""The review and TokenRequest messages: nothing of them is stored, and the server reads only
the fields in their tables, so another field (a status, a newer field) is skipped, not refused;
values are kept as read (a zero `expirationSeconds` is the client's, not Go's default)."""

KINDS = {("v1", "Secret"): "Secret", ("v1", "ConfigMap"): "ConfigMap",
         ("v1", "Namespace"): "Namespace", ("v1", "Event"): "Event",
         ("coordination.k8s.io/v1", "Lease"): "Lease",
         ("v1", "ServiceAccount"): "ServiceAccount",
         ("v1", "Pod"): "Pod", ("v1", "Service"): "Service",
         ("apps/v1", "Deployment"): "Deployment", ("batch/v1", "Job"): "Job",
         ("batch/v1", "CronJob"): "CronJob",
         ("rbac.authorization.k8s.io/v1", "Role"): "Role",
         ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
         ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
         ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "RoleBinding",
         ("v1", "DeleteOptions"): "DeleteOptions",
         ("meta.k8s.io/v1", "DeleteOptions"): "DeleteOptions"}
"""(apiVersion, kind) the decoder reads, to their message table."""


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body (the `k8s\\x00` envelope) as the JSON object it stands for."""
    api_version, kind, raw = _envelope(body)
    table = KINDS.get((api_version, kind))
    if table is None:
        raise ProtobufError(f"the simulated cluster does not decode protobuf for "
                            f"{api_version or '?'}, Kind={kind or '?'}; send JSON")
    return {"apiVersion": api_version, "kind": kind, **_message(raw, table)}


def decode_review(body: bytes) -> dict[str, Any]:
    """A `k8s\\x00`-framed review or TokenRequest as its JSON form; the apiVersion is as given
    (None when absent), for the caller to check against the resource posted to."""
    api_version, kind, raw = _envelope(body)
    if kind not in REVIEW_KINDS:
        raise ProtobufError(f"cannot decode a {kind or 'body without a kind'} from protobuf")
    return {"apiVersion": api_version or None, "kind": kind, **_message(raw, kind)}


def _envelope(body: bytes) -> tuple[str, str, memoryview]:
    """The magic and the `runtime.Unknown`: (apiVersion, kind, raw object message)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    envelope = _message(memoryview(body)[len(MAGIC):], "Unknown")
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = str(type_meta.get("apiVersion", "")), str(type_meta.get("kind", ""))
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"content encoding {envelope['contentEncoding']!r} is not supported")
    raw = envelope.get("raw", b"")
    return api_version, kind, memoryview(raw if isinstance(raw, bytes) else b"")


def _message(data: memoryview, name: str) -> dict[str, Any]:
    fields = MESSAGES[name]
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            payload: Any = value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length > len(data) - pos:
                raise ProtobufError("a length runs past the end of the body")
            payload = data[pos:pos + length]
            pos += length
        elif wire == 1:
            pos += 8
            payload = None
        elif wire == 5:
            pos += 4
            payload = None
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ProtobufError("a value runs past the end of the body")
        spec = fields.get(number)
        if spec is None and name in REVIEW_MESSAGES:
            continue
        if spec is None:
            # Skipping it would drop what the client meant to store: refuse, and say what.
            raise ProtobufError(f"field {number} of {name} is not known to the simulated "
                                "cluster's protobuf decoder; send JSON")
        json_name, kind, repeated = spec
        if kind == "ignore" or payload is None:
            continue
        value = _value(kind, wire, payload)
        if kind.startswith("map:"):
            key_text, item = value
            out.setdefault(json_name, {})[key_text] = item
        elif repeated:
            out.setdefault(json_name, []).append(value)
        else:
            out[json_name] = value
    return {k: v for k, v in out.items() if not _zero(name, k, v)}


_POINTERS = {
    ("DeploymentSpec", "replicas"), ("DeploymentSpec", "revisionHistoryLimit"),
    ("DeploymentSpec", "progressDeadlineSeconds"), ("PodSpec", "terminationGracePeriodSeconds"),
    ("PodSpec", "activeDeadlineSeconds"), ("PodSpec", "automountServiceAccountToken"),
    ("PodSpec", "shareProcessNamespace"), ("PodSpec", "priority"),
    ("PodSpec", "enableServiceLinks"), ("PodSpec", "setHostnameAsFQDN"),
    ("PodSpec", "hostUsers"), ("ServiceSpec", "allocateLoadBalancerNodePorts"),
    ("ClientIPConfig", "timeoutSeconds"), ("Secret", "immutable"), ("ConfigMap", "immutable"),
    ("OwnerReference", "controller"), ("OwnerReference", "blockOwnerDeletion"),
    ("DeleteOptions", "gracePeriodSeconds"), ("DeleteOptions", "orphanDependents"),
    ("DeleteOptions", "ignoreStoreReadErrorWithClusterBreakingPotential"),
    ("ServiceAccount", "automountServiceAccountToken"),
    *(("JobSpec", f) for f in ("parallelism", "completions", "activeDeadlineSeconds",
                               "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
                               "manualSelector", "ttlSecondsAfterFinished", "suspend")),
    *(("CronJobSpec", f) for f in ("startingDeadlineSeconds", "suspend",
                                   "successfulJobsHistoryLimit", "failedJobsHistoryLimit")),
}
"""Fields Go keeps as pointers: present means set, even to 0 or false."""


def _zero(message: str, name: str, value: Any) -> bool:
    """Go writes the zero values of non-pointer fields; JSON would have omitted them."""
    if message in ("Time", "Unknown", "FieldsV1", "IntOrString", "Quantity"):
        return False
    if message in REVIEW_MESSAGES:
        return False
    if (message, name) in _POINTERS:
        return False
    return value in ("", 0, None) or value == {}


def _value(kind: str, wire: int, payload: Any) -> Any:
    if kind == "int":
        _need(wire, 0)
        return payload - (1 << 64) if payload >= 1 << 63 else payload
    if kind == "bool":
        _need(wire, 0)
        return bool(payload)
    _need(wire, 2)
    data = bytes(payload)
    if kind == "string":
        return _text(data)
    if kind == "bytes":
        return base64.b64encode(data).decode()
    if kind == "rawbytes":
        return data
    if kind in ("time", "microtime"):
        return _time(_message(payload, "Time"), micro=kind == "microtime")
    if kind.startswith("map:"):
        return _entry(payload, kind[4:])
    if kind == "intorstring":
        parts = _message(payload, "IntOrString")
        return parts.get("strVal", "") if parts.get("type") == 1 else parts.get("intVal", 0)
    if kind == "FieldsV1":
        raw = _message(payload, "FieldsV1").get("Raw", b"")
        return load_json_bounded(raw or b"{}", "fieldsV1")
    return _message(payload, kind)


def _entry(payload: memoryview, value_kind: str) -> tuple[str, Any]:
    key = ""
    value: Any = [] if value_kind == "ExtraValue" else ""
    pos = 0
    while pos < len(payload):
        tag, pos = _varint(payload, pos)
        if tag & 7 != 2:
            raise ProtobufError("a map entry holds a non-length-delimited field")
        length, pos = _varint(payload, pos)
        if length > len(payload) - pos:
            raise ProtobufError("a map entry runs past the end of the body")
        data = payload[pos:pos + length]
        pos += length
        if tag >> 3 == 1:
            key = _text(bytes(data))
        elif tag >> 3 == 2:
            if value_kind == "bytes":
                value = base64.b64encode(bytes(data)).decode()
            elif value_kind == "quantity":
                value = str(_message(data, "Quantity").get("string", ""))
            elif value_kind == "ExtraValue":
                value = list(_message(data, "ExtraValue").get("items", []))
            else:
                value = _text(bytes(data))
    return key, value


def _time(parts: Mapping[str, Any], micro: bool) -> str | None:
    seconds, nanos = int(parts.get("seconds", 0)), int(parts.get("nanos", 0))
    if seconds == 0 and nanos == 0:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtobufError(f"a time out of range: {seconds}") from exc
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError("a string is not valid UTF-8") from exc


def _need(wire: int, want: int) -> None:
    if wire != want:
        raise ProtobufError(f"wire type {wire} where {want} was expected")


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("a varint runs past the end of the body")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("a varint longer than 10 bytes")
