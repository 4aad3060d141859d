"""The long-running commands and their settings: `run` (the daemon), `settings` (what `run`
would use), `serve` (the simulated cluster over the Kubernetes API)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from reconciler.commands.common import (
    EXIT_OK,
    command_flags,
    fail,
    verbosity,
    writing,
)
from reconciler.model.errors import InputError
from reconciler.settings import DaemonSettings, ListenAddress
from reconciler.settings.tree import Resolved

if TYPE_CHECKING:
    from reconciler.loader import LoadedObject

_D = DaemonSettings
_RUN_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
                 help="Read settings from this YAML file (`reconciler settings --defaults` "
                      "writes a complete one); environment variables and flags override it."),
    click.option("--environment", default=_D.environment, show_default=True,
                 help="The environment to run in, by name: `simulator` or `kubernetes`."),
    click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
                 help="Load the environment from FILE at start and save it at shutdown."),
    click.option("--listen", default=str(_D.listen), show_default=True, metavar="HOST:PORT",
                 help="Serve /metrics, /healthz, /readyz and /debug/objects here (port 0: any)."),
    click.option("--artifacts-listen", default=str(_D.artifacts_listen), show_default=True,
                 metavar="HOST:PORT", help="Serve artifacts here (port 0: any)."),
    click.option("--artifacts-url", metavar="URL",
                 help="Base URL written into status.artifact.url [default: the artifact "
                      "server's]."),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                 help="Artifacts and Git caches [default: STATE.d, else a temporary directory]."),
    click.option("--tick", type=click.FloatRange(min=0.01), default=_D.tick_seconds,
                 show_default=True,
                 help="Real seconds between ticks: the simulator's clock catches up, its "
                      "controllers run, due requeues are queued."),
    click.option("--concurrent", type=click.IntRange(min=1), default=_D.concurrent,
                 show_default=True,
                 help="Reconciles each controller runs at once (worker threads per queue)."),
    click.option("--time-scale", type=click.FloatRange(min=0, min_open=True),
                 default=_D.time_scale, show_default=True,
                 help="Simulator seconds per real second (simulated builds finish sooner "
                      "above 1)."),
    click.option("--log-format", type=click.Choice(["console", "json"]), default=_D.log_format,
                 show_default=True),
    click.option("--webhook-listen", metavar="HOST:PORT",
                 help="Serve Flux Receiver webhooks (POST /hook/...) here (port 0: any) "
                      "[default: not served]."),
    click.option("--no-cross-namespace-refs", is_flag=True,
                 help="A Receiver may only name resources in its own namespace."),
    click.option("--leader-elect", is_flag=True,
                 help="Elect a leader on a coordination.k8s.io/v1 Lease; only the leader "
                      "reconciles (--environment kubernetes only)."),
    click.option("--leader-election-namespace", metavar="NAMESPACE",
                 help="The Lease's namespace [default: the pod's own; required outside a pod]."),
    click.option("--lease-name", metavar="NAME",
                 help="The Lease's name [default: reconciler-leader-election, with -shard-KEY "
                      "for --shard KEY]."),
    click.option("--lease-duration", type=click.FloatRange(min=1),
                 default=_D.lease_duration_seconds, show_default=True,
                 help="Seconds a standby waits after the last renewal."),
    click.option("--renew-deadline", type=click.FloatRange(min=0, min_open=True),
                 default=_D.renew_deadline_seconds, show_default=True,
                 help="Seconds the leader tries to renew before giving up."),
    click.option("--retry-period", type=click.FloatRange(min=0.001),
                 default=_D.retry_period_seconds, show_default=True,
                 help="Seconds between attempts to acquire or renew."),
    click.option("--shard", metavar="KEY",
                 help="Reconcile only owners labelled sharding.fluxcd.io/key=KEY [default: only "
                      "the unlabelled ones, and the cluster-scoped blueprints]."),
    click.option("--interval-jitter-percentage",
                 type=click.FloatRange(min=0, max=100, max_open=True),
                 default=_D.interval_jitter_percentage, show_default=True,
                 help="A source's next poll is its interval ± this percentage (Flux's flag), so "
                      "sources on one interval do not poll in lockstep."),
)


def _run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`reconciler run`'s settings flags, shared with `reconciler settings`."""
    for option in reversed(_RUN_OPTIONS):
        command = option(command)
    return command


