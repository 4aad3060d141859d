"""The verbs: one request (method, path, query, headers, body) to one response.

Everything here is transport-free, so it is tested without sockets; `server` owns HTTP. The
body has been read (and bounded) already; it is decoded here with the bounded JSON and YAML
loaders, so a client's document can be neither too deep nor too large.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.errors import LoadError
from reconciler.model.objects import Obj
from reconciler.model.yamlsafe import load_json_bounded, load_yaml
from simulator.apiserver import discovery, errors, fieldvalidation, openapi, protobuf, tables
from simulator.apiserver.errors import ApiError
from simulator.apiserver.fieldvalidation import FieldCheck
from simulator.apiserver.routing import BadPath, Discovery, Route, route, split
from simulator.apiserver.selectors import Matcher, field_matcher, label_matcher
from simulator.apiserver.store import (
    APPLY,
    APPLY_CBOR,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    Store,
    Target,
)
from simulator.apiserver.watch import WatchRequest, stream

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
CBOR = "application/cbor"
TABLE_CONTENT = "application/json;as=Table;v=v1;g=meta.k8s.io"
VERSION = {"major": "1", "minor": "35", "gitVersion": "v1.35.0-reconciler",
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
           "platform": "linux/amd64"}
HEALTH = ("healthz", "livez", "readyz")
PUBLIC = {"version", *HEALTH}
"""Paths anyone may read, as kube-apiserver's system:public-info-viewer role allows."""


