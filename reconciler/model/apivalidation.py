"""What kube-apiserver itself refuses in an object, before any schema or webhook sees it.

Every object a real API server stores has passed `ValidateObjectMeta` (names, namespace, labels,
annotations, owner references, finalizers) with the name rule of its kind, the kind's own built-in
validation (Secret and ConfigMap keys and sizes), the JSON decoder (base64 `[]byte` fields,
string-valued maps) and, at the end, etcd's request size limit. The simulated cluster refuses
what these refuse, for objects written by users and by controllers alike, and the loader can
refuse the same input before anything runs.

`object_problems(obj)` returns every problem in the order the API server finds them (decoding,
then validation, then storage), each naming its field as kube-apiserver does
(`metadata.name`, `metadata.labels`, `data[key]`) with kube-apiserver's wording.
`rejection_message(obj, problems)` renders them as the API server's error for the whole request.

Name rules by kind (as the newest kube-apiserver applies them):

- Namespace, StatefulSet: DNS-1123 label; Service: DNS-1035 label;
- Role, RoleBinding, ClusterRole, ClusterRoleBinding: path segment names (`system:foo` is fine,
  `.`, `..`, `/` and `%` are not);
- CronJob: DNS-1123 subdomain of at most 52 characters (its Jobs append 11);
- CustomResourceDefinition: DNS-1123 subdomain that equals `<spec.names.plural>.<spec.group>`;
- every other kind, built-in or defined by a CRD: DNS-1123 subdomain (apiextensions-apiserver
  validates custom resources with `NameIsDNSSubdomain`), which also excludes what a path segment
  cannot hold.

Lengths are counted in UTF-8 bytes, as Go's `len` does. This module is pure: no I/O, no imports
outside the standard library and `reconciler.model`.
"""

from __future__ import annotations

import json
import marshal
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.kinds import BUILTIN_KINDS
from reconciler.model.limits import DEFAULT_LIMITS, Limits

INVALID = "invalid"
"""A field the API server's validation refuses: `<Kind> "<name>" is invalid: ...`."""
DECODE = "decode"
"""A body the API server cannot decode: `<Kind> in version "v1" cannot be handled as a ...`."""
STORAGE = "storage"
"""An object storage refuses: etcd's `request is too large`."""


@dataclass(frozen=True)
class Problem:
    """One refusal: the field as kube-apiserver names it and kube-apiserver's message for it.

    `message` is the error without the field (`Invalid value: "a.b": a DNS-1035 label must ...`);
    `str(problem)` is `field: message`, as one entry of the API server's error list. `stage` says
    which part of the API server refuses it (`INVALID`, `DECODE` or `STORAGE`).
    """

    field: str
    message: str
    stage: str = INVALID

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# --- kube-apiserver's string formats (k8s.io/apimachinery/pkg/util/validation) ---------------

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
CONFIG_KEY_MAX = 253
TOTAL_ANNOTATION_BYTES = 256 * 1024
"""ValidateAnnotations: keys plus values of all annotations."""
MAX_SECRET_BYTES = 1024 * 1024
"""core.MaxSecretSize, which bounds ConfigMap data too."""
CRONJOB_NAME_MAX = DNS1035_LABEL_MAX - 11
"""A CronJob's Jobs are named `<name>-<11 characters>`, and Job names become label values."""

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_DNS1123_LABEL = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_CONFIG_KEY = re.compile(_CONFIG_KEY_FMT)

_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                       "and end with an alphanumeric character")


