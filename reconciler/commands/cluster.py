"""The verbs against a running cluster, through a kubeconfig and `KubernetesBackend`: `get`,
`events`, `reconcile`, `suspend`, `resume`, and `tree` of a cluster's owners.

Kinds are named as kubectl and flux name them (`workloads`, `wrk`, `workload/NAME`, `sources`,
`gitrepo`, `ks`, ...: `KINDS`). Every verb takes -n/-A/-l/-o the same way (`Scope`,
`output.render`). Writes are server-side applies of the one field a verb owns, as field manager
`reconciler-cli`: the `reconcile.fluxcd.io/requestedAt` annotation (reconcile, resume),
`spec.suspend` (Flux's kinds) or the `reconciler.dev/suspend` annotation (Cartographer's
Workload and Deliverable, which have no suspend field). `reconcile` and `resume` then wait,
as flux does, until the controller reports `status.lastHandledReconcileAt` equal to the value
they set.

Exit codes: 0 done; 1 the cluster said no (not found, unreachable, not Ready after a
reconcile, a timeout); 2 the command line is wrong (an unknown kind, a malformed selector).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler.commands import output as out
from reconciler.commands.common import (
    EXIT_NOT_READY,
    EXIT_OK,
    SECONDS,
    ClusterFlags,
    command_flags,
    fail,
)
from reconciler.model.annotations import REQUESTED_AT_ANNOTATION, SUSPEND_ANNOTATION
from reconciler.model.errors import BackendError, InputError, ReconcilerError
from reconciler.model.objects import Obj, meta, status_of
from reconciler.model.terminal import printable

if TYPE_CHECKING:
    from reconciler.backends.base import Backend

FIELD_MANAGER = "reconciler-cli"
POLL_SECONDS = 0.2
WATCH_POLL_SECONDS = 0.2
DEFAULT_TIMEOUT = 300.0
MAX_TREE_OBJECTS = 5_000
CARTO = "carto.run/v1alpha1"


@dataclass(frozen=True)
class KindRef:
    api_version: str
    kind: str
    flux: bool  # has spec.suspend (Flux); else the suspend annotation (Cartographer)

    @property
    def words(self) -> str:
        return self.kind.lower()


WORKLOAD = KindRef(CARTO, "Workload", False)
DELIVERABLE = KindRef(CARTO, "Deliverable", False)
GIT_REPOSITORY = KindRef("source.toolkit.fluxcd.io/v1", "GitRepository", True)
KUSTOMIZATION = KindRef("kustomize.toolkit.fluxcd.io/v1", "Kustomization", True)

KINDS: dict[str, KindRef] = {
    **dict.fromkeys(("workload", "workloads", "wrk", "wl", "workload.carto.run",
                     "workloads.carto.run"), WORKLOAD),
    **dict.fromkeys(("deliverable", "deliverables", "dlv", "deliverable.carto.run",
                     "deliverables.carto.run"), DELIVERABLE),
    **dict.fromkeys(("gitrepository", "gitrepositories", "gitrepo", "gitrepos", "git",
                     "source", "sources", "gitrepository.source.toolkit.fluxcd.io",
                     "gitrepositories.source.toolkit.fluxcd.io"), GIT_REPOSITORY),
    **dict.fromkeys(("kustomization", "kustomizations", "ks",
                     "kustomization.kustomize.toolkit.fluxcd.io",
                     "kustomizations.kustomize.toolkit.fluxcd.io"), KUSTOMIZATION),
}
ALL = (WORKLOAD, DELIVERABLE, GIT_REPOSITORY, KUSTOMIZATION)
KIND_HELP = "workloads (wrk), deliverables (dlv), sources/gitrepositories (gitrepo), " \
            "kustomizations (ks)"


def kind_ref(name: str) -> KindRef:
    """The kind a command-line word names; InputError listing the known ones otherwise."""
    found = KINDS.get(name.lower())
    if found is None:
        raise InputError(f"unknown kind {name!r}: use one of {KIND_HELP}")
    return found


def split_target(words: Sequence[str]) -> tuple[KindRef, list[str]]:
    """`KIND NAME...` or `KIND/NAME...` (several of one kind) as kubectl reads them."""
    if not words:
        raise InputError(f"name a kind: {KIND_HELP}")
    if "/" in words[0]:
        kinds, names = set(), []
        for word in words:
            kind, _, name = word.partition("/")
            if not name:
                raise InputError(f"{word!r}: expected KIND/NAME")
            kinds.add(kind_ref(kind))
            names.append(name)
        if len(kinds) > 1:
            raise InputError("name objects of one kind at a time")
        return kinds.pop(), names
    return kind_ref(words[0]), list(words[1:])


# --- connecting ----------------------------------------------------------------------------


def default_namespace(flags: ClusterFlags) -> str:
    """The context's namespace in the kubeconfig (as kubectl picks it), else the pod's, else
    `default`."""
    from reconciler.model.yamlsafe import load_yaml

    path = flags.kubeconfig
    if path is None:
        first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
        path = Path(first) if first else Path.home() / ".kube" / "config"
    try:
        config = load_yaml(path.read_bytes(), str(path))
    except (OSError, ReconcilerError):
        config = None
    if isinstance(config, dict):
        wanted = flags.context or config.get("current-context")
        for entry in config.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") == wanted:
                namespace = (entry.get("context") or {}).get("namespace")
                if isinstance(namespace, str) and namespace:
                    return namespace
    pod = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if flags.kubeconfig is None and pod.is_file():
        return pod.read_text().strip() or "default"
    return "default"


def connect_cluster(flags: ClusterFlags, watch: bool = False) -> Backend:
    """A backend on the cluster: plain requests for a one-shot command, informers (one list,
    then a watch) for --watch; few retries, so an unreachable cluster is said at once."""
    from reconciler.backends.kubernetes import connect
    from reconciler.settings import KubernetesSettings

    settings = replace(KubernetesSettings(), informers=watch, retries=1,
                       connect_timeout_seconds=5.0, request_timeout_seconds=30.0)
    try:
        return connect(flags.kubeconfig, flags.context, settings=settings)
    except BackendError as exc:
        cluster_fail(exc)


def cluster_fail(exc: ReconcilerError | str) -> NoReturn:
    """The cluster said no (or could not be reached): exit 1."""
    fail(exc, EXIT_NOT_READY)


@dataclass(frozen=True)
class Scope:
    """-n / -A / -l as every cluster command reads them."""

    namespace: str | None  # None: every namespace
    selector: str

    @classmethod
    def of(cls, flags: ClusterFlags, namespace: str | None, all_namespaces: bool,
           selector: str | None) -> Scope:
        if all_namespaces and namespace:
            raise InputError("give -n NAMESPACE or -A, not both")
        return cls(None if all_namespaces else (namespace or default_namespace(flags)),
                   selector or "")

    def admits(self) -> Callable[[Obj], bool]:
        from reconciler.portal.views import Filter, parse_selector

        return Filter(self.namespace, parse_selector(self.selector)).admits

    def list(self, backend: Backend, kind: KindRef) -> list[Obj]:
        admits = self.admits()
        try:
            items = backend.list(kind.api_version, kind.kind, self.namespace)
        except BackendError as exc:
            cluster_fail(exc)
        return sorted((o for o in items if admits(o)),
                      key=lambda o: (meta(o).get("namespace") or "", meta(o).get("name") or ""))


def scope_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("-n", "--namespace", metavar="NAMESPACE",
                     help="The namespace [default: the kubeconfig context's, else default]."),
        click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace."),
        click.option("-l", "--selector", metavar="SELECTOR",
                     help="Only objects whose labels match (kubectl's syntax: app=web, "
                          "tier!=db, env in (dev,qa), !legacy)."),
        click.option("-o", "--output", type=click.Choice(out.FORMATS), default="table",
                     show_default=True, help="How to print: a table, a wider one, the objects "
                                             "as JSON or YAML, or kind/name."),
    )):
        command = option(command)
    return command


def _get_one(backend: Backend, kind: KindRef, namespace: str, name: str) -> Obj:
    try:
        found = backend.get(kind.api_version, kind.kind, namespace, name)
    except BackendError as exc:
        cluster_fail(exc)
    if found is None:
        cluster_fail(f'{kind.words} "{name}" not found in namespace "{namespace}"')
    return found


def _emit(text: str) -> None:
    if text:
        click.echo(text)


# --- get -----------------------------------------------------------------------------------


@click.command()
@click.argument("target", nargs=-1, metavar="[KIND [NAME...] | KIND/NAME...]")
@scope_options
@click.option("-w", "--watch", is_flag=True,
              help="After the list, print each object again when it changes (Ctrl-C stops).")
@command_flags(cluster=True)
def get(target: Sequence[str], namespace: str | None, all_namespaces: bool,
        selector: str | None, output: str, watch: bool, cluster: ClusterFlags) -> None:
    """List Workloads, Deliverables, sources (GitRepositories) or Kustomizations, with their
    Ready state, revision and whether they are suspended; named ones only with NAMEs.

    KIND is one of workloads (wrk), deliverables (dlv), sources / gitrepositories (gitrepo),
    kustomizations (ks), or all (the default). Exit 0; 1 when a named object does not exist
    or the cluster cannot be reached; 2 for an unknown kind or selector.

    \b
    Examples:
      reconciler get workloads
      reconciler get wrk greeter -n dev -o yaml
      reconciler get sources -A -l app.kubernetes.io/part-of=shop
      reconciler get ks -o wide --watch
      reconciler get all --kubeconfig serve.kubeconfig --context admin
    """
    try:
        all_kinds = not target or (len(target) == 1 and target[0].lower() == "all")
        kinds, names = (list(ALL), []) if all_kinds else (
            lambda found: ([found[0]], found[1]))(split_target(target))
        scope = Scope.of(cluster, namespace, all_namespaces, selector)
        scope.admits()  # a malformed selector is the user's error, before connecting
    except InputError as exc:
        fail(exc)
    if names and scope.namespace is None:
        fail(InputError("a name needs a namespace: give -n NAMESPACE, not -A"))
    backend = connect_cluster(cluster, watch=watch)
    namespaces = scope.namespace is None

    def current(kind: KindRef) -> list[Obj]:
        if names:
            assert scope.namespace is not None
            if watch and shown:  # watching: a named object that went is a deleted row
                return [o for n in names
                        for o in _safe_get(backend, kind.api_version, kind.kind,
                                           scope.namespace, n)]
            return [_get_one(backend, kind, scope.namespace, n) for n in names]
        return scope.list(backend, kind)

    shown: dict[tuple[str, str, str], str] = {}
    blocks: list[str] = []
    everything: list[Obj] = []
    for kind in kinds:
        objects = current(kind)
        everything += objects
        for obj in objects:
            shown[_key(kind, obj)] = _version(obj)
        text = out.render(objects, kind.kind, output, single=bool(names),
                          namespaces=namespaces)
        if text:
            blocks.append(text)
    if output in ("json", "yaml") and len(kinds) > 1:
        click.echo(out.render(everything, kinds[0].kind, output))
    else:
        _emit("\n\n".join(blocks))
    if not everything and output in ("table", "wide") and not watch:
        where = f'namespace "{scope.namespace}"' if scope.namespace else "any namespace"
        click.echo(f"No resources found in {where}.", err=True)
    if watch:
        _watch(backend, kinds, current, shown, output, namespaces)


def _key(kind: KindRef, obj: Obj) -> tuple[str, str, str]:
    return kind.kind, str(meta(obj).get("namespace") or ""), str(meta(obj).get("name"))


def _version(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion") or "")


def _watch(backend: Backend, kinds: Sequence[KindRef],
           current: Callable[[KindRef], list[Obj]], shown: dict[tuple[str, str, str], str],
           output: str, namespaces: bool) -> None:
    """Print an object again each time its resourceVersion moves, and `deleted` rows, from the
    informers' caches (a watch under them), until interrupted."""
    def show_changes() -> None:
        for kind in kinds:
            live = {_key(kind, o): o for o in current(kind)}
            moved = [o for k, o in live.items() if shown.get(k) != _version(o)]
            for obj in moved:
                shown[_key(kind, obj)] = _version(obj)
            _emit(out.render(moved, kind.kind, output, namespaces=namespaces, headers=False))
            for key in [k for k in shown if k[0] == kind.kind and k not in live]:
                del shown[key]
                where = f"{key[1]}/" if namespaces else ""
                click.echo(f"{where}{key[2]} deleted")

    _on_each_revision(backend, show_changes)