@dataclass
class Request:
    method: str
    target: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class Response:
    code: int
    body: Any = None
    content_type: str = JSON
    stream: Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Api:
    def __init__(self, store: Store, address: str, stopping: Callable[[], bool],
                 ready: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.address = address
        self.stopping = stopping
        self.ready = ready

    def handle(self, request: Request) -> Response:
        try:
            segments, query = split(request.target)
            return self._dispatch(request, segments, query)
        except ApiError as exc:
            return Response(exc.code, exc.status())
        except BadPath as exc:
            return Response(404, errors.status_body(404, f"the server could not find the "
                                                         f"requested resource ({exc})",
                                                    "NotFound"))

    # --- dispatch --------------------------------------------------------------------------

    def _dispatch(self, request: Request, segments: list[str], query: dict[str, str]
                  ) -> Response:
        method = request.method
        if len(segments) == 1 and segments[0] in HEALTH:
            if segments[0] == "readyz" and not self.ready():
                return Response(503, b"[-]ready failed: the cluster is starting or stopping\n",
                                "text/plain; charset=utf-8")
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if segments == ["version"]:
            return Response(200, VERSION)
        if segments[:1] == ["openapi"]:
            return self._openapi(segments[1:], request.headers.get("accept", ""))
        found = route(segments)
        if found is None:
            raise _no_resource()
        if isinstance(found, Discovery):
            if method != "GET":
                raise errors.method_not_allowed(method)
            return self._discovery(found, request.headers.get("accept", ""))
        return self._resource(request, found, query)

    def _discovery(self, found: Discovery, accept: str) -> Response:
        types = self.store.locked(self.store.catalog.types)
        if found.kind in ("legacy", "groups") and discovery.wants_aggregated(accept):
            return Response(200, discovery.aggregated(types, legacy=found.kind == "legacy"),
                            discovery.AGGREGATED)
        body: Any
        if found.kind == "legacy":
            body = discovery.api_versions(self.address)
        elif found.kind == "groups":
            body = discovery.group_list(types)
        elif found.kind == "group":
            body = discovery.api_group(types, found.group)
        else:
            body = discovery.resource_list(types, found.group, found.version)
        if body is None:
            raise _no_resource()
        return Response(200, body)

    def _openapi(self, rest: list[str], accept: str) -> Response:
        types = self.store.locked(self.store.catalog.types)
        if rest == ["v2"]:
            if "protobuf" in accept and "json" not in accept:
                raise ApiError(406, "only application/json is served", "NotAcceptable")
            return Response(200, openapi.v2_document(types))
        if rest == ["v3"]:
            return Response(200, openapi.v3_index(types))
        if rest[:1] == ["v3"]:
            doc = openapi.v3_document(types, "/".join(rest[1:]))
            if doc is not None:
                return Response(200, doc, headers={"Cache-Control": "no-cache, private",
                                                   "Etag": f'"{openapi.digest(doc)}"'})
        raise _no_resource()

    def _resource(self, request: Request, r: Route, query: dict[str, str]) -> Response:
        t = self.store.locked(lambda: self.store.catalog.find(r.group, r.version, r.resource))
        if t is None:
            raise _no_resource()
        if r.namespace is not None and not t.namespaced:
            raise _no_resource()
        if r.subresource and (r.subresource != "status" or not t.status):
            raise _no_resource()
        target = Target(t, r.version, r.namespace or "")
        method = request.method
        dry_run = _dry_run(query)
        manager = query.get("fieldManager") or _manager(request.headers.get("user-agent", ""))
        if len(manager) > 128:
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", "fieldManager: Too long: "
                                 "may not be more than 128 bytes", "fieldManager")
        accept = request.headers.get("accept", "")
        watching = r.watch_path or query.get("watch") in ("1", "true", "True")
        if t.namespaced and r.namespace is None and (r.name or method not in ("GET",)):
            raise _no_resource()
        if not r.name:
            if method == "GET":
                return self._watch(target, r, query, accept) if watching else self._list(
                    target, r, query, accept)
            if method == "POST":
                fields = FieldCheck(fieldvalidation.directive(query, "CreateOptions"))
                body = _decode(request, fields=fields)
                return _warned(Response(201, self.store.create(target, body, manager, dry_run,
                                                               fields)), fields)
            if method == "DELETE":
                return self._delete_collection(target, r, query, request, dry_run)
            raise errors.method_not_allowed(method)
        if method == "GET":
            if watching:
                return self._watch(target, r, query, accept)
            obj = self.store.get(target, r.name)
            return self._one(target, obj, accept, query)
        if method == "PUT":
            fields = FieldCheck(fieldvalidation.directive(query, "UpdateOptions"))
            body = _decode(request, fields=fields)
            return _warned(Response(200, self.store.update(target, r.name, body, manager,
                                                           dry_run, r.subresource, fields)),
                           fields)
        if method == "PATCH":
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type not in (MERGE, JSON_PATCH, STRATEGIC, APPLY):
                if content_type == APPLY_CBOR:
                    raise errors.unsupported_media_type(content_type)
                raise errors.unsupported_media_type(content_type)
            fields = FieldCheck(fieldvalidation.directive(query, "PatchOptions"))
            patch = _decode(request, yaml_body=content_type == APPLY, fields=fields)
            force = query.get("force") in ("true", "1")
            if force and content_type != APPLY:
                raise errors.bad_request("force is only allowed for apply patches")
            obj, created = self.store.patch(target, r.name, content_type, patch, manager, force,
                                            dry_run, r.subresource, fields)
            return _warned(Response(201 if created else 200, obj), fields)
        if method == "DELETE":
            options = _delete_options(request, query)
            dry_run = dry_run or options.get("dryRun") == ["All"]
            obj, gone = self.store.delete(target, r.name, options, dry_run)
            if not gone:
                # Still there (finalizers, foreground dependents): the object, as kube answers;
                # 202 only when orphanDependents=false asked for a cascade.
                code = 202 if options.get("orphanDependents") is False else 200
                return Response(code, obj)
            if t.custom:
                return Response(200, obj)
            meta = obj.get("metadata") or {}
            return Response(200, errors.success_status(r.name, t.group, t.plural,
                                                       str(meta.get("uid", ""))))
        raise errors.method_not_allowed(method)

    # --- reads ------------------------------------------------------------------------------

    def _one(self, target: Target, obj: Obj, accept: str, query: dict[str, str]) -> Response:
        if tables.wants_table(accept):
            return Response(200, tables.table(target.type, [obj], self._now(),
                                              query.get("includeObject", "Metadata"),
                                              str(obj["metadata"].get("resourceVersion", ""))),
                            TABLE_CONTENT)
        return Response(200, obj)

    def _list(self, target: Target, r: Route, query: dict[str, str], accept: str) -> Response:
        t = target.type
        matches = _matcher(target, query)
        limit = _int(query.get("limit", "0"), "limit")
        page = self.store.list(target, r.namespace, matches, limit, query.get("continue", ""))
        if tables.wants_table(accept):
            return Response(200, tables.table(t, page.items, self._now(),
                                              query.get("includeObject", "Metadata"),
                                              str(page.revision), page.continue_token),
                            TABLE_CONTENT)
        meta: dict[str, Any] = {"resourceVersion": str(page.revision)}
        if page.continue_token:
            meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
        items = [{**o, "apiVersion": target.api_version, "kind": t.kind} for o in page.items]
        return Response(200, {"kind": t.list_kind, "apiVersion": target.api_version,
                              "metadata": meta, "items": items})

    def _watch(self, target: Target, r: Route, query: dict[str, str], accept: str) -> Response:
        matches = _matcher(target, query, name=r.name)
        include = query.get("includeObject", "Metadata")
        as_table = tables.wants_table(accept)

        def render(obj: Obj) -> Any:
            if as_table:
                return tables.table(target.type, [obj], self._now(), include,
                                    str(obj["metadata"].get("resourceVersion", "")))
            return obj

        initial = query.get("sendInitialEvents")
        watch = WatchRequest(
            target, r.namespace, matches, query.get("resourceVersion", ""),
            query.get("allowWatchBookmarks") in ("true", "1"),
            None if initial is None else initial in ("true", "1"),
            float(_int(query.get("timeoutSeconds", "1800"), "timeoutSeconds")), render)
        content = TABLE_CONTENT if as_table else JSON
        return Response(200, stream=stream(self.store, watch, self.stopping),
                        content_type=content)

    def _delete_collection(self, target: Target, r: Route, query: dict[str, str],
                           request: Request, dry_run: bool) -> Response:
        t = target.type
        options = _delete_options(request, query)
        dry_run = dry_run or options.get("dryRun") == ["All"]
        page = self.store.list(target, r.namespace, _matcher(target, query), 0, "")
        deleted = []
        for obj in page.items:
            meta = obj.get("metadata") or {}
            one = Target(t, target.version, str(meta.get("namespace") or ""))
            try:
                deleted.append(self.store.delete(one, str(meta.get("name")), options,
                                                 dry_run)[0])
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return Response(200, {"kind": t.list_kind, "apiVersion": target.api_version,
                              "metadata": {"resourceVersion": str(page.revision)},
                              "items": deleted})

    def _now(self) -> float:
        return float(self.store.cluster.clock.now())