def _resolve_settings(ctx: click.Context, config: Path | None) -> Resolved:
    """The settings tree from defaults, --config, the environment and the flags given."""
    import os

    from reconciler.settings.tree import FLAGS, resolve

    given = {flag: ctx.params[flag.removeprefix("--").replace("-", "_")] for flag in FLAGS
             if ctx.get_parameter_source(flag.removeprefix("--").replace("-", "_"))
             is ParameterSource.COMMANDLINE}
    return resolve(config, os.environ, given)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@_run_options
@click.pass_context
@command_flags(logs=False)
def run(ctx: click.Context, /, paths: Sequence[str], config: Path | None,
        **_flags: Any) -> None:
    """Run the reconciler as a daemon over PATHS until SIGTERM or SIGINT.

    Applies PATHS, then reconciles each object when it, or something its last reconcile read,
    changes, or its requeue is due (a work queue per controller, --concurrent workers each),
    serving artifacts over HTTP and Prometheus metrics on --listen. Settings: defaults, then
    --config FILE, then RECONCILER_<GROUP>_<FIELD> variables, then the flags given
    (`reconciler settings` shows the result). PATHS are read again when a file under them
    changes (checked every second) and applied again; an object taken out of them stays in the
    cluster. Exit 0 after a graceful shutdown, 1 after losing
    the leader election Lease (--leader-elect), 2 when it cannot start (invalid input or
    settings, an address in use).

    \b
    Examples:
      reconciler run examples/greeter
      reconciler run --state cluster.db --listen 127.0.0.1:9090 examples/greeter
      reconciler run --environment kubernetes --leader-elect --config settings.yaml config/
    """
    # Imported here so the other commands do not pay for APScheduler and the HTTP servers.
    from reconciler.daemon import run_daemon
    from reconciler.loader import load_paths
    from reconciler.observability.logging import configure_logging

    verbose = verbosity(ctx)
    try:
        resolved = _resolve_settings(ctx, config)
    except InputError as exc:
        fail(exc)
    settings = resolved.settings
    # A daemon's log is its record of what it did: info by default, -vv for debug.
    configure_logging("debug" if verbose >= 2 else "info",
                      json_output=settings.daemon.log_format == "json")
    try:
        objects = load_paths(paths, allow_empty=False)
        with writing(settings.daemon.state):
            code = run_daemon(objects, settings.daemon, limits=settings.limits,
                              kubernetes=settings.kubernetes, reread=rereader(paths),
                              owners=settings.owners)
    except InputError as exc:
        fail(exc)
    sys.exit(code)


def rereader(paths: Sequence[str]) -> Callable[[], Sequence[LoadedObject] | None]:
    """The input files' objects when a file under `paths` changed since the last call (the
    daemon applies them again), else None; InputError when they no longer load."""
    from reconciler.commands.watching import Watched, file_stamps
    from reconciler.loader import load_paths

    watched = Watched(file_stamps(paths), {})

    def reread() -> Sequence[LoadedObject] | None:
        if not watched.changed(paths, check_repositories=False):
            return None
        return load_paths(paths, allow_empty=False)

    return reread


@click.command(name="settings")
@_run_options
@click.option("--defaults", is_flag=True,
              help="Print a complete, commented settings file holding every default instead.")
@click.pass_context
@command_flags()
def show_settings(ctx: click.Context, /, config: Path | None, defaults: bool,
                  **_flags: Any) -> None:
    """Print the effective settings of `reconciler run` as YAML, with where each came from.

    Takes the same --config and flags as `run`. With --defaults, print a complete commented
    settings file (what the Helm chart renders from); it loads back to the defaults.
    Exit 2 on an invalid settings file, variable or flag.

    \b
    Examples:
      reconciler settings --config settings.yaml --concurrent 8
      reconciler settings --defaults > settings.yaml
    """
    from reconciler.settings.tree import render_defaults, render_effective

    if defaults:
        click.echo(render_defaults(), nl=False)
        return
    try:
        click.echo(render_effective(_resolve_settings(ctx, config)), nl=False)
    except InputError as exc:
        fail(exc)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--kubeconfig", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the kubeconfig clients use here (0600).")
