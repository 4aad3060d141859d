"""kube-apiserver's own rules for names, labels, annotations, Secrets, ConfigMaps and sizes,
each at its boundaries, with kube-apiserver's messages."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from reconciler.model.apivalidation import (
    DECODE,
    INVALID,
    STORAGE,
    Problem,
    base64_error,
    is_config_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_path_segment_name,
    is_qualified_name,
    object_problems,
    rejection_message,
)
from reconciler.model.limits import Limits


def _obj(kind: str = "ConfigMap", name: str = "ok", api_version: str = "v1",
         **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": "default", **fields.pop("metadata", {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def _fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


# --- the string formats -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "ok"), [
    ("a", True), ("a" * 63, True), ("a" * 64, False), ("my-name", True), ("123-abc", True),
    ("a.b", False), ("Bad_Name", False), ("-a", False), ("a-", False), ("", False),
    ("ä", False), ("a\n", False),
])
def test_dns1123_label(value: str, ok: bool) -> None:
    assert (is_dns1123_label(value) == []) is ok


def test_dns1123_label_messages() -> None:
    assert is_dns1123_label("a.b") == ["must not contain dots"]
    assert is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    assert is_dns1123_label("Bad_Name") == [
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
        "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]


@pytest.mark.parametrize(("value", "ok"), [
    ("a", True), ("a.b", True), ("example.com", True),
    (".".join(["a" * 63] * 4)[:253], True), ("a" * 253, True), ("a" * 254, False),
    ("a..b", False), (".a", False), ("a.", False), ("Bad_Name", False), ("a/b", False),
    ("a%b", False), ("", False),
])
def test_dns1123_subdomain(value: str, ok: bool) -> None:
    assert (is_dns1123_subdomain(value) == []) is ok


def test_dns1123_subdomain_too_long_and_malformed_says_both() -> None:
    assert is_dns1123_subdomain("A" * 254) == [
        "must be no more than 253 characters",
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
        "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
        "[a-z0-9])?)*')"]


@pytest.mark.parametrize(("value", "ok"), [
    ("a", True), ("a" * 63, True), ("a" * 64, False), ("abc-123", True), ("1abc", False),
    ("a.b", False), ("a-", False), ("A", False),
])
def test_dns1035_label(value: str, ok: bool) -> None:
    assert (is_dns1035_label(value) == []) is ok


@pytest.mark.parametrize(("value", "errors"), [
    ("system:aggregate-to-admin", []), ("Any Thing", []), (".", ["may not be '.'"]),
    ("..", ["may not be '..'"]), ("a/b", ["may not contain '/'"]),
    ("a%b", ["may not contain '%'"]), ("a/%", ["may not contain '/'", "may not contain '%'"]),
    ("...", []),
])
def test_path_segment_name(value: str, errors: list[str]) -> None:
    assert is_path_segment_name(value) == errors


@pytest.mark.parametrize(("value", "ok"), [
    ("app", True), ("App_Name.v1", True), ("a" * 63, True), ("a" * 64, False),
    ("example.com/" + "a" * 63, True), ("example.com/" + "a" * 64, False),
    ("a" * 253 + "/name", True), ("a" * 254 + "/name", False),
    ("Example.com/name", False), ("/name", False), ("example.com/", False),
    ("a/b/c", False), ("-a", False), ("a_", False), ("", False),
])
def test_qualified_name(value: str, ok: bool) -> None:
    assert (is_qualified_name(value) == []) is ok


def test_qualified_name_messages() -> None:
    assert is_qualified_name("/x") == ["prefix part must be non-empty"]
    assert is_qualified_name("x/") == [
        "name part must be non-empty",
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
    assert is_qualified_name("x" * 64) == ["name part must be no more than 63 characters"]
    assert is_qualified_name("Bad_Prefix/x")[0].startswith(
        "prefix part a lowercase RFC 1123 subdomain")


@pytest.mark.parametrize(("value", "ok"), [
    ("", True), ("v1", True), ("My_Value.2", True), ("a" * 63, True), ("a" * 64, False),
    ("a b", False), ("-a", False), ("a/b", False),
])
def test_label_value(value: str, ok: bool) -> None:
    assert (is_label_value(value) == []) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("key.name", True), ("KEY_NAME", True), ("key-name", True), (".env", True),
    ("a" * 253, True), ("a" * 254, False), ("a b", False), ("a/b", False), ("", False),
    (".", False), ("..", False), ("..a", False),
])
def test_config_key(value: str, ok: bool) -> None:
    assert (is_config_key(value) == []) is ok


def test_config_key_messages() -> None:
    assert is_config_key("..") == ["must not be '..'"]
    assert is_config_key("..data") == ["must not start with '..'"]
    assert is_config_key("a b") == [
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
        "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')"]


@pytest.mark.parametrize(("value", "error"), [
    ("", None), ("YQ==", None), ("YWI=", None), ("YWJj", None), ("YWJj\nZGVm\r\n", None),
    ("YWJ", "illegal base64 data at input byte 0"),
    ("YQ=", "illegal base64 data at input byte 3"),
    ("Y===", "illegal base64 data at input byte 1"),
    ("YW=j", "illegal base64 data at input byte 2"),
    ("YQ==YQ==", "illegal base64 data at input byte 4"),
    ("hunter2!", "illegal base64 data at input byte 7"),
    ("YW-j", "illegal base64 data at input byte 2"),  # URL-safe alphabet is not standard
])
def test_base64_as_go_decodes_it(value: str, error: str | None) -> None:
    assert base64_error(value) == error


# --- object problems ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "api_version", "name", "ok"), [
    ("Service", "v1", "a" * 63, True), ("Service", "v1", "a" * 64, False),
    ("Service", "v1", "a.b", False), ("Service", "v1", "1abc", False),
    ("Namespace", "v1", "a" * 63, True), ("Namespace", "v1", "a" * 64, False),
    ("Namespace", "v1", "a.b", False), ("Namespace", "v1", "1abc", True),
    ("StatefulSet", "apps/v1", "a.b", False), ("Deployment", "apps/v1", "a.b", True),
    ("ConfigMap", "v1", "a" * 253, True), ("ConfigMap", "v1", "a" * 254, False),
    ("ConfigMap", "v1", "Bad_Name", False), ("ConfigMap", "v1", "a" * 300, False),
    ("Secret", "v1", "a.b", True),
    ("CronJob", "batch/v1", "a" * 52, True), ("CronJob", "batch/v1", "a" * 53, False),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "system:controller:x", True),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "a/b", False),
    ("Role", "rbac.authorization.k8s.io/v1", "..", False),
    ("RoleBinding", "rbac.authorization.k8s.io/v1", "a%b", False),
    # A custom resource's name is a DNS-1123 subdomain (apiextensions-apiserver's validator).
    ("Workload", "carto.run/v1alpha1", "a.b", True),
    ("Workload", "carto.run/v1alpha1", "Bad_Name", False),
    ("Workload", "carto.run/v1alpha1", "a/b", False),
    ("Workload", "carto.run/v1alpha1", ".", False),
])
def test_names_by_kind(kind: str, api_version: str, name: str, ok: bool) -> None:
    problems = object_problems(_obj(kind, name, api_version))
    assert (problems == []) is ok, problems
    if not ok:
        assert set(_fields(problems)) == {"metadata.name"}


def test_the_service_message_is_kube_apiservers() -> None:
    obj = _obj("Service", "a.b")
    assert rejection_message(obj, object_problems(obj)) == (
        'Service "a.b" is invalid: metadata.name: Invalid value: "a.b": a DNS-1035 label must '
        "consist of lower case alphanumeric characters or '-', start with an alphabetic "
        "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
        "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def test_a_custom_resource_is_named_with_its_group_and_several_problems_are_listed() -> None:
    obj = _obj("Workload", "Bad_Name", "carto.run/v1alpha1", metadata={"labels": {"a b": "c"}})
    message = rejection_message(obj, object_problems(obj))
    assert message.startswith('Workload.carto.run "Bad_Name" is invalid: [metadata.name: '
                              'Invalid value: "Bad_Name": ')
    assert ', metadata.labels: Invalid value: "a b": name part must consist of' in message
    assert message.endswith("]")


def test_generate_name_may_end_with_a_dash_and_stands_for_a_missing_name() -> None:
    obj = _obj(name="")
    obj["metadata"]["generateName"] = "run-"
    assert object_problems(obj) == []
    obj["metadata"]["generateName"] = "Run-"
    assert _fields(object_problems(obj)) == ["metadata.generateName"]
    del obj["metadata"]["generateName"]
    assert object_problems(obj) == [
        Problem("metadata.name", "Required value: name or generateName is required")]


@pytest.mark.parametrize(("namespace", "ok"), [
    ("team-a", True), ("a" * 63, True), ("a" * 64, False), ("a.b", False), ("Team", False),
])
def test_namespace_field(namespace: str, ok: bool) -> None:
    problems = object_problems(_obj(metadata={"namespace": namespace}))
    assert (problems == []) is ok
    if not ok:
        assert _fields(problems) == ["metadata.namespace"]


def test_the_namespace_of_a_cluster_scoped_kind_is_not_checked() -> None:
    # The API server drops it for a cluster-scoped kind, as the simulated cluster does.
    assert object_problems(_obj("ClusterRole", "r", "rbac.authorization.k8s.io/v1",
                                metadata={"namespace": "Not Valid"})) == []
    assert object_problems(_obj("Widget", "w", "example.com/v1",
                                metadata={"namespace": "Not Valid"}), namespaced=False) == []


@pytest.mark.parametrize(("labels", "ok"), [
    ({"app": "web"}, True), ({"app.kubernetes.io/name": "a" * 63}, True),
    ({"app.kubernetes.io/name": "a" * 64}, False), ({"a" * 63: ""}, True),
    ({"a" * 64: "x"}, False), ({"a" * 253 + "/k": "x"}, True), ({"a" * 254 + "/k": "x"}, False),
    ({"Example.com/k": "x"}, False), ({"app": "has space"}, False), ({"app": None}, True),
])
def test_labels(labels: dict[str, Any], ok: bool) -> None:
    problems = object_problems(_obj(metadata={"labels": labels}))
    assert (problems == []) is ok, problems
    if not ok:
        assert set(_fields(problems)) == {"metadata.labels"}


def test_a_label_value_that_is_not_a_string_does_not_decode() -> None:
    obj = _obj(metadata={"labels": {"version": 1}})
    problems = object_problems(obj)
    assert problems == [Problem(
        "metadata.labels[version]",
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
        "string", DECODE)]
    assert rejection_message(obj, problems).startswith(
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal')


@pytest.mark.parametrize(("annotations", "ok"), [
    ({"Example.com/Key": "x"}, True),  # annotation keys are checked without case
    ({"a" * 63: "x"}, True), ({"a" * 64: "x"}, False), ({"a b": "x"}, False),
    ({"k": "v" * (256 * 1024 - 1)}, True), ({"k": "v" * (256 * 1024)}, False),
])
def test_annotations(annotations: dict[str, str], ok: bool) -> None:
    problems = object_problems(_obj(metadata={"annotations": annotations}))
    assert (problems == []) is ok, problems
    if not ok:
        assert set(_fields(problems)) == {"metadata.annotations"}


def test_annotations_over_256_kib_in_total() -> None:
    problems = object_problems(_obj(metadata={"annotations": {
        "a": "x" * (128 * 1024), "b": "x" * (128 * 1024)}}))
    assert problems == [Problem("metadata.annotations",
                                "Too long: may not be more than 262144 bytes")]


def test_owner_references_and_finalizers() -> None:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "1", "controller": True}
    assert object_problems(_obj(metadata={"ownerReferences": [ref]})) == []
    problems = object_problems(_obj(metadata={"ownerReferences": [
        ref, {**ref, "name": "p"}, {"apiVersion": "v1", "kind": "X", "name": "q"}]}))
    assert [p.field for p in problems] == ["metadata.ownerReferences",
                                           "metadata.ownerReferences.uid"]
    assert "Only one reference can have Controller set to true. Found \"true\" in references " \
           "for ConfigMap/o and ConfigMap/p" in problems[0].message
    assert object_problems(_obj(metadata={"finalizers": ["example.com/cleanup"]})) == []
    assert _fields(object_problems(_obj(metadata={"finalizers": ["bad finalizer"]}))) == [
        "metadata.finalizers"]


# --- Secret and ConfigMap ---------------------------------------------------------------------

def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secret_data_must_be_base64_with_valid_keys() -> None:
    assert object_problems(_obj("Secret", data={"password": _b64("pw"), ".env": ""})) == []
    problems = object_problems(_obj("Secret", data={"password": "not base64"}))
    assert problems == [Problem("data[password]", "illegal base64 data at input byte 3",
                                DECODE)]
    obj = _obj("Secret", "creds", data={"bad key": _b64("x")}, stringData={"a" * 254: "x"})
    problems = object_problems(obj)
    assert _fields(problems) == ["data[bad key]", "stringData[" + "a" * 254 + "]"]
    assert problems[1].message.endswith(": must be no more than 253 characters")
    assert rejection_message(obj, problems).startswith(
        'Secret "creds" is invalid: [data[bad key]: Invalid value: "bad key": a valid config key')


def test_secret_size_counts_decoded_data_and_string_data() -> None:
    limit = 1024 * 1024
    assert object_problems(_obj("Secret", data={"a": _b64("x" * (limit - 1))},
                                stringData={"b": "y"})) == []
    too_big = _obj("Secret", data={"a": _b64("x" * limit)}, stringData={"b": "y"})
    assert object_problems(too_big) == [
        Problem("data", "Too long: may not be more than 1048576 bytes")]
    # stringData wins over data on the same key before the size is counted.
    assert object_problems(_obj("Secret", data={"a": _b64("x" * limit)},
                                stringData={"a": "small"})) == []


def test_configmap_keys_duplicates_and_size() -> None:
    assert object_problems(_obj(data={"app.yaml": "x"}, binaryData={"logo.png": _b64("x")})) == []
    problems = object_problems(_obj(data={"k": "x"}, binaryData={"k": _b64("x")}))
    assert problems == [
        Problem("data[k]", 'Invalid value: "k": duplicate of key present in binaryData'),
        Problem("binaryData[k]", 'Invalid value: "k": duplicate of key present in data')]
    assert _fields(object_problems(_obj(data={"a/b": "x"}))) == ["data[a/b]"]
    assert _fields(object_problems(_obj(binaryData={"k": "%%%%"}))) == ["binaryData[k]"]
    limit = 1024 * 1024
    assert object_problems(_obj(data={"a": "x" * (limit - 1)},
                                binaryData={"b": _b64("y")})) == []
    obj = _obj("ConfigMap", "big", data={"a": "x" * limit}, binaryData={"b": _b64("y")})
    problems = object_problems(obj)
    assert problems == [Problem("[]", "Too long: may not be more than 1048576 bytes")]
    assert rejection_message(obj, problems) == (
        'ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes')


def test_configmap_data_values_must_be_strings() -> None:
    problems = object_problems(_obj(data={"replicas": 3}))
    assert problems == [Problem(
        "data[replicas]",
        "json: cannot unmarshal number into Go struct field ConfigMap.data of type string",
        DECODE)]


def test_crd_name_is_plural_dot_group() -> None:
    crd: dict[str, Any] = {"apiVersion": "apiextensions.k8s.io/v1",
                           "kind": "CustomResourceDefinition",
                           "metadata": {"name": "widgets.example.com"},
                           "spec": {"group": "example.com", "scope": "Namespaced",
                                    "names": {"plural": "widgets", "kind": "Widget"},
                                    "versions": [{"name": "v1", "served": True,
                                                  "storage": True}]}}
    assert object_problems(crd) == []
    crd["metadata"]["name"] = "widget.example.com"
    assert object_problems(crd) == [Problem(
        "metadata.name",
        'Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group')]


# --- object size -------------------------------------------------------------------------------

def test_an_object_over_the_storage_limit_is_refused() -> None:
    limits = Limits(object_bytes=1000)
    small = _obj("Widget", "w", "example.com/v1", spec={"blob": "x" * 800})
    assert object_problems(small, limits=limits) == []
    large = _obj("Widget", "w", "example.com/v1", spec={"blob": "x" * 1000})
    problems = object_problems(large, limits=limits)
    assert [(p.field, p.stage) for p in problems] == [("", STORAGE)]
    assert problems[0].message.startswith("etcdserver: request is too large (the object is ")
    assert rejection_message(large, problems) == problems[0].message


def test_the_default_storage_limit_is_one_and_a_half_mebibytes() -> None:
    limit = 1572864
    overhead = len('{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w",'
                   '"namespace":"default"},"spec":{"blob":""}}')
    fits = _obj("Widget", "w", "example.com/v1", spec={"blob": "x" * (limit - overhead)})
    assert object_problems(fits) == []
    over = _obj("Widget", "w", "example.com/v1", spec={"blob": "x" * (limit - overhead + 1)})
    assert [p.stage for p in object_problems(over)] == [STORAGE]


def test_problems_are_invalid_stage_by_default() -> None:
    assert Problem("metadata.name", "x").stage == INVALID
    assert str(Problem("metadata.name", "Required value")) == "metadata.name: Required value"


@pytest.mark.parametrize(("spec", "field", "message"), [
    (5, "spec", "must be an object"),
    ({"names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
      "versions": [{"name": "v1", "served": True, "storage": True}]}, "spec.group", "Required"),
    ({"group": "example.com", "names": {"plural": "widgets"}, "scope": "Namespaced",
      "versions": [{"name": "v1", "served": True, "storage": True}]}, "spec.names.kind",
     "Required"),
    ({"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
      "scope": "Everywhere", "versions": [{"name": "v1", "storage": True}]}, "spec.scope",
     "Unsupported value"),
    ({"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
      "scope": "Namespaced", "versions": 5}, "spec.versions", "must be a list"),
    ({"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
      "scope": "Namespaced", "versions": [5]}, "spec.versions[0]", "must be an object"),
    ({"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
      "scope": "Namespaced", "versions": [{"name": "v1", "storage": False}]}, "spec.versions",
     "exactly one version marked as storage"),
    ({"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
      "scope": "Namespaced", "versions": [{"name": "v1", "storage": True,
                                           "schema": {"openAPIV3Schema": "x"}}]},
     "spec.versions[0].schema.openAPIV3Schema", "must be an object"),
])
def test_a_crd_without_the_structure_its_api_is_built_from_is_refused(
        spec: object, field: str, message: str) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"}, "spec": spec}
    problems = [p for p in object_problems(crd) if p.field == field]
    assert problems and message in problems[0].message, object_problems(crd)


def test_a_well_formed_crd_has_no_problems() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    assert object_problems(crd) == []
