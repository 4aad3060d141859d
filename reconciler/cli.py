"""The `reconciler` command line: the group, its global flags, and where each command lives.

Every command is in a module of `reconciler/commands/`, imported only when that command runs
(or its help is asked for): `reconciler --version`, `--help` and `completion` import click and
this module's few names, nothing of the product (`tests/unit/test_cli_start.py` checks it,
`benchmarks/cli_start.py` times it).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from reconciler import __version__
from reconciler.commands.common import (
    EXIT_INTERNAL,
    EXIT_OK,
    command_flags,
    context_option,
    fail,
    kubeconfig_option,
    verbose_option,
)

# name: (module under reconciler.commands, attribute, the line `reconciler --help` shows).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "simulate": ("local", "simulate", "Run supply chains for PATHS in a simulated cluster."),
    "validate": ("local", "validate", "Check input files as an API server would."),
    "diff": ("local", "diff", "Show what a reconcile of PATHS would change."),
    "test": ("local", "kuttl_test", "Run kuttl tests in the simulator."),
    "tree": ("local", "tree", "Show what each owner made, as a tree."),
    "run": ("servers", "run", "Run the reconciler as a daemon over PATHS."),
    "settings": ("servers", "show_settings", "Print the effective settings of `run`."),
    "serve": ("servers", "serve", "Serve a simulated cluster over the Kubernetes API."),
    "get": ("cluster", "get", "List workloads, deliverables, sources or kustomizations."),
    "events": ("cluster", "events", "List a cluster's events, or one object's."),
    "reconcile": ("cluster", "reconcile", "Ask for a reconcile now and wait for it."),
    "suspend": ("cluster", "suspend", "Stop reconciling an object until it is resumed."),
    "resume": ("cluster", "resume", "Reconcile a suspended object again, at once."),
    "state": ("state", "state", "Convert a --state file: SQLite to its JSON export, or back."),
}


class _Commands(click.Group):
    """Finds each command's module by name on first use, and turns an unexpected exception
    into one readable line instead of a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        import importlib

        module = importlib.import_module(f"reconciler.commands.{found[0]}")
        command: click.Command = getattr(module, found[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table, so `reconciler --help` imports no command module.
        rows = [(name, COMMANDS[name][2] if name in COMMANDS
                 else self.commands[name].get_short_help_str(60))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (`reconciler test ... | head`): nothing left to say to it.
            sys.stderr.close()
            sys.exit(EXIT_OK)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            from reconciler.commands.common import verbosity
            from reconciler.model.errors import ReconcilerError

            if isinstance(exc, ReconcilerError):
                fail(exc)
            if verbosity(ctx) >= 2:
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(run with -vv for the traceback, and please report it)", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="reconciler")
@verbose_option()
@kubeconfig_option()
@context_option()
def main(verbose: int, kubeconfig: Any, context: str | None) -> None:
    """A GitOps reconciler for Cartographer-style supply chains.

    Global flags (-v, --kubeconfig, --context) may come before or after the command.

    \b
    Examples:
      reconciler simulate examples/greeter
      reconciler simulate --watch examples/greeter
      reconciler get workloads -A
      reconciler reconcile workload greeter -n dev --timeout 60
      reconciler completion bash > ~/.local/share/bash-completion/completions/reconciler
    """


@main.command()
@command_flags(logs=False)
def version() -> None:
    """Print the version.

    \b
    Examples:
      reconciler version
      reconciler --version
    """
    click.echo(__version__)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@command_flags(logs=False)
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    Commands, flags, kinds and choices complete; load the script in the shell's startup file.

    \b
    Examples:
      eval "$(reconciler completion bash)"                  # in ~/.bashrc
      reconciler completion zsh > "${fpath[1]}/_reconciler"
      reconciler completion fish > ~/.config/fish/completions/reconciler.fish
    """
    from click.shell_completion import get_completion_class

    found = get_completion_class(shell)
    if found is None:  # click knows all three; a newer click might drop one
        fail(f"no completion for {shell}")
    click.echo(found(main, {}, "reconciler", "_RECONCILER_COMPLETE").source())


if __name__ == "__main__":
    main()