@click.option("--listen", default="127.0.0.1:6443", show_default=True, metavar="HOST:PORT",
              help="Serve the Kubernetes API here (port 0: any free port).")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Load the simulated cluster from FILE at start and save it at shutdown.")
@click.option("--insecure-http", is_flag=True,
              help="Serve plain HTTP instead of HTTPS (the bearer token is still required).")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Simulator seconds per real second.")
@click.option("--controllers", type=click.Choice(["all", "ecosystem"]), default="all",
              show_default=True,
              help="all: the product's controllers and the simulated ecosystem run in-process; "
                   "ecosystem: only the simulated ones (kpack, Knative, Tekton, workloads).")
@click.option("--rbac", is_flag=True,
              help="Authorize requests with RBAC from the cluster's Roles, ClusterRoles and "
                   "bindings (kube's default ClusterRoles are made at start). Without it every "
                   "authenticated user may do everything.")
@click.option("--faults", metavar="SPEC|@FILE", envvar="RECONCILER_SERVE_FAULTS",
              help="Inject faults, seeded (testing): e.g. '429=0.1,500=0.05,watch-cut=30s,"
                   "seed=7'; 'off' injects none but serves /debug/faults to switch them "
                   "(grammar: docs/faults.md).")
@click.pass_context
@command_flags(logs=False)
def serve(ctx: click.Context, paths: Sequence[str], kubeconfig: Path, listen: str,
          state: Path | None, insecure_http: bool, time_scale: float, controllers: str,
          rbac: bool, faults: str | None) -> None:
    """Serve a simulated cluster over the Kubernetes API until SIGTERM or SIGINT.

    Loads PATHS and --state, writes a kubeconfig for an admin, prints the `export KUBECONFIG=`
    line, and serves HTTPS (a CA and serving certificate made at start). Exit 0 after a
    graceful shutdown (--state saved), 2 when it cannot start.

    \b
    Authentication: the kubeconfig's token is the admin (user reconciler-admin, group
    system:masters); `kubectl create token SA -n NS` gives a ServiceAccount's token
    (system:serviceaccount:NS:SA), valid until it expires (10 min to 48 h, default 1 h), the
    server stops, or the ServiceAccount is deleted. Impersonation headers (kubectl --as,
    --as-group) are honoured for callers allowed to `impersonate`.
    \b
    Authorization: with --rbac, RBAC as kube-apiserver evaluates it (403 Forbidden with its
    message; system:masters bypasses it); `kubectl auth can-i [--list]` and `kubectl auth
    whoami` answer. Without --rbac, everything is allowed.

    \b
    Examples:
      reconciler serve --kubeconfig serve.kubeconfig examples/greeter
      reconciler serve --kubeconfig kc --listen 127.0.0.1:0 --state cluster.db --rbac
    """
    from importlib.metadata import entry_points

    from reconciler.loader import load_paths
    from reconciler.observability.logging import configure_logging

    verbose = verbosity(ctx)
    configure_logging("debug" if verbose >= 2 else "info")
    # `reconciler` never imports `simulator`: the server is found by name, as environments are.
    found = [ep for ep in entry_points(group="reconciler.servers") if ep.name == "simulator"]
    try:
        if not found:
            raise InputError("no cluster server is installed (entry point reconciler.servers)")
        address = ListenAddress.parse(listen)
        objects = load_paths(paths) if paths else []
        from reconciler.runtime.gctuning import tune_after_load

        tune_after_load()  # as `simulate`: fewer young collections (RECONCILER_GC_TUNING=off)
        with writing(state):
            found[0].load()(objects, kubeconfig=kubeconfig, host=address.host,
                            port=address.port, state=state, insecure_http=insecure_http,
                            time_scale=time_scale, controllers=controllers, rbac=rbac,
                            **({"faults": faults} if faults is not None else {}))
    except InputError as exc:
        fail(exc)
    sys.exit(EXIT_OK)


