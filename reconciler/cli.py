"""The `reconciler` command line: simulate | validate | version | run | settings | ..."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from reconciler import __version__
from reconciler.diff.mask import mask_secret
from reconciler.loader import load_paths
from reconciler.model.errors import InputError, ReconcilerError
from reconciler.observability.logging import configure_logging
from reconciler.report import render_json, render_table, render_yaml
from reconciler.runtime.statefile import state_lock
from reconciler.settings import DaemonSettings, SimulateSettings
from reconciler.settings.tree import FLAGS, Resolved, resolve
from reconciler.simulation import simulate as run_simulation

EXIT_OK, EXIT_NOT_READY, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Seconds(click.ParamType[float]):
    """A finite, non-negative number of seconds: `nan`, `inf` and negatives are refused."""

    name = "seconds"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(f"{value!r} is not a finite, non-negative number of seconds", param, ctx)
        return seconds


SECONDS = _Seconds()


class _Commands(click.Group):
    """Turns an unexpected exception into one readable line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ReconcilerError as exc:
            _fail(exc)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (`reconciler test ... | head`): nothing left to say to it.
            sys.stderr.close()
            sys.exit(EXIT_OK)
        except Exception as exc:
            if ctx.params.get("verbose", 0) >= 2:
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(run with -vv for the traceback, and please report it)", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="reconciler")
@click.option("-v", "--verbose", count=True, help="More logs on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """A GitOps reconciler for Cartographer-style supply chains."""
    configure_logging({0: "warning", 1: "info"}.get(verbose, "debug"))


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate(paths: Sequence[str]) -> None:
    """Check input files as an API server would, without running anything."""
    try:
        objects = load_paths(paths, allow_empty=False)
    except InputError as exc:
        _fail(exc)
    click.echo(f"{len(objects)} objects valid")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare against the simulated cluster saved in FILE (else an empty one).")
def diff(paths: Sequence[str], output: str, state: Path | None) -> None:
    """Show what a reconcile of PATHS would change: a unified diff per object, Secrets masked.

    The reconcile runs on the simulated cluster loaded from --state (left unchanged), so the
    objects supply chains would stamp, update or prune are shown too.
    Exit 0 when nothing would change, 1 when something would, 2 on invalid input.
    """
    from reconciler.simulation import plan

    try:
        changes = plan(load_paths(paths, allow_empty=False), state)
    except ReconcilerError as exc:
        _fail(exc)
    if output == "json":
        click.echo(render_json(changes.to_json()))
    else:
        click.echo(changes.render(), nl=False)
    sys.exit(1 if changes.has_changes else EXIT_OK)


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

    given = {flag: ctx.params[flag.removeprefix("--").replace("-", "_")] for flag in FLAGS
             if ctx.get_parameter_source(flag.removeprefix("--").replace("-", "_"))
             is ParameterSource.COMMANDLINE}
    return resolve(config, os.environ, given)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@_run_options
@click.pass_context
def run(ctx: click.Context, /, paths: Sequence[str], config: Path | None,
        **_flags: Any) -> None:
    """Run the reconciler as a daemon over PATHS until SIGTERM or SIGINT.

    Applies PATHS, then reconciles each object when it, or something its last reconcile read,
    changes, or its requeue is due (a work queue per controller, --concurrent workers each),
    serving artifacts over HTTP and Prometheus metrics on --listen. Settings: defaults, then
    --config FILE, then RECONCILER_<GROUP>_<FIELD> variables, then the flags given
    (`reconciler settings` shows the result). Exit 0 after a graceful shutdown, 1 after losing
    the leader election Lease (--leader-elect), 2 when it cannot start (invalid input or
    settings, an address in use).
    """
    # Imported here so the other commands do not pay for APScheduler and the HTTP servers.
    from reconciler.daemon import run_daemon

    verbose = ctx.parent.params.get("verbose", 0) if ctx.parent is not None else 0
    try:
        resolved = _resolve_settings(ctx, config)
    except InputError as exc:
        _fail(exc)
    settings = resolved.settings
    # A daemon's log is its record of what it did: info by default, -vv for debug.
    configure_logging("debug" if verbose >= 2 else "info",
                      json_output=settings.daemon.log_format == "json")
    try:
        objects = load_paths(paths, allow_empty=False)
        with _writing(settings.daemon.state):
            code = run_daemon(objects, settings.daemon, limits=settings.limits,
                              kubernetes=settings.kubernetes)
    except InputError as exc:
        _fail(exc)
    sys.exit(code)


@main.command(name="settings")
@_run_options
@click.option("--defaults", is_flag=True,
              help="Print a complete, commented settings file holding every default instead.")
@click.pass_context
def show_settings(ctx: click.Context, /, config: Path | None, defaults: bool,
                  **_flags: Any) -> None:
    """Print the effective settings of `reconciler run` as YAML, with where each came from.

    Takes the same --config and flags as `run`. With --defaults, print a complete commented
    settings file (what the Helm chart renders from); it loads back to the defaults.
    Exit 2 on an invalid settings file, variable or flag.
    """
    from reconciler.settings.tree import render_defaults, render_effective

    if defaults:
        click.echo(render_defaults(), nl=False)
        return
    try:
        click.echo(render_effective(_resolve_settings(ctx, config)), nl=False)
    except InputError as exc:
        _fail(exc)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True)
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Load the simulated cluster from FILE before the run and save it after.")
@click.option("--budget", type=SECONDS, default=SimulateSettings.budget_seconds,
              show_default=True, help="Virtual seconds to wait for workloads to settle.")
@click.option("--show-secrets", is_flag=True,
              help="Print Secret data as it is (masked with + by default).")
def simulate(paths: Sequence[str], output: str, state: Path | None, budget: float,
             show_secrets: bool) -> None:
    """Run supply chains for PATHS (files or folders of YAML) in a simulated cluster.

    Exit 0 when every workload is Ready, 1 when any is not, 2 on invalid input.
    """
    try:
        objects = load_paths(paths, allow_empty=False)
        with _writing(state):
            result = run_simulation(objects, state, SimulateSettings(budget_seconds=budget))
    except InputError as exc:
        _fail(exc)
    if output == "table":
        click.echo(render_table(result.workloads, result.summary, result.objects))
    else:
        document = result.document()
        if not show_secrets:
            document["objects"] = [mask_secret(o) for o in document["objects"]]
        click.echo(render_json(document) if output == "json" else render_yaml(document))
    sys.exit(EXIT_OK if result.ready else EXIT_NOT_READY)


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-k", "keyword", help="Run only the tests whose name contains SUBSTRING.",
              metavar="SUBSTRING")
@click.option("--timeout", type=float,
              help="Virtual seconds a step's assertions may take (overrides the suite's).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the results as JUnit XML to FILE.")
@click.option("--crd-dir", "--manifest-dir", "setup_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False),
              help="A folder of CRDs or manifests to apply before each test (repeatable).")
def kuttl_test(paths: Sequence[str], keyword: str | None, timeout: float | None,
               junit: Path | None, setup_dirs: Sequence[str]) -> None:
    """Run kuttl tests (a kuttl-test.yaml, test folders, or folders of them) in the simulator.

    Exit 0 when every test passes, 1 when any fails, 2 on unusable input.
    """
    # Imported here so the other commands do not pay for the test runner.
    import time

    from reconciler.kuttl import discover, run_tests
    from reconciler.kuttl.junit import write_junit
    from reconciler.kuttl.report import failure_details, result_line, summary_line
    from reconciler.kuttl.runner import TestResult

    try:
        cases = discover(paths, timeout=timeout, extra_setup_dirs=setup_dirs)
    except InputError as exc:
        _fail(exc)
    if keyword:
        cases = [c for c in cases if keyword in c.name]
        if not cases:
            _fail(InputError(f"no test name contains {keyword!r} (-k filters by substring)"))

    def show(result: TestResult) -> None:
        click.echo(result_line(result))
        if result.failure is not None:
            click.echo(failure_details(result.failure))

    started = time.perf_counter()
    results = run_tests(cases, on_result=show)
    click.echo(f"ran {len(results)} test(s) in {time.perf_counter() - started:.2f}s")
    click.echo(summary_line(results))
    if junit is not None:
        write_junit(results, junit)
    sys.exit(EXIT_OK if all(r.passed for r in results) else EXIT_NOT_READY)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="The simulated cluster to show (and to reconcile PATHS in, then save).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--budget", type=SECONDS, default=SimulateSettings.budget_seconds,
              show_default=True, help="Virtual seconds to wait for workloads to settle.")
def tree(paths: Sequence[str], state: Path | None, output: str, budget: float) -> None:
    """Show what each Workload, Deliverable, Runnable and Kustomization made, as a tree.

    With PATHS, reconcile them first (as `simulate` does); without, show the cluster saved in
    --state as it is.
    """
    from reconciler import tree as trees
    from reconciler.engine.wiring import load_environment

    try:
        if paths:
            loaded = load_paths(paths, allow_empty=False)
            with _writing(state):
                objects = run_simulation(loaded, state,
                                         SimulateSettings(budget_seconds=budget)).objects
        elif state is not None:
            env = load_environment("simulator")
            env.load_state(state)
            listing = getattr(env.backend, "all_objects", None)
            objects = list(listing()) if callable(listing) else []
        else:
            raise InputError("give PATHS to reconcile, or --state FILE to show a saved cluster")
    except ReconcilerError as exc:
        _fail(exc)
    roots = trees.build(objects)
    if output == "json":
        click.echo(render_json({"owners": trees.to_json(roots)}))
    else:
        click.echo(trees.render(roots), nl=False)


@main.command()
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
    """
    from importlib.metadata import entry_points

    from reconciler.settings import ListenAddress

    verbose = ctx.parent.params.get("verbose", 0) if ctx.parent is not None else 0
    configure_logging("debug" if verbose >= 2 else "info")
    # `reconciler` never imports `simulator`: the server is found by name, as environments are.
    found = [ep for ep in entry_points(group="reconciler.servers") if ep.name == "simulator"]
    try:
        if not found:
            raise InputError("no cluster server is installed (entry point reconciler.servers)")
        address = ListenAddress.parse(listen)
        objects = load_paths(paths) if paths else []
        with _writing(state):
            found[0].load()(objects, kubeconfig=kubeconfig, host=address.host,
                            port=address.port, state=state, insecure_http=insecure_http,
                            time_scale=time_scale, controllers=controllers, rbac=rbac,
                            **({"faults": faults} if faults is not None else {}))
    except InputError as exc:
        _fail(exc)
    sys.exit(EXIT_OK)


def _writing(state: Path | None) -> contextlib.AbstractContextManager[None]:
    """The state file's writer lock for a run that saves `state` (nothing without one)."""
    return state_lock(state) if state is not None else contextlib.nullcontext()


def _fail(exc: ReconcilerError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_INPUT)


if __name__ == "__main__":
    main()