def _on_each_revision(backend: Backend, show: Callable[[], None]) -> None:
    """Call `show` (then flush stdout) each time the backend's informers' revision moves (every
    poll where the backend has no informers), until interrupted: the loop under `--watch`."""
    sync: Callable[[], int] | None = getattr(backend, "sync", None)
    seen = -1
    try:
        while True:
            revision = sync() if sync is not None else seen + 1
            if revision != seen:
                seen = revision
                show()
                sys.stdout.flush()
            time.sleep(WATCH_POLL_SECONDS)
    except KeyboardInterrupt:
        return


# --- events --------------------------------------------------------------------------------


@click.command()
@click.option("--for", "for_", metavar="KIND/NAME",
              help="Only the events of this object (e.g. workload/greeter).")
@click.option("--types", metavar="TYPE[,TYPE]", help="Only these types (Normal, Warning).")
@scope_options
@click.option("-w", "--watch", is_flag=True,
              help="After the list, print new events as they come (Ctrl-C stops).")
@command_flags(cluster=True)
def events(for_: str | None, types: str | None, namespace: str | None, all_namespaces: bool,
           selector: str | None, output: str, watch: bool, cluster: ClusterFlags) -> None:
    """List events, oldest first: what the controllers did and why (stamped objects applied,
    outputs changed, failures), as `kubectl events` lists them.

    Exit 0; 1 when the cluster cannot be reached or the object of --for does not exist; 2 for
    an unknown kind or a malformed selector.

    \b
    Examples:
      reconciler events
      reconciler events --for workload/greeter -n dev
      reconciler events -A --types Warning -o wide
      reconciler events --for gitrepo/app --watch
    """
    try:
        target = split_target([for_]) if for_ else None
        if target is not None and len(target[1]) != 1:
            raise InputError("--for takes one KIND/NAME")
        scope = Scope.of(cluster, namespace, all_namespaces, selector)
        admits = scope.admits()
        wanted_types = {t.strip().lower() for t in (types or "").split(",") if t.strip()}
    except InputError as exc:
        fail(exc)
    backend = connect_cluster(cluster, watch=watch)
    if target is not None:
        if scope.namespace is None:
            fail(InputError("--for needs a namespace: give -n NAMESPACE, not -A"))
        _get_one(backend, target[0], scope.namespace, target[1][0])

    def wanted(event: Obj) -> bool:
        ref = event.get("involvedObject") or event.get("regarding") or {}
        if target is not None and (ref.get("kind") != target[0].kind
                                   or ref.get("name") != target[1][0]):
            return False
        if wanted_types and str(event.get("type", "")).lower() not in wanted_types:
            return False
        return admits(event)

    def current() -> list[Obj]:
        try:
            items = backend.list("v1", "Event", scope.namespace)
        except BackendError as exc:
            cluster_fail(exc)
        return sorted((e for e in items if wanted(e)),
                      key=lambda e: (out.event_time(e), str(meta(e).get("name"))))

    namespaces = scope.namespace is None
    listed = current()
    text = out.render(listed, "Event", output, namespaces=namespaces)
    if text:
        click.echo(text)
    elif output in ("table", "wide") and not watch:
        where = f'namespace "{scope.namespace}"' if scope.namespace else "any namespace"
        click.echo(f"No events found in {where}.", err=True)
    if not watch:
        return
    shown = {(str(meta(e).get("namespace")), str(meta(e).get("name"))): _event_version(e)
             for e in listed}

    def show_fresh() -> None:
        fresh = []
        for event in current():
            key = (str(meta(event).get("namespace")), str(meta(event).get("name")))
            if shown.get(key) != _event_version(event):
                shown[key] = _event_version(event)
                fresh.append(event)
        _emit(out.render(fresh, "Event", output, namespaces=namespaces,
                         headers=not shown and output in ("table", "wide")))

    _on_each_revision(backend, show_fresh)