def _no_resource() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound")


def _warned(response: Response, fields: FieldCheck) -> Response:
    """The response with the request's field warnings, in one `Warning` header."""
    if fields.warnings:
        response.headers["Warning"] = fieldvalidation.warning_header(fields.warnings)
    return response


def _decode(request: Request, yaml_body: bool = False, fields: FieldCheck | None = None) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, "Request entity too large: limit is 3145728",
                       "RequestEntityTooLarge")
    if content_type == PROTOBUF and not yaml_body:
        try:
            return protobuf.decode(request.body)
        except protobuf.ProtobufError as exc:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                                f"media types include: application/json, application/yaml "
                                f"({exc})", "UnsupportedMediaType") from exc
    if content_type in (PROTOBUF, CBOR):
        raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                            f"media types include: application/json, application/yaml (the "
                            f"simulated cluster does not decode {content_type})",
                       "UnsupportedMediaType")
    if yaml_body and request.body.lstrip()[:1] == b"{":
        # An apply body in JSON (what client-go and the Python client send): JSON is YAML,
        # and its reader is many times faster than the YAML composer. Anything it refuses
        # goes to the YAML reader, which decides as before.
        with contextlib.suppress(LoadError):
            return load_json_bounded(request.body, "request body", max_bytes=MAX_BODY_BYTES)
    try:
        if yaml_body:
            return load_yaml(request.body, "request body")
        return load_json_bounded(request.body, "request body", max_bytes=MAX_BODY_BYTES)
    except LoadError as exc:
        if fields is not None and not yaml_body and "duplicate key" in str(exc):
            # Repeated keys are the directive's to judge (Strict refuses them, Warn reports
            # them, Ignore keeps the last value), once size and depth have been checked.
            if fields.directive != fieldvalidation.IGNORE:
                fields.duplicates = fieldvalidation.duplicate_paths(request.body)
            return fieldvalidation.load_lenient(request.body)
        raise errors.bad_request(f"error decoding the request body: {exc}") from exc


def _delete_options(request: Request, query: Mapping[str, str]) -> dict[str, Any]:
    """DeleteOptions from the body, or from the query (where kubectl and client-go may put
    `propagationPolicy`, `gracePeriodSeconds`, `orphanDependents`)."""
    options = _decode(request) if request.body.strip() else {}
    if not isinstance(options, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    options = dict(options)
    if "propagationPolicy" in query and "propagationPolicy" not in options:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query and "orphanDependents" not in options:
        options["orphanDependents"] = query["orphanDependents"] in ("true", "1")
    if "gracePeriodSeconds" in query and "gracePeriodSeconds" not in options:
        options["gracePeriodSeconds"] = _int(query["gracePeriodSeconds"], "gracePeriodSeconds")
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in ("Background", "Foreground", "Orphan"):
        raise errors.invalid("DeleteOptions", "meta.k8s.io", "",
                             f"propagationPolicy: Unsupported value: {json.dumps(policy)}: "
                             'supported values: "Foreground", "Background", "Orphan"',
                             "propagationPolicy")
    return options


def _dry_run(query: Mapping[str, str]) -> bool:
    value = query.get("dryRun")
    if value is None or value == "":
        return False
    if value != "All":
        raise errors.bad_request(f"Invalid dry run value: {value!r} (only \"All\" is "
                                 "supported)")
    return True


def _manager(user_agent: str) -> str:
    """The default field manager: the User-Agent up to its first `/`, as the API server takes."""
    head = user_agent.split("/", 1)[0].strip()
    return head[:128] or "unknown"


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise errors.bad_request(f"{name}: expected an integer, got {value!r}") from exc
    if number < 0:
        raise errors.bad_request(f"{name}: must be non-negative")
    return number


def _matcher(target: Target, query: Mapping[str, str], name: str = "") -> Matcher:
    labels = label_matcher(query.get("labelSelector", ""))
    fields = field_matcher(query.get("fieldSelector", ""), target.type.group, target.type.kind)

    def matches(obj: Mapping[str, Any]) -> bool:
        if name and (obj.get("metadata") or {}).get("name") != name:
            return False
        return labels(obj) and fields(obj)
    return matches