def _size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _matches(pattern: re.Pattern[str], value: str) -> bool:
    # Go anchors with ^...$ where $ is the end of text; fullmatch is the same.
    return pattern.fullmatch(value) is not None


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    errors = []
    if _size(value) > DNS1123_LABEL_MAX:
        errors.append(max_len_error(DNS1123_LABEL_MAX))
    if not _matches(_DNS1123_LABEL, value):
        if _matches(_DNS1123_SUBDOMAIN, value):
            errors.append("must not contain dots")
        else:
            errors.append(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
                _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    if value in _valid_subdomains:
        return []
    errors = _dns1123_subdomain_errors(value)
    if not errors:
        _remember_valid(_valid_subdomains, value)
    return errors


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _matches(_DNS1123_SUBDOMAIN, value):
        errors.append(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character",
            _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def is_dns1035_label(value: str) -> list[str]:
    errors = []
    if _size(value) > DNS1035_LABEL_MAX:
        errors.append(max_len_error(DNS1035_LABEL_MAX))
    if not _matches(_DNS1035_LABEL, value):
        errors.append(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character",
            _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


def is_path_segment_name(value: str, prefix: bool = False) -> list[str]:
    """A name that can be one segment of a request path (`.`, `..`, `/` and `%` cannot)."""
    if not prefix and value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


# Strings already found valid, per rule: the same label keys, values and names come back on
# nearly every write, and a rule's answer depends on the string alone. Only valid strings are
# kept (an invalid one is rare and its messages are built again); each set is emptied when it
# reaches `_KNOWN_VALID_MAX`, so what callers send cannot grow it without bound.
_KNOWN_VALID_MAX = 4096
_valid_qualified_names: set[str] = set()
_valid_label_values: set[str] = set()
_valid_subdomains: set[str] = set()


def _remember_valid(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_VALID_MAX:
        known.clear()
    known.add(value)


def is_qualified_name(value: str) -> list[str]:
    """A label key: a name of at most 63 characters, optionally `<DNS-1123 subdomain>/`."""
    if value in _valid_qualified_names:
        return []
    errors = _qualified_name_errors(value)
    if not errors:
        _remember_valid(_valid_qualified_names, value)
    return errors


def _qualified_name_errors(value: str) -> list[str]:
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {msg}" for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a valid label key " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif _size(name) > QUALIFIED_NAME_MAX:
        errors.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _matches(_QUALIFIED_NAME, name):
        errors.append("name part " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT,
                                                 "MyName", "my.name", "123-abc"))
    return errors


def is_label_value(value: str) -> list[str]:
    if value in _valid_label_values:
        return []
    errors = _label_value_errors(value)
    if not errors:
        _remember_valid(_valid_label_values, value)
    return errors


def _label_value_errors(value: str) -> list[str]:
    errors = []
    if _size(value) > LABEL_VALUE_MAX:
        errors.append(max_len_error(LABEL_VALUE_MAX))
    if not _matches(_LABEL_VALUE, value):
        errors.append(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', "
            "'_' or '.', and must start and end with an alphanumeric character",
            _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def is_config_key(value: str) -> list[str]:
    """A key of a ConfigMap's or Secret's data: it becomes a file name in a volume."""
    errors = []
    if _size(value) > CONFIG_KEY_MAX:
        errors.append(max_len_error(CONFIG_KEY_MAX))
    if not _matches(_CONFIG_KEY, value):
        errors.append(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errors.append("must not be '.'")
    elif value == "..":
        errors.append("must not be '..'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def base64_error(value: str) -> str | None:
    """Why Go's standard base64 decoder refuses `value`, as its error says; None if it decodes.

    The standard alphabet with `=` padding; CR and LF are skipped wherever they appear.
    """
    alphabet = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    i, n = 0, len(value)

    def corrupt(at: int) -> str:
        return f"illegal base64 data at input byte {at}"

    while True:
        seen = 0
        while seen < 4:
            if i == n:
                if seen == 0:
                    return None
                return corrupt(i - seen)
            char = value[i]
            i += 1
            if char in "\r\n":
                continue
            if char in alphabet:
                seen += 1
                continue
            if char != "=" or seen < 2:
                return corrupt(i - 1)
            # Padding: `xx==` or `xxx=`, then nothing but line breaks.
            if seen == 2:
                while i < n and value[i] in "\r\n":
                    i += 1
                if i == n:
                    return corrupt(n)
                if value[i] != "=":
                    return corrupt(i - 1)
                i += 1
            while i < n and value[i] in "\r\n":
                i += 1
            return corrupt(i) if i < n else None


def decoded_size(value: str) -> int:
    """Bytes a valid standard-base64 string decodes to."""
    chars = sum(1 for c in value if c not in "\r\n=")
    return chars * 3 // 4


# --- name rules by kind ------------------------------------------------------------------------

NameRule = Callable[[str, bool], list[str]]
"""(name, is a generateName prefix) -> the reasons it is not a valid name for the kind."""


def _mask_trailing_dash(name: str) -> str:
    # Exactly what apimachinery's maskTrailingDash does (the last two characters become "a").
    return name[:-2] + "a" if name.endswith("-") else name


def name_is_dns1123_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1123_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def _cronjob_name(name: str, prefix: bool) -> list[str]:
    errors = name_is_dns1123_subdomain(name, prefix)
    if not prefix and _size(name) > CRONJOB_NAME_MAX:
        errors.append(max_len_error(CRONJOB_NAME_MAX))
    return errors


_RBAC = "rbac.authorization.k8s.io"

NAME_RULES: dict[tuple[str, str], NameRule] = {
    ("", "Namespace"): name_is_dns1123_label,
    ("", "Service"): name_is_dns1035_label,
    ("apps", "StatefulSet"): name_is_dns1123_label,
    ("batch", "CronJob"): _cronjob_name,
    (_RBAC, "Role"): is_path_segment_name,
    (_RBAC, "RoleBinding"): is_path_segment_name,
    (_RBAC, "ClusterRole"): is_path_segment_name,
    (_RBAC, "ClusterRoleBinding"): is_path_segment_name,
}
"""Kinds whose names follow another rule than the DNS-1123 subdomain every other kind has."""


def name_rule(group: str, kind: str) -> NameRule:
    return NAME_RULES.get((group, kind), name_is_dns1123_subdomain)


_SCOPE: dict[tuple[str, str], bool] = {(k.group, k.kind): k.namespaced for k in BUILTIN_KINDS}


# --- object problems ---------------------------------------------------------------------------

def object_problems(
    obj: Mapping[str, Any],
    namespaced: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Problem]:
    """Everything kube-apiserver refuses in `obj`, in the order it finds them.

    `namespaced` is the kind's scope when the caller knows it (the cluster does); by default a
    built-in kind's scope is known and any other kind's namespace is checked when it is set.
    A missing namespace is not a problem here: clients default it, the server's request has one.
    """
    group, _, _version = str(obj.get("apiVersion") or "").rpartition("/")
    kind = str(obj.get("kind") or "")
    if namespaced is None:
        namespaced = _SCOPE.get((group, kind), True)
    decoding = list(_decode_problems(obj, group, kind))
    if decoding:
        return decoding  # nothing is validated in a body that does not decode
    problems = list(_meta_problems(obj.get("metadata") or {}, group, kind, namespaced))
    problems.extend(_kind_problems(obj, group, kind))
    if not problems:
        problems.extend(size_problems(obj, limits))
    return problems


_META_READ = ("name", "generateName", "namespace", "labels", "annotations", "ownerReferences",
              "finalizers")
"""The metadata fields `object_problems` reads (decoding and `_meta_problems`)."""
_BODY_RULES = frozenset({("", "Secret"), ("", "ConfigMap"),
                         ("apiextensions.k8s.io", "CustomResourceDefinition")})
"""The kinds whose body `object_problems` reads (`_decode_problems`, `_kind_problems`)."""


def merged_object_problems(
    merged: Mapping[str, Any],
    checked: Mapping[str, Any],
    namespaced: bool,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Problem]:
    """`object_problems(merged, namespaced)`, for an object made by merging `checked` (an
    object of the same kind in which `object_problems` with the same `namespaced` found no
    problem) into another: when the kind has no rules for its body and every metadata field
    the checks read is equal in both (the merge stored `checked`'s values there, as a server-
    side apply does), the checks that read them would find nothing either, and only the size
    is left to check (it depends on the whole object)."""
    group, _, _version = str(merged.get("apiVersion") or "").rpartition("/")
    kind = str(merged.get("kind") or "")
    meta, checked_meta = merged.get("metadata"), checked.get("metadata")
    if (group, kind) in _BODY_RULES or kind != checked.get("kind") or group != str(
            checked.get("apiVersion") or "").rpartition("/")[0] or type(meta) is not dict \
            or type(checked_meta) is not dict or any(
                meta.get(field) != checked_meta.get(field) for field in _META_READ):
        return object_problems(merged, namespaced, limits)
    return size_problems(merged, limits)


def size_problems(obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """etcd refuses to store an object whose serialization exceeds its request limit."""
    if _surely_within(obj, limits.object_bytes):
        return []
    size = serialized_size(obj)
    if size <= limits.object_bytes:
        return []
    return [Problem("", f"etcdserver: request is too large (the object is {size} bytes as JSON; "
                        f"etcd stores at most {limits.object_bytes})", STORAGE)]


def _surely_within(obj: Mapping[str, Any], limit: int) -> bool:
    """Whether the object's JSON is certainly within `limit` bytes, known cheaply (on every
    write of the simulated cluster, where the JSON encoding took 4% of a first install).

    marshal format 0 writes every value in full (no back-references, unlike later formats) and
    JSON never takes more than 6 bytes for one of its bytes: a string's byte becomes at most
    a six-byte Unicode escape, true/false/null take 4-5 bytes for marshal's 1, a number at most
    24 for its 5 or 9, a key's quotes, colon and comma 4 for its type and length bytes. That
    holds for JSON data (dict, list, str, int, float, bool, None: what the YAML and JSON readers
    give); marshal writes a few other values in one byte (Ellipsis, StopIteration) that
    `default=str` spells out, so the bound is only for objects decoded from a document."""
    if not isinstance(obj, dict):
        return False
    size = marshal_size(obj)
    return size is not None and JSON_BYTES_PER_MARSHAL_BYTE * size <= limit


JSON_BYTES_PER_MARSHAL_BYTE = 6
"""At most this many bytes of JSON per byte of JSON data's `marshal_size` (`_surely_within`)."""


def marshal_size(value: Any) -> int | None:
    """The length of `value` in marshal format 0 (every value written in full), or None for data
    that is not JSON-like; its JSON takes at most `JSON_BYTES_PER_MARSHAL_BYTE` times as many
    bytes, so sizes of parts add up to a bound of the whole (`_surely_within`)."""
    try:
        return len(marshal.dumps(value, 0))
    except ValueError:  # not JSON-like data: measure it the long way
        return None


def serialized_size(obj: Mapping[str, Any]) -> int:
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode("utf-8", "surrogatepass"))


def rejection_message(obj: Mapping[str, Any], problems: list[Problem]) -> str:
    """The API server's error for a request with these problems (those of its first stage)."""
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    kind = str(obj.get("kind") or "")
    first = problems[0]
    same = [p for p in problems if p.stage == first.stage]
    if first.stage == DECODE:
        where = f"{group}/{version}" if group else version
        return (f"{kind} in version \"{where}\" cannot be handled as a {kind}: "
                + "; ".join(f"{p.message} ({p.field})" if p.field else p.message for p in same))
    if first.stage == STORAGE:
        return "; ".join(p.message for p in same)
    name = str((obj.get("metadata") or {}).get("name") or "")
    qualified = f"{kind}.{group}" if group else kind
    shown: list[str] = []
    for problem in same:  # the API server's aggregate drops repeated messages
        text = f"{problem.field or '[]'}: {problem.message}"
        if text not in shown:
            shown.append(text)
    body = shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"
    return f"{qualified} {json.dumps(name)} is invalid: {body}"


def _invalid(field: str, value: Any, detail: str) -> Problem:
    return Problem(field, f"Invalid value: {_go_value(value)}: {detail}")


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _cannot_unmarshal(value: Any, into: str, go_type: str) -> str:
    return (f"json: cannot unmarshal {_json_type(value)} into Go struct field {into} "
            f"of type {go_type}")


def _decode_problems(obj: Mapping[str, Any], group: str, kind: str) -> Iterator[Problem]:
    """What the API server's JSON decoder refuses: wrong types in metadata, bad base64."""
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        yield Problem("metadata", _cannot_unmarshal(metadata, f"{kind}.metadata", "v1.ObjectMeta"),
                      DECODE)
        return
    metadata = metadata or {}
    for field in ("name", "generateName", "namespace"):
        value = metadata.get(field)
        if value is not None and not isinstance(value, str):
            yield Problem(f"metadata.{field}", _cannot_unmarshal(
                value, f"ObjectMeta.metadata.{field}", "string"), DECODE)
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            yield Problem(f"metadata.{field}", _cannot_unmarshal(
                values, f"ObjectMeta.metadata.{field}", "map[string]string"), DECODE)
            continue
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                yield Problem(f"metadata.{field}[{key}]", _cannot_unmarshal(
                    value, f"ObjectMeta.metadata.{field}", "string"), DECODE)
    refs = metadata.get("ownerReferences")
    if refs is not None:
        if not isinstance(refs, list):
            yield Problem("metadata.ownerReferences", _cannot_unmarshal(
                refs, "ObjectMeta.metadata.ownerReferences", "[]v1.OwnerReference"), DECODE)
        else:
            for i, ref in enumerate(refs):
                if not isinstance(ref, Mapping):
                    yield Problem(f"metadata.ownerReferences[{i}]", _cannot_unmarshal(
                        ref, "ObjectMeta.metadata.ownerReferences", "v1.OwnerReference"), DECODE)
                    continue
                for key in ("apiVersion", "kind", "name", "uid"):
                    if ref.get(key) is not None and not isinstance(ref[key], str):
                        yield Problem(f"metadata.ownerReferences[{i}].{key}", _cannot_unmarshal(
                            ref[key], f"OwnerReference.metadata.ownerReferences.{key}",
                            "string"), DECODE)
                for key in ("controller", "blockOwnerDeletion"):
                    if ref.get(key) is not None and not isinstance(ref[key], bool):
                        yield Problem(f"metadata.ownerReferences[{i}].{key}", _cannot_unmarshal(
                            ref[key], f"OwnerReference.metadata.ownerReferences.{key}", "bool"),
                            DECODE)
    finalizers = metadata.get("finalizers")
    if finalizers is not None and (not isinstance(finalizers, list)
                                   or not all(isinstance(f, str) for f in finalizers)):
        yield Problem("metadata.finalizers", _cannot_unmarshal(
            finalizers, "ObjectMeta.metadata.finalizers", "[]string"), DECODE)
    if group != "" or kind not in ("Secret", "ConfigMap"):
        return
    byte_fields = ("data",) if kind == "Secret" else ("binaryData",)
    string_fields = ("stringData",) if kind == "Secret" else ("data",)
    for field in byte_fields + string_fields:
        values = obj.get(field)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            go_type = "map[string][]uint8" if field in byte_fields else "map[string]string"
            yield Problem(field, _cannot_unmarshal(values, f"{kind}.{field}", go_type), DECODE)
            continue
        for key, value in values.items():
            if value is None:
                continue
            if not isinstance(value, str):
                go_type = "[]uint8" if field in byte_fields else "string"
                yield Problem(f"{field}[{key}]", _cannot_unmarshal(
                    value, f"{kind}.{field}", go_type), DECODE)
            elif field in byte_fields and (error := base64_error(value)) is not None:
                yield Problem(f"{field}[{key}]", error, DECODE)


def _meta_problems(
    metadata: Mapping[str, Any], group: str, kind: str, namespaced: bool
) -> Iterator[Problem]:
    """ValidateObjectMeta with the kind's name rule."""
    rule = name_rule(group, kind)
    generate_name = str(metadata.get("generateName") or "")
    name = str(metadata.get("name") or "")
    if generate_name:
        for message in rule(generate_name, True):
            yield _invalid("metadata.generateName", generate_name, message)
    if name:
        for message in rule(name, False):
            yield _invalid("metadata.name", name, message)
    elif not generate_name:
        yield Problem("metadata.name", "Required value: name or generateName is required")
    namespace = str(metadata.get("namespace") or "")
    if namespace and namespaced:
        for message in name_is_dns1123_label(namespace, False):
            yield _invalid("metadata.namespace", namespace, message)
    labels = metadata.get("labels") or {}
    for key, value in labels.items():
        for message in is_qualified_name(str(key)):
            yield _invalid("metadata.labels", str(key), message)
        for message in is_label_value("" if value is None else str(value)):
            yield _invalid("metadata.labels", "" if value is None else str(value), message)
    annotations = metadata.get("annotations") or {}
    total = 0
    for key, value in annotations.items():
        # A qualified name, except that case does not matter.
        for message in is_qualified_name(str(key).lower()):
            yield _invalid("metadata.annotations", str(key), message)
        total += _size(str(key)) + _size("" if value is None else str(value))
    if total > TOTAL_ANNOTATION_BYTES:
        yield Problem("metadata.annotations",
                      f"Too long: may not be more than {TOTAL_ANNOTATION_BYTES} bytes")
    yield from _owner_reference_problems(metadata.get("ownerReferences") or [])
    yield from _finalizer_problems(metadata.get("finalizers") or [])


def _owner_reference_problems(refs: Any) -> Iterator[Problem]:
    field = "metadata.ownerReferences"
    if not isinstance(refs, list):
        return
    controller = ""
    for ref in refs:
        if not isinstance(ref, Mapping):
            continue
        api_version = str(ref.get("apiVersion") or "")
        if not api_version.rpartition("/")[2]:
            yield _invalid(f"{field}.apiVersion", api_version, "version must not be empty")
        for key in ("kind", "name", "uid"):
            if not str(ref.get(key) or ""):
                yield _invalid(f"{field}.{key}", "", "must not be empty")
        if api_version == "v1" and ref.get("kind") == "Event":
            yield _invalid(field, dict(ref), "/v1, Kind=Event is disallowed from being an owner")
        if ref.get("controller") is True:
            this = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                yield _invalid(field, refs, "Only one reference can have Controller set to true. "
                                            f"Found \"true\" in references for {controller} and "
                                            f"{this}")
            else:
                controller = this


def _finalizer_problems(finalizers: Any) -> Iterator[Problem]:
    if not isinstance(finalizers, list):
        return
    for finalizer in finalizers:
        for message in is_qualified_name(str(finalizer)):
            yield _invalid("metadata.finalizers", str(finalizer), message)
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        yield _invalid("metadata.finalizers", finalizers,
                       "finalizer orphan and foregroundDeletion cannot be both set")


def _kind_problems(obj: Mapping[str, Any], group: str, kind: str) -> Iterator[Problem]:
    if group == "" and kind == "Secret":
        yield from _secret_problems(obj)
    elif group == "" and kind == "ConfigMap":
        yield from _configmap_problems(obj)
    elif group == "apiextensions.k8s.io" and kind == "CustomResourceDefinition":
        spec: Mapping[str, Any] = obj["spec"] if isinstance(obj.get("spec"), Mapping) else {}
        names: Mapping[str, Any] = (spec["names"] if isinstance(spec.get("names"), Mapping)
                                    else {})
        name = str((obj.get("metadata") or {}).get("name") or "")
        expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
        if name and name != expected:
            yield _invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group")
        yield from _crd_spec_problems(obj.get("spec"))


def _crd_spec_problems(spec: Any) -> Iterator[Problem]:
    """The structure apiextensions-apiserver requires of a CRD's spec (the part the served API
    is built from): a group, names, a scope, and versions with exactly one storage version."""
    if not isinstance(spec, Mapping):
        yield Problem("spec", "Required value" if spec is None
                      else f"Invalid value: {_go_value(spec)}: must be an object")
        return
    if not isinstance(spec.get("group"), str) or not spec.get("group"):
        yield Problem("spec.group", "Required value")
    names = spec.get("names")
    if not isinstance(names, Mapping):
        yield Problem("spec.names", "Required value")
    else:
        for key in ("kind", "plural"):
            if not isinstance(names.get(key), str) or not names.get(key):
                yield Problem(f"spec.names.{key}", "Required value")
        for key in ("singular", "listKind"):
            if names.get(key) is not None and not isinstance(names.get(key), str):
                yield _invalid(f"spec.names.{key}", names[key], "must be a string")
        for key in ("shortNames", "categories"):
            values = names.get(key)
            if values is not None and (not isinstance(values, list)
                                       or not all(isinstance(v, str) for v in values)):
                yield _invalid(f"spec.names.{key}", values, "must be a list of strings")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        yield Problem("spec.scope", f"Unsupported value: {_go_value(spec.get('scope'))}: "
                                    'supported values: "Cluster", "Namespaced"')
    versions = spec.get("versions")
    if versions is None or versions == []:
        yield Problem("spec.versions", "Required value")
        return
    if not isinstance(versions, list):
        yield _invalid("spec.versions", versions, "must be a list of versions")
        return
    storage = 0
    for i, version in enumerate(versions):
        field = f"spec.versions[{i}]"
        if not isinstance(version, Mapping):
            yield _invalid(field, version, "must be an object")
            continue
        if not isinstance(version.get("name"), str) or not version.get("name"):
            yield Problem(f"{field}.name", "Required value")
        for key in ("served", "storage"):
            if version.get(key) is not None and not isinstance(version[key], bool):
                yield _invalid(f"{field}.{key}", version[key], "must be a boolean")
        storage += version.get("storage") is True
        schema = version.get("schema")
        if schema is not None and (not isinstance(schema, Mapping) or not isinstance(
                schema.get("openAPIV3Schema", {}), Mapping)):
            yield _invalid(f"{field}.schema.openAPIV3Schema", schema, "must be an object")
        columns = version.get("additionalPrinterColumns")
        if columns is not None and (not isinstance(columns, list) or not all(
                isinstance(c, Mapping) for c in columns)):
            yield _invalid(f"{field}.additionalPrinterColumns", columns,
                           "must be a list of objects")
    if storage != 1:
        yield Problem("spec.versions", "Invalid value: must have exactly one version marked as "
                                       "storage version")


def _secret_problems(secret: Mapping[str, Any]) -> Iterator[Problem]:
    sizes: dict[str, int] = {}
    for field in ("data", "stringData"):
        for key, value in (secret.get(field) or {}).items():
            for message in is_config_key(str(key)):
                yield _invalid(f"{field}[{key}]", str(key), message)
            text = "" if value is None else str(value)
            # stringData is merged into data (and wins) before the size is counted.
            sizes[str(key)] = decoded_size(text) if field == "data" else _size(text)
    if sum(sizes.values()) > MAX_SECRET_BYTES:
        yield Problem("data", f"Too long: may not be more than {MAX_SECRET_BYTES} bytes")


def _configmap_problems(configmap: Mapping[str, Any]) -> Iterator[Problem]:
    data = configmap.get("data") or {}
    binary = configmap.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        for message in is_config_key(str(key)):
            yield _invalid(f"data[{key}]", str(key), message)
        if key in binary:
            yield _invalid(f"data[{key}]", str(key), "duplicate of key present in binaryData")
        total += _size("" if value is None else str(value))
    for key, value in binary.items():
        for message in is_config_key(str(key)):
            yield _invalid(f"binaryData[{key}]", str(key), message)
        if key in data:
            yield _invalid(f"binaryData[{key}]", str(key), "duplicate of key present in data")
        total += decoded_size("" if value is None else str(value))
    if total > MAX_SECRET_BYTES:
        yield Problem("[]", f"Too long: may not be more than {MAX_SECRET_BYTES} bytes")
