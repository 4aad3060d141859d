"""Decoding the protobuf bodies kubectl sends to the authentication and authorization APIs.

kubectl's typed clients (`auth can-i`, `auth whoami`, `create token`) post
`application/vnd.kubernetes.protobuf`: the `k8s\\x00` magic, then a `runtime.Unknown`
(typeMeta, raw) whose raw bytes are the object. Only the messages these APIs take are known
here, by their field numbers in k8s.io/api's generated.proto, decoded into the same dicts the
JSON body would give; unknown fields are skipped. The decoder is bounded by its schema (no
recursion beyond it) and by the body size the server already enforces.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# message -> field number -> (json name, type, repeated); a type is "string", "int", "bool",
# "map:MESSAGE" (a map<string, MESSAGE> entry) or another message's name.
Field = tuple[str, str, bool]
SCHEMA: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "bytes", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {1: ("name", "string", False), 2: ("generateName", "string", False),
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
        5: ("extra", "map:ExtraValue", True), 6: ("uid", "string", False)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", False)},
    "TokenReviewSpec": {1: ("token", "string", False), 2: ("audiences", "string", True)},
    "BoundObjectReference": {1: ("kind", "string", False), 2: ("apiVersion", "string", False),
                             3: ("name", "string", False), 4: ("uid", "string", False)},
    "TokenRequestSpec": {1: ("audiences", "string", True),
                         3: ("boundObjectRef", "BoundObjectReference", False),
                         4: ("expirationSeconds", "int", False)},
    "map:ExtraValue": {1: ("key", "string", False), 2: ("value", "ExtraValue", False)},
}
SPECS = {"SelfSubjectAccessReview": "SelfSubjectAccessReviewSpec",
         "SubjectAccessReview": "SubjectAccessReviewSpec",
         "LocalSubjectAccessReview": "SubjectAccessReviewSpec",
         "SelfSubjectRulesReview": "SelfSubjectRulesReviewSpec",
         "TokenReview": "TokenReviewSpec", "TokenRequest": "TokenRequestSpec",
         "SelfSubjectReview": ""}
for _kind, _spec in SPECS.items():
    SCHEMA[_kind] = {1: ("metadata", "ObjectMeta", False)}
    if _spec:
        SCHEMA[_kind][2] = ("spec", _spec, False)


class ProtoError(ValueError):
    pass


def decode_object(data: bytes) -> dict[str, Any]:
    """A `k8s\\x00`-framed review or TokenRequest as its JSON form."""
    if not data.startswith(MAGIC):
        raise ProtoError("the body does not start with the Kubernetes protobuf magic")
    unknown = _message(data[len(MAGIC):], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    kind = str(type_meta.get("kind") or "")
    if kind not in SPECS:
        raise ProtoError(f"cannot decode a {kind or 'body without a kind'} from protobuf")
    obj = _message(bytes(unknown.get("raw") or b""), kind)
    return {"apiVersion": type_meta.get("apiVersion"), "kind": kind, **obj}


def _message(data: bytes, name: str) -> dict[str, Any]:
    fields = SCHEMA[name]
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
            if pos + length > len(data):
                raise ProtoError("a field runs past the end of the body")
            payload, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            pos += 8
            continue
        elif wire == 5:
            pos += 4
            continue
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        spec = fields.get(number)
        if spec is None:
            continue
        json_name, kind, repeated = spec
        value = _value(kind, wire, payload)
        if kind.startswith("map:"):
            out.setdefault(json_name, {})[str(value.get("key", ""))] = value.get("value")
        elif repeated:
            out.setdefault(json_name, []).append(value)
        else:
            out[json_name] = value
    return out


def _value(kind: str, wire: int, payload: Any) -> Any:
    if kind == "int" or kind == "bool":
        if wire != 0:
            raise ProtoError(f"expected a varint for a {kind}")
        if kind == "bool":
            return bool(payload)
        return payload - (1 << 64) if payload >= 1 << 63 else payload
    if wire != 2:
        raise ProtoError(f"expected bytes for a {kind}")
    if kind == "bytes":
        return payload
    if kind == "string":
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtoError("a string is not UTF-8") from exc
    message = _message(payload, kind)
    if kind == "ExtraValue":
        return message.get("items", [])
    return message


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    for _ in range(10):
        if pos >= len(data):
            raise ProtoError("a varint runs past the end of the body")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ProtoError("a varint is longer than 10 bytes")
