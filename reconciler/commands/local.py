"""The commands that work on input files and the simulated cluster, no server needed:
`validate`, `diff`, `simulate` (with `--watch`), `test`, and `tree` (PATHS or --state; with
owner names and no paths it asks a cluster, `cluster.tree_of_cluster`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.commands.common import (
    EXIT_NOT_READY,
    EXIT_OK,
    SECONDS,
    ClusterFlags,
    command_flags,
    fail,
    writing,
)
from reconciler.model.errors import InputError, ReconcilerError
from reconciler.settings import SimulateSettings

if TYPE_CHECKING:
    from reconciler.tree import Node


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@command_flags()
def validate(paths: Sequence[str]) -> None:
    """Check input files as an API server would, without running anything.

    Exit 0 when every object is valid, 2 otherwise (the file, line, object and field named).

    \b
    Examples:
      reconciler validate examples/greeter
      reconciler validate workload.yaml supply-chain.yaml
    """
    from reconciler.loader import load_paths

    try:
        objects = load_paths(paths, allow_empty=False)
    except InputError as exc:
        fail(exc)
    click.echo(f"{len(objects)} objects valid")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare against the simulated cluster saved in FILE (else an empty one).")
@command_flags()
def diff(paths: Sequence[str], output: str, state: Path | None) -> None:
    """Show what a reconcile of PATHS would change: a unified diff per object, Secrets masked.

    The reconcile runs on the simulated cluster loaded from --state (left unchanged), so the
    objects supply chains would stamp, update or prune are shown too.
    Exit 0 when nothing would change, 1 when something would, 2 on invalid input.

    \b
    Examples:
      reconciler diff examples/greeter
      reconciler diff --state cluster.db -o json examples/greeter
    """
    from reconciler.loader import load_paths
    from reconciler.report import render_json
    from reconciler.simulation import plan

    try:
        changes = plan(load_paths(paths, allow_empty=False), state)
    except ReconcilerError as exc:
        fail(exc)
    if output == "json":
        click.echo(render_json(changes.to_json()))
    else:
        click.echo(changes.render(), nl=False)
    sys.exit(1 if changes.has_changes else EXIT_OK)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True)
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Load the simulated cluster from FILE before the run and save it after.")
@click.option("--budget", type=SECONDS, default=SimulateSettings.budget_seconds,
              show_default=True, help="Virtual seconds to wait for workloads to settle.")
@click.option("--show-secrets", is_flag=True,
              help="Print Secret data as it is (masked with + by default).")
@click.option("-w", "--watch", is_flag=True,
              help="Keep running: run again when an input file changes or a Git repository "
                   "the inputs name gets a commit, printing only what changed (Ctrl-C stops).")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress line on stderr (it is shown only when stderr is a terminal).")
@command_flags()
def simulate(paths: Sequence[str], output: str, state: Path | None, budget: float,
             show_secrets: bool, watch: bool, quiet: bool) -> None:
    """Run supply chains for PATHS (files or folders of YAML) in a simulated cluster.

    Exit 0 when every workload is Ready, 1 when any is not, 2 on invalid input. While it runs,
    a terminal's stderr shows a live count: objects settled of the total, virtual time, rounds.

    \b
    Examples:
      reconciler simulate examples/greeter
      reconciler simulate -o yaml --budget 600 examples/greeter
      reconciler simulate --watch examples/greeter      # edit, save, see what changed
    """
    from reconciler.commands.watching import Progress, render_result, watch_inputs
    from reconciler.loader import load_paths
    from reconciler.simulation import simulate as run_simulation

    settings = SimulateSettings(budget_seconds=budget)
    if watch:
        if state is not None:
            fail(InputError("--watch runs on a fresh simulated cluster each time; "
                            "leave out --state"))
        sys.exit(watch_inputs(paths, output, settings, show_secrets, quiet))
    progress = Progress.for_stderr(quiet)
    try:
        objects = load_paths(paths, allow_empty=False)
        with writing(state), progress:
            result = run_simulation(objects, state, settings, progress=progress.update)
    except InputError as exc:
        fail(exc)
    click.echo(render_result(result, output, show_secrets))
    sys.exit(EXIT_OK if result.ready else EXIT_NOT_READY)


@click.command(name="test")
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
@command_flags()
def kuttl_test(paths: Sequence[str], keyword: str | None, timeout: float | None,
               junit: Path | None, setup_dirs: Sequence[str]) -> None:
    """Run kuttl tests (a kuttl-test.yaml, test folders, or folders of them) in the simulator.

    Exit 0 when every test passes, 1 when any fails, 2 on unusable input.

    \b
    Examples:
      reconciler test config/supply-chains/tests
      reconciler test -k web --junit results.xml config/supply-chains/tests
    """
    import time

    from reconciler.kuttl import discover, run_tests
    from reconciler.kuttl.junit import write_junit
    from reconciler.kuttl.report import failure_details, result_line, summary_line
    from reconciler.kuttl.runner import TestResult

    try:
        cases = discover(paths, timeout=timeout, extra_setup_dirs=setup_dirs)
    except InputError as exc:
        fail(exc)
    if keyword:
        cases = [c for c in cases if keyword in c.name]
        if not cases:
            fail(InputError(f"no test name contains {keyword!r} (-k filters by substring)"))

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


@click.command()
@click.argument("args", nargs=-1, metavar="[PATHS... | NAME...]")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="The simulated cluster to show (and to reconcile PATHS in, then save).")
@click.option("-o", "--output", type=click.Choice(["text", "table", "json", "yaml"]),
              default="text", show_default=True,
              help="The tree drawn (text; table is the same), or the owners as JSON or YAML.")
@click.option("--budget", type=SECONDS, default=SimulateSettings.budget_seconds,
              show_default=True, help="Virtual seconds to wait for workloads to settle.")
@click.option("-n", "--namespace", metavar="NAMESPACE",
              help="Cluster: the owners' namespace [default: the context's, else default].")
@click.option("-A", "--all-namespaces", is_flag=True, help="Cluster: owners in every namespace.")
@click.option("-l", "--selector", metavar="SELECTOR",
              help="Cluster: only owners whose labels match (kubectl's syntax: a=b,c!=d,e).")
@command_flags(cluster=True)
def tree(args: Sequence[str], state: Path | None, output: str, budget: float,
         namespace: str | None, all_namespaces: bool, selector: str | None,
         cluster: ClusterFlags) -> None:
    """Show what each Workload, Deliverable, Runnable and Kustomization made, as a tree.

    With PATHS (files or folders that exist), reconcile them first (as `simulate` does); with
    only --state, show the cluster saved there as it is. With owner NAMEs, or --kubeconfig,
    --context, -n, -A or -l, ask a running cluster (`reconciler serve`'s or a real one) and show
    those owners (none named: every owner in the namespace).
    Exit 0, 1 when a named owner does not exist, 2 on invalid input.

    \b
    Examples:
      reconciler tree examples/greeter
      reconciler tree --state cluster.db -o json
      reconciler tree greeter -n dev --kubeconfig serve.kubeconfig
      reconciler tree -A -l app.kubernetes.io/part-of=shop
    """
    from reconciler import tree as trees

    local = state is not None or any(Path(a).exists() for a in args)
    asks_cluster = bool(args) or any((cluster.kubeconfig, cluster.context, namespace,
                                      all_namespaces, selector))
    if not local and asks_cluster:
        from reconciler.commands.cluster import tree_of_cluster

        sys.exit(tree_of_cluster(args, cluster, namespace, all_namespaces, selector, output))
    try:
        if args:
            from reconciler.commands.watching import Progress
            from reconciler.loader import load_paths
            from reconciler.simulation import simulate as run_simulation

            loaded = load_paths(args, allow_empty=False)
            progress = Progress.for_stderr(quiet=False)
            with writing(state), progress:
                objects = run_simulation(loaded, state, SimulateSettings(budget_seconds=budget),
                                         progress=progress.update).objects
        elif state is not None:
            from reconciler.engine.wiring import load_environment

            env = load_environment("simulator")
            env.load_state(state)
            listing = getattr(env.backend, "all_objects", None)
            objects = list(listing()) if callable(listing) else []
        else:
            raise InputError("give PATHS to reconcile, or --state FILE to show a saved cluster, "
                             "or owner NAMEs with --kubeconfig to ask a cluster")
    except ReconcilerError as exc:
        fail(exc)
    click.echo(render_tree(trees.build(objects), output), nl=False)


def render_tree(roots: Sequence[Node], output: str) -> str:
    """`tree`'s output: the drawn tree (`text`, or `table` as the cluster verbs call it), or
    the owners as JSON or YAML."""
    from reconciler import tree as trees
    from reconciler.report import render_json, render_yaml

    if output in ("json", "yaml"):
        document = {"owners": trees.to_json(roots)}
        return (render_json(document) + "\n" if output == "json"
                else render_yaml(document))
    return trees.render(roots)
