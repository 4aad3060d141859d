"""`reconciler state convert`: a `--state` file copied into the other format (the SQLite
database to its JSON export, or a JSON state into a database)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.commands.common import command_flags, fail, writing
from reconciler.model.errors import InputError, ReconcilerError


@click.command(name="state")
@click.argument("action", type=click.Choice(["convert"]))
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--environment", default="simulator", show_default=True,
              help="The environment whose state the files hold.")
@command_flags()
def state(action: str, source: Path, dest: Path, environment: str) -> None:
    """Copy the saved cluster in SOURCE into DEST, whose name picks the format: `*.json` the
    whole cluster as JSON (the export form), any other name an SQLite database. Both files
    are locked as `--state` is while copying; DEST is written 0600 (it holds Secrets) and
    must not exist yet.

    \b
    Examples:
      reconciler state convert cluster.db cluster.json     # export a database as JSON
      reconciler state convert cluster.json cluster.db     # move a JSON state to SQLite
    """
    from reconciler.engine.wiring import load_environment

    if dest.exists():
        fail(InputError(f"{dest}: already exists; give a new file"))
    if source.resolve() == dest.resolve():
        fail(InputError("SOURCE and DEST are the same file"))
    try:
        with writing(source), writing(dest):
            env = load_environment(environment)
            if not env.stateful:
                fail(InputError(f"the {environment} environment keeps no state file"))
            env.load_state(source)
            env.save_state(dest)
    except ReconcilerError as exc:
        fail(exc)
    click.echo(f"{source} -> {dest}")
