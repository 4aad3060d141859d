"""The API's view of the simulated cluster: kube-apiserver's verbs over `InMemoryCluster`.

The in-memory cluster offers create, update (both with managedFields operation Update),
server-side apply, status writes and deletion with finalizers, propagation and preconditions;
this adapter adds what the HTTP API promises on top: the three patch types, dry runs, list
selectors and pages, the change log watches read, and `events.k8s.io/v1` Events as a view of
the core ones.

One lock guards the cluster: the in-process controllers (`reconciler.daemon.inprocess`: their
workers' every call, their tick) take the same one, so an HTTP request never sees half a
controller's write and the controllers never see half a request. Every method here takes it.
A dry run does the same work on a scratch cluster holding only what the request
touches (the namespace, the CRD, the live object), so nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.conflicts import ApplyConflict
from reconciler.model.errors import NotFound, Rejected
from reconciler.model.objects import Obj, deep_copy
from simulator.apiserver import errors, events, fieldvalidation
from simulator.apiserver.changes import ChangeLog
from simulator.apiserver.errors import ApiError
from simulator.apiserver.fieldvalidation import FieldCheck
from simulator.apiserver.patches import json_patch, merge_patch, strategic_merge_patch
from simulator.apiserver.resources import CRD_API, Catalog, ResourceType
from simulator.apiserver.selectors import Matcher
from simulator.cluster import AlreadyExists, Forbidden, InMemoryCluster, ObjectView, StaleVersion

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"


@dataclass(frozen=True)
class Target:
    """The resource a request names, at the version asked for."""

    type: ResourceType
    version: str
    namespace: str  # "" for cluster-scoped kinds

    @property
    def api_version(self) -> str:
        return self.type.api_version(self.version)

    @property
    def events_v1(self) -> bool:
        """events.k8s.io Events: served from the core Events, converted."""
        return (self.type.group, self.type.kind) == (events.GROUP, "Event")

    @property
    def stored(self) -> Target:
        """The target whose objects are stored (core/v1 for events.k8s.io Events)."""
        if not self.events_v1:
            return self
        core = ResourceType("", ("v1",), "Event", "events", "event", True)
        return Target(core, "v1", self.namespace)

    def view(self, obj: Obj) -> Obj:
        """A stored object as this target serves it."""
        return events.to_events_v1(obj) if self.events_v1 else obj


@dataclass(frozen=True)
class Page:
    items: list[Obj]
    revision: int
    continue_token: str
    remaining: int | None


class Store:
    def __init__(self, cluster: InMemoryCluster, lock: threading.Lock | threading.RLock) -> None:
        self.cluster = cluster
        self.lock = lock
        self.catalog = Catalog(cluster)
        self.changes = ChangeLog(cluster, lock)

    def locked(self, work: Callable[[], Any]) -> Any:
        with self.lock:
            return work()

    def scan(self) -> None:
        with self.lock:
            self.changes.scan()

    # --- reads -----------------------------------------------------------------------------

    def get(self, target: Target, name: str) -> Obj:
        with self.lock:
            return target.view(self._live(target.stored, name))

    def current(self, target: Target, namespace: str | None) -> tuple[list[Mapping[str, Any]],
                                                                       int]:
        """Every object of `target`'s kind (in `namespace`, or all) as `target` serves it, and
        the resourceVersion they are current at; the caller holds the lock.

        The stored objects themselves behind read-only views (`ObjectView`), not copies: they
        follow later writes, so the caller copies (`served`) what it keeps before it lets the
        lock go. A list of 10,000 objects served in pages of 500 thus copies each object once,
        not once per page (Events, kept apart from the other kinds, are copies already)."""
        stored = target.stored
        t = stored.type
        scope = namespace if t.namespaced else None
        if (t.group, t.kind) == ("", "Event"):
            events_ = self.cluster.list(stored.api_version, t.kind, scope)
            events_ += [e for e in self.cluster.events() if namespace is None or
                        (e.get("metadata") or {}).get("namespace") == namespace]
            return [target.view(e) for e in events_], self.cluster.resource_version
        objects: list[Mapping[str, Any]] = list(
            self.cluster.views(stored.api_version, t.kind, scope))
        return objects, self.cluster.resource_version

    def served(self, target: Target, obj: Mapping[str, Any]) -> Obj:
        """A mutable copy of an object `current` gave, at the stored api version as a list
        serves it; the caller holds the lock."""
        if isinstance(obj, ObjectView):
            out = obj.copy()
            out["apiVersion"] = target.stored.api_version
            return out
        return obj if isinstance(obj, dict) else deep_copy(dict(obj))

    def list(self, target: Target, namespace: str | None, matches: Matcher, limit: int,
             continue_token: str) -> Page:
        """One page of the matching objects, in (namespace, name) order; only the page's
        objects are copied."""
        start = _decode_continue(continue_token) if continue_token else None
        with self.lock:
            self.changes.scan()
            objects, revision = self.current(target, namespace)
            found = sorted(((_position(o), o) for o in objects if matches(o)),
                           key=lambda entry: entry[0])
            if start is not None:
                found = found[bisect.bisect_right(found, start, key=lambda e: e[0]):]
            token, remaining = "", None
            if limit > 0 and len(found) > limit:
                remaining = len(found) - limit
                found = found[:limit]
                token = _encode_continue(revision, found[-1][0])
            items = [self.served(target, o) for _, o in found]
        return Page(items, revision, token, remaining)

    # --- writes ----------------------------------------------------------------------------

    def create(self, target: Target, body: Obj, manager: str, dry_run: bool,
               fields: FieldCheck | None = None) -> Obj:
        t = target.type
        if fields is not None:
            body = fields.decoded(t, target.version, body)
        obj = self._body(target, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{_suffix()}"
        if meta.get("resourceVersion"):
            raise errors.invalid(t.kind, t.group, str(meta.get("name") or ""),
                                 "metadata.resourceVersion: Invalid value: "
                                 f"{json.dumps(meta['resourceVersion'])}: must be empty "
                                 "on create", "metadata.resourceVersion")
        name = str(meta.get("name") or "")
        if not name:
            raise errors.invalid(t.kind, t.group, "", "metadata.name: Required value: name or "
                                 "generateName is required", "metadata.name")
        if target.events_v1:
            obj = events.to_core(obj)
        stored = target.stored
        with self.lock:
            cluster = self._scratch(stored, None) if dry_run else self.cluster
            created: Obj = self._call(target, name, lambda: cluster.create(obj, manager))
            self._written(dry_run)
            created = target.view(created)
            return _dry(created, None) if dry_run else created

    def update(self, target: Target, name: str, body: Obj, manager: str, dry_run: bool,
               subresource: str = "", fields: FieldCheck | None = None) -> Obj:
        if fields is not None:
            body = fields.decoded(target.type, target.version, body)
        obj = self._body(target, body)
        self._same_name(target, obj, name)
        with self.lock:
            live = target.view(self._live(target.stored, name))
            self._check_version(target, name, live, obj)
            return self._store(target, name, obj, live, manager, dry_run, subresource)

    def patch(self, target: Target, name: str, patch_type: str, patch: Any, manager: str,
              force: bool, dry_run: bool, subresource: str = "",
              fields: FieldCheck | None = None) -> tuple[Obj, bool]:
        """The patched object, and whether it was created (an apply of a new object)."""
        t = target.type
        if patch_type == STRATEGIC and t.custom:
            raise ApiError(415, "the body of the request was in an unknown format - accepted "
                                "media types include: application/json-patch+json, "
                                "application/merge-patch+json, application/apply-patch+yaml",
                           "UnsupportedMediaType")
        with self.lock:
            if patch_type == APPLY and not target.events_v1:
                return self._apply(target, name, patch, manager, force, dry_run, subresource)
            live = target.view(self._live(target.stored, name))
            if patch_type == MERGE:
                patched = merge_patch(live, patch)
            elif patch_type == JSON_PATCH:
                patched = json_patch(live, patch)
            elif patch_type == APPLY:
                patched = merge_patch(live, patch)
            else:
                patched = strategic_merge_patch(live, patch)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch does not leave an object")
            if fields is not None:
                kind = {MERGE: "merge", JSON_PATCH: "json", STRATEGIC: "strategic"}.get(
                    patch_type, "merge")
                patched = fields.patched(t, target.version, patched, live, patch, kind)
            patched.setdefault("apiVersion", target.api_version)
            patched.setdefault("kind", t.kind)
            obj = self._body(target, patched)
            self._same_name(target, obj, name)
            self._check_version(target, name, live, obj)
            return self._store(target, name, obj, live, manager, dry_run, subresource), False

    def _store(self, target: Target, name: str, obj: Obj, live: Obj, manager: str,
               dry_run: bool, subresource: str) -> Obj:
        """Write an updated object (PUT, or a patch's result) through the cluster."""
        stored = target.stored
        if target.events_v1:
            obj, live = events.to_core(obj), events.to_core(live)
        cluster = self._scratch(stored, live) if dry_run else self.cluster
        if subresource == "status":
            result = self._call(target, name, lambda: cluster.update_status(obj, manager))
        else:
            result = self._call(target, name, lambda: cluster.update(obj, manager))
        self._written(dry_run)
        result = target.view(result)
        return _dry(result, live) if dry_run else result

    def delete(self, target: Target, name: str, options: Mapping[str, Any],
               dry_run: bool) -> tuple[Obj, bool]:
        """The object's last state, and whether it is gone (False: finalizers hold it)."""
        stored = target.stored
        propagation = options.get("propagationPolicy")
        orphan = options.get("orphanDependents")
        if propagation is None and orphan is not None:
            propagation = "Orphan" if orphan else "Background"
        elif propagation is not None and orphan is not None:
            raise errors.invalid("DeleteOptions", "meta.k8s.io", "",
                                 f"propagationPolicy: Invalid value: \"{propagation}\": "
                                 "orphanDependents and propagationPolicy cannot be both set",
                                 "propagationPolicy")
        with self.lock:
            live = self._live(stored, name)
            cluster = self._scratch(stored, live) if dry_run else self.cluster
            result, gone = self._call(target, name, lambda: cluster.delete_object(
                stored.api_version, stored.type.kind, target.namespace, name,
                propagation=propagation, preconditions=options.get("preconditions") or {}))
            self._written(dry_run)
            if dry_run:
                result = _dry(result, live)
            return target.view(result), gone

    # --- internals -------------------------------------------------------------------------

    def _live(self, target: Target, name: str) -> Obj:
        t = target.type
        obj = self.cluster.get(target.api_version, t.kind, target.namespace, name)
        if obj is None:
            raise errors.not_found(t.plural, t.group, name)
        return obj

    def _apply(self, target: Target, name: str, config: Any, manager: str, force: bool,
               dry_run: bool, subresource: str) -> tuple[Obj, bool]:
        t = target.type
        if not manager:
            raise errors.invalid("PatchOptions", "meta.k8s.io", "",
                                 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                 "Required value: is required for apply patch", "fieldManager")
        if not isinstance(config, dict):
            raise errors.bad_request("error decoding YAML: an apply configuration is an object")
        for field, want in (("apiVersion", target.api_version), ("kind", t.kind)):
            if not config.get(field):
                raise errors.bad_request(f"{field} must be set in an apply configuration")
            if config[field] != want:
                raise errors.bad_request(
                    f"the API version in the data ({config.get('apiVersion')}) does not match "
                    f"the expected API version ({target.api_version})"
                    if field == "apiVersion" else
                    f"the kind in the data ({config.get('kind')}) does not match the expected "
                    f"kind ({t.kind})")
        fieldvalidation.apply_unknown(t, target.version, config, target.api_version)
        obj = self._body(target, config)
        self._same_name(target, obj, name)
        live = self.cluster.get(target.api_version, t.kind, target.namespace, name)
        if live is not None:
            self._check_version(target, name, live, obj)
        elif subresource:
            raise errors.not_found(t.plural, t.group, name)
        cluster = self._scratch(target, live) if dry_run else self.cluster
        if subresource == "status":
            status = merge_patch(live.get("status") if live else {}, obj.get("status") or {})
            result = self._call(target, name, lambda: cluster.update_status(
                {**(live or {}), "status": status}, manager))
        else:
            result = self._call(target, name,
                                lambda: cluster.apply(obj, manager, force=force),
                                manager=manager, live=live)
        self._written(dry_run)
        return (_dry(result, live) if dry_run else result), live is None

    def _call(self, target: Target, name: str, work: Callable[[], Any], manager: str = "",
              live: Obj | None = None) -> Any:
        """Run a cluster operation, its errors turned into the API server's."""
        t = target.type
        try:
            return work()
        except ApplyConflict as exc:
            raise _conflict_error(target, name, exc, live) from exc
        except AlreadyExists as exc:
            raise errors.already_exists(t.plural, t.group, name) from exc
        except StaleVersion as exc:
            text = str(exc)
            if text.startswith("Precondition failed"):
                raise ApiError(409, text, "Conflict", name=name, group=t.group,
                               kind=t.plural) from exc
            raise errors.stale(t.plural, t.group, name) from exc
        except Forbidden as exc:
            raise ApiError(403, str(exc), "Forbidden", name=name, group=t.group,
                           kind=t.plural) from exc
        except NotFound as exc:
            text = str(exc).split(" (creating", 1)[0]
            if text.startswith("namespaces "):
                raise ApiError(404, text, "NotFound", name=target.namespace,
                               kind="namespaces") from exc
            raise errors.not_found(t.plural, t.group, name) from exc
        except Rejected as exc:
            text = str(exc)
            if "cannot be handled as" in text or text.startswith("no matches for kind"):
                raise errors.bad_request(text) from exc
            raise errors.invalid(t.kind, t.group, name, text, exc.field) from exc

    def _body(self, target: Target, body: Any) -> Obj:
        """The object a request carries, checked against the URL it was sent to."""
        t = target.type
        if not isinstance(body, dict):
            raise errors.bad_request(f"{t.kind} in version \"{target.version}\" cannot be "
                                     f"handled as a {t.kind}: the body is not an object")
        obj = deep_copy(body)
        obj.setdefault("apiVersion", target.api_version)
        obj.setdefault("kind", t.kind)
        if obj["apiVersion"] != target.api_version or obj["kind"] != t.kind:
            raise errors.bad_request(
                f"the body of the request ({obj['apiVersion']}, Kind={obj['kind']}) does not "
                f"match the resource it was sent to ({target.api_version}, Kind={t.kind})")
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request(f"{t.kind} in version \"{target.version}\" cannot be "
                                     f"handled as a {t.kind}: metadata is not an object")
        if t.namespaced:
            given = meta.get("namespace")
            if given and given != target.namespace:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = target.namespace
        else:
            meta.pop("namespace", None)
        return obj

    @staticmethod
    def _same_name(target: Target, obj: Obj, name: str) -> None:
        given = obj["metadata"].get("name")
        if given is None or given == "":
            obj["metadata"]["name"] = name
        elif given != name:
            raise errors.bad_request(f"the name of the object ({given}) does not match the name "
                                     f"on the URL ({name})")

    @staticmethod
    def _check_version(target: Target, name: str, live: Obj, obj: Obj) -> None:
        want = obj["metadata"].get("resourceVersion")
        if want and str(want) != str(live["metadata"].get("resourceVersion")):
            raise errors.stale(target.type.plural, target.type.group, name)

    def _written(self, dry_run: bool) -> None:
        if not dry_run:
            self.changes.scan()

    def _scratch(self, target: Target, live: Obj | None) -> InMemoryCluster:
        """A cluster holding only what a write to `target` reads: its namespace, its CRD and
        the live object, at the real cluster's revision."""
        t = target.type
        scratch = InMemoryCluster(self.cluster.clock, list(self.cluster.registry))
        objects: list[Obj] = []
        crd = self.cluster.get(CRD_API, "CustomResourceDefinition", "", f"{t.plural}.{t.group}")
        if crd is not None:
            objects.append(crd)
        if target.namespace:
            ns = self.cluster.get("v1", "Namespace", "", target.namespace)
            if ns is not None:
                objects.append(ns)
        if live is not None:
            objects.append(live)
        scratch.restore({"objects": objects, "events": [], "revision": self.cluster.revision})
        return scratch


def _dry(result: Obj, live: Obj | None) -> Obj:
    """A dry run allocates no resourceVersion: the live one, or none for a create."""
    meta = result.setdefault("metadata", {})
    if live is None:
        meta.pop("resourceVersion", None)
    else:
        meta["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
    return result


def _conflict_error(target: Target, name: str, exc: ApplyConflict, live: Obj | None) -> ApiError:
    versions = {str(e.get("manager")): str(e.get("apiVersion") or target.api_version)
                for e in ((live or {}).get("metadata") or {}).get("managedFields") or []}
    by_manager: dict[str, list[str]] = {}
    for c in exc.conflicts:
        by_manager.setdefault(c.manager, []).append(c.path)
    count = len(exc.conflicts)
    lines = []
    for manager, paths in by_manager.items():
        using = versions.get(manager, target.api_version)
        if len(paths) == 1:
            lines.append(f'conflict with "{manager}" using {using}: {paths[0]}')
        else:
            lines.append(f'conflicts with "{manager}" using {using}:\n'
                         + "\n".join(f"- {p}" for p in paths))
    message = f"Apply failed with {count} conflict{'s' if count != 1 else ''}: " + "\n".join(
        lines)
    causes = [{"reason": "FieldManagerConflict",
               "message": f'conflict with "{c.manager}" using '
                          f"{versions.get(c.manager, target.api_version)}",
               "field": c.path} for c in exc.conflicts]
    t = target.type
    return ApiError(409, message, "Conflict", name=name, group=t.group, kind=t.plural,
                    causes=causes)


def _position(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _encode_continue(revision: int, position: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": position})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_continue(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        start = data["start"]
        if not isinstance(start, str):
            raise TypeError(start)
        return start
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise errors.bad_request("continue key is not valid: the token is malformed") from exc


def _suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))