def _event_version(event: Obj) -> str:
    return f"{event.get('count')}/{out.event_time(event)}"


# --- reconcile, suspend, resume --------------------------------------------------------------


def _target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.argument("target", nargs=-1, required=True, metavar="KIND NAME | KIND/NAME"),
        click.option("-n", "--namespace", metavar="NAMESPACE",
                     help="The namespace [default: the kubeconfig context's, else default]."),
        click.option("-o", "--output", type=click.Choice(out.FORMATS), default="table",
                     show_default=True, help="How to print the object afterwards."),
    )):
        command = option(command)
    return command


def _one_target(target: Sequence[str], namespace: str | None,
                cluster: ClusterFlags) -> tuple[KindRef, str, str]:
    try:
        kind, names = split_target(target)
        if len(names) != 1:
            raise InputError(f"name one {kind.words}: KIND NAME or KIND/NAME")
    except InputError as exc:
        fail(exc)
    return kind, namespace or default_namespace(cluster), names[0]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _patch(backend: Backend, kind: KindRef, namespace: str, name: str,
           annotations: dict[str, str] | None = None,
           spec: dict[str, Any] | None = None) -> Obj:
    """Server-side apply of just these fields, as the CLI's field manager."""
    patch: Obj = {"apiVersion": kind.api_version, "kind": kind.kind,
                  "metadata": {"name": name, "namespace": namespace}}
    if annotations:
        patch["metadata"]["annotations"] = annotations
    if spec:
        patch["spec"] = spec
    try:
        return backend.apply(patch, field_manager=FIELD_MANAGER, force=True)
    except BackendError as exc:
        cluster_fail(exc)


