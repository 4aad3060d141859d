"""What every command shares: exit codes, the flags accepted before or after the command name,
the one way an error of the product ends a command.

Kept light (click and the standard library only at import time): `reconciler --version` and
every command pay for it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from reconciler.model.errors import ReconcilerError

EXIT_OK, EXIT_NOT_READY, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

VERBOSE_KEY = "reconciler.verbose"

F = TypeVar("F", bound=Callable[..., Any])


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


@dataclass(frozen=True)
class ClusterFlags:
    """Where a cluster command connects: `--kubeconfig` (else `$KUBECONFIG`, the in-cluster
    service account, `~/.kube/config`, as kubectl) and `--context`."""

    kubeconfig: Path | None
    context: str | None


def fail(exc: ReconcilerError | str, code: int = EXIT_INPUT) -> NoReturn:
    """End the command with `error: ...` on stderr and `code` (2: the user's input). The text
    may quote what a user wrote (names, messages, file contents): control characters are
    neutralised."""
    from reconciler.model.terminal import printable

    click.echo(f"error: {printable(str(exc))}", err=True)
    sys.exit(code)


def writing(state: Path | None) -> contextlib.AbstractContextManager[None]:
    """The state file's writer lock for a run that saves `state` (nothing without one)."""
    if state is None:
        return contextlib.nullcontext()
    from reconciler.runtime.statefile import state_lock

    return state_lock(state)


def verbosity(ctx: click.Context | None = None) -> int:
    """How many -v were given, before and after the command name together."""
    ctx = ctx or click.get_current_context()
    return int(ctx.meta.get(VERBOSE_KEY, ctx.find_root().params.get("verbose") or 0))


def setup_logging(verbose: int) -> None:
    from reconciler.observability.logging import configure_logging

    configure_logging({0: "warning", 1: "info"}.get(verbose, "debug"))


def _root_param(ctx: click.Context, name: str) -> Any:
    return ctx.find_root().params.get(name)


def command_flags(*, cluster: bool = False, logs: bool = True) -> Callable[[F], F]:
    """The global flags, accepted after the command name too (`reconciler get wl -v`): `-v`,
    and for commands that talk to a cluster `--kubeconfig` and `--context`, which reach the
    command as one `cluster: ClusterFlags` argument. Given after the command, a flag wins over
    the same flag given before it (`-v` counts add up). `logs`: set up logging at the
    verbosity (commands that configure their own, like `run`, say False)."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, verbose: int = 0, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            total = verbose + int(_root_param(ctx, "verbose") or 0)
            ctx.meta[VERBOSE_KEY] = total
            if logs:
                setup_logging(total)
            if cluster:
                kwargs["cluster"] = ClusterFlags(
                    kwargs.pop("kubeconfig", None) or _root_param(ctx, "kubeconfig"),
                    kwargs.pop("context", None) or _root_param(ctx, "context"))
            return command(*args, **kwargs)

        decorated: Any = wrapper
        if cluster:
            decorated = context_option()(kubeconfig_option()(decorated))
        decorated = verbose_option()(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


def verbose_option() -> Callable[[F], F]:
    return click.option("-v", "--verbose", count=True,
                        help="More logs on stderr (-v info, -vv debug and tracebacks).")


def kubeconfig_option() -> Callable[[F], F]:
    return click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
                        help="The kubeconfig of the cluster to talk to [default: $KUBECONFIG, "
                             "the in-cluster service account, ~/.kube/config].")


def context_option() -> Callable[[F], F]:
    return click.option("--context", metavar="NAME",
                        help="The kubeconfig context to use [default: its current-context].")
