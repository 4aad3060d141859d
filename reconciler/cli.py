"""The `reconciler` command line: simulate | validate | version."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from reconciler import __version__
from reconciler.loader import load_paths
from reconciler.model.errors import InputError, ReconcilerError
from reconciler.observability.logging import configure_logging
from reconciler.report import render_json, render_table, render_yaml
from reconciler.settings import SimulateSettings
from reconciler.simulation import simulate as run_simulation

EXIT_OK, EXIT_NOT_READY, EXIT_INPUT = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        objects = load_paths(paths)
    except InputError as exc:
        _fail(exc)
    click.echo(f"{len(objects)} objects valid")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True)
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Load the simulated cluster from FILE before the run and save it after.")
@click.option("--budget", type=float, default=SimulateSettings.budget_seconds,
              show_default=True, help="Virtual seconds to wait for workloads to settle.")
def simulate(paths: Sequence[str], output: str, state: Path | None, budget: float) -> None:
    """Run supply chains for PATHS (files or folders of YAML) in a simulated cluster.

    Exit 0 when every workload is Ready, 1 when any is not, 2 on invalid input.
    """
    try:
        result = run_simulation(load_paths(paths), state, SimulateSettings(budget_seconds=budget))
    except InputError as exc:
        _fail(exc)
    if output == "table":
        click.echo(render_table(result.workloads, result.summary))
    elif output == "json":
        click.echo(render_json(result.document()))
    else:
        click.echo(render_yaml(result.document()))
    sys.exit(EXIT_OK if result.ready else EXIT_NOT_READY)


def _fail(exc: ReconcilerError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_INPUT)


if __name__ == "__main__":
    main()