def wait_handled(backend: Backend, kind: KindRef, namespace: str, name: str,
                 requested: str, timeout: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> Obj | None:
    """The object once its `status.lastHandledReconcileAt` is `requested`; None at timeout."""
    deadline = clock() + timeout
    while True:
        live = _get_one(backend, kind, namespace, name)
        if status_of(live).get("lastHandledReconcileAt") == requested:
            return live
        if clock() >= deadline:
            return None
        sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))


def _request_and_wait(backend: Backend, kind: KindRef, namespace: str, name: str,
                      timeout: float, output: str, verb: str,
                      extra: dict[str, str] | None = None,
                      spec: dict[str, Any] | None = None) -> int:
    requested = _now()
    _patch(backend, kind, namespace, name,
           {**(extra or {}), REQUESTED_AT_ANNOTATION: requested}, spec)
    click.echo(f"► {kind.words} {namespace}/{name}: {verb} requested, waiting up to "
               f"{timeout:g}s", err=True)
    live = wait_handled(backend, kind, namespace, name, requested, timeout)
    if live is None:
        cluster_fail(f"{kind.words} {namespace}/{name}: the reconcile requested at {requested} "
                     f"was not handled within {timeout:g}s (is the controller running? "
                     "`reconciler events --for " f"{kind.words}/{name} -n {namespace}`)")
    status, reason, message = out.ready(live)
    _emit(out.render([live], kind.kind, output, single=True))
    if status != "True":
        click.echo(printable(f"✗ {kind.words} {namespace}/{name} reconciled but is not Ready: "
                             f"{reason}: {message}"), err=True)
        return EXIT_NOT_READY
    click.echo(printable(f"✔ {kind.words} {namespace}/{name} reconciled: {reason or 'Ready'}"),
               err=True)
    return EXIT_OK


@click.command()
@_target_options
@click.option("--timeout", type=SECONDS, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds to wait for the controller to handle the request.")
@command_flags(cluster=True)
def reconcile(target: Sequence[str], namespace: str | None, output: str, timeout: float,
              cluster: ClusterFlags) -> None:
    """Ask the controller to reconcile an object now, and wait until it has.

    Sets the annotation reconcile.fluxcd.io/requestedAt to the current time (as `flux
    reconcile` does) and waits until status.lastHandledReconcileAt shows it was handled, then
    prints the object. Exit 0 when it is Ready afterwards; 1 when it is not, is suspended, does
    not exist, or the request was not handled within --timeout; 2 for an unknown kind.

    \b
    Examples:
      reconciler reconcile workload greeter -n dev
      reconciler reconcile gitrepo/app --timeout 60
      reconciler reconcile ks apps -o yaml
    """
    kind, ns, name = _one_target(target, namespace, cluster)
    backend = connect_cluster(cluster)
    live = _get_one(backend, kind, ns, name)
    if out.suspended(live):
        cluster_fail(f"{kind.words} {ns}/{name} is suspended: `reconciler resume {kind.words} "
                     f"{name} -n {ns}` first")
    sys.exit(_request_and_wait(backend, kind, ns, name, timeout, output, "reconcile"))


@click.command()
@_target_options
@command_flags(cluster=True)
def suspend(target: Sequence[str], namespace: str | None, output: str,
            cluster: ClusterFlags) -> None:
    """Stop reconciling an object until it is resumed; its status stays as it was.

    GitRepository and Kustomization: spec.suspend set to true (Flux's field). Workload and
    Deliverable, which have no such field: the annotation reconciler.dev/suspend: "true".
    Exit 0; 1 when the object does not exist or the cluster refuses; 2 for an unknown kind.

    \b
    Examples:
      reconciler suspend workload greeter -n dev
      reconciler suspend ks/apps
    """
    kind, ns, name = _one_target(target, namespace, cluster)
    backend = connect_cluster(cluster)
    _get_one(backend, kind, ns, name)
    applied = (_patch(backend, kind, ns, name, spec={"suspend": True}) if kind.flux
               else _patch(backend, kind, ns, name, {SUSPEND_ANNOTATION: "true"}))
    _emit(out.render([applied], kind.kind, output, single=True))
    click.echo(f"✔ {kind.words} {ns}/{name} suspended", err=True)


@click.command()
@_target_options
@click.option("--timeout", type=SECONDS, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds to wait for the reconcile that follows.")
@command_flags(cluster=True)
def resume(target: Sequence[str], namespace: str | None, output: str, timeout: float,
           cluster: ClusterFlags) -> None:
    """Resume a suspended object and reconcile it at once, waiting as `reconcile` does.

    Exit 0 when it is Ready afterwards; 1 when it is not, does not exist, or the reconcile was
    not handled within --timeout; 2 for an unknown kind.

    \b
    Examples:
      reconciler resume workload greeter -n dev
      reconciler resume gitrepo/app --timeout 60
    """
    kind, ns, name = _one_target(target, namespace, cluster)
    backend = connect_cluster(cluster)
    _get_one(backend, kind, ns, name)
    if kind.flux:
        code = _request_and_wait(backend, kind, ns, name, timeout, output, "resume",
                                 spec={"suspend": False})
    else:
        code = _request_and_wait(backend, kind, ns, name, timeout, output, "resume",
                                 extra={SUSPEND_ANNOTATION: "false"})
    sys.exit(code)


# --- tree ----------------------------------------------------------------------------------

# Kinds whose objects hang below what supply chains stamp (runs, builds, revisions), listed in
# the owners' namespaces so the tree shows them; a kind the cluster does not serve is skipped.
CHILD_KINDS = (
    ("tekton.dev/v1", "TaskRun"), ("tekton.dev/v1", "PipelineRun"),
    ("kpack.io/v1alpha2", "Build"), ("serving.knative.dev/v1", "Revision"),
    ("serving.knative.dev/v1", "Configuration"), ("serving.knative.dev/v1", "Route"),
    ("apps/v1", "ReplicaSet"), (CARTO, "Runnable"),
)
OWNER_KINDS = (WORKLOAD, DELIVERABLE, KUSTOMIZATION)


def tree_of_cluster(names: Sequence[str], flags: ClusterFlags, namespace: str | None,
                    all_namespaces: bool, selector: str | None, output: str) -> int:
    """`reconciler tree NAME...` against a cluster: the named owners (Workloads, Deliverables,
    Kustomizations), or all in the scope, with what they stamped or applied below them."""
    from reconciler import tree as trees
    from reconciler.commands.local import render_tree

    try:
        scope = Scope.of(flags, namespace, all_namespaces, selector)
        scope.admits()
    except InputError as exc:
        fail(exc)
    backend = connect_cluster(flags)
    owners = [o for kind in OWNER_KINDS for o in scope.list(backend, kind)]
    if names:
        missing = [n for n in names if not any(meta(o).get("name") == n for o in owners)]
        if missing:
            where = f'namespace "{scope.namespace}"' if scope.namespace else "any namespace"
            cluster_fail(f"no Workload, Deliverable or Kustomization named "
                         f"{', '.join(repr(m) for m in missing)} in {where}")
        owners = [o for o in owners if meta(o).get("name") in names]
    objects = _related(backend, owners)
    click.echo(render_tree(trees.build(objects), output), nl=False)
    return EXIT_OK


def _related(backend: Backend, owners: Sequence[Obj]) -> list[Obj]:
    """The owners, what their status names (stamped objects, inventory entries), and the
    objects of `CHILD_KINDS` in their namespaces; at most MAX_TREE_OBJECTS."""
    found: dict[tuple[str, str, str, str], Obj] = {}

    def add(items: Iterable[Obj]) -> None:
        for obj in items:
            if len(found) >= MAX_TREE_OBJECTS:
                return
            found.setdefault((str(obj.get("apiVersion")), str(obj.get("kind")),
                              str(meta(obj).get("namespace") or ""),
                              str(meta(obj).get("name"))), obj)

    add(owners)
    for owner in owners:
        status = status_of(owner)
        refs = [r.get("stampedRef") for r in status.get("resources") or []
                if isinstance(r, dict)]
        for ref in refs:
            if isinstance(ref, dict) and ref.get("kind") and ref.get("name"):
                add(_safe_get(backend, str(ref.get("apiVersion", "")), str(ref["kind"]),
                              str(ref.get("namespace") or meta(owner).get("namespace") or ""),
                              str(ref["name"])))
        for entry in (status.get("inventory") or {}).get("entries") or []:
            add(_inventory_object(backend, entry))
    for ns in sorted({str(meta(o).get("namespace") or "") for o in owners}):
        for api_version, kind in CHILD_KINDS:
            try:
                add(backend.list(api_version, kind, ns))
            except ReconcilerError:
                continue
    return list(found.values())


def _safe_get(backend: Backend, api_version: str, kind: str, namespace: str,
              name: str) -> list[Obj]:
    try:
        obj = backend.get(api_version, kind, namespace, name)
    except ReconcilerError:
        return []
    return [obj] if obj is not None else []


def _inventory_object(backend: Backend, entry: Any) -> list[Obj]:
    """Flux's inventory entry id `<namespace>_<name>_<group>_<kind>` and its version."""
    if not isinstance(entry, dict):
        return []
    parts = str(entry.get("id", "")).split("_")
    version = str(entry.get("v", ""))
    if len(parts) != 4 or not version:
        return []
    namespace, name, group, kind = parts
    api_version = f"{group}/{version}" if group else version
    return _safe_get(backend, api_version, kind, namespace, name)
