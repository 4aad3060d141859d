"""Bounds on the work untrusted input can cause, and the deadline of one reconcile.

Everything a user writes (Workloads, templates, repositories, state files) is untrusted, so every
expansion, render, unpack and parse is bounded. `Limits` holds the numbers and their defaults
(`docs/security.md` lists them); `Deadline` bounds the wall-clock time of one reconcile.

A deadline is cooperative: Python cannot stop a thread, so the code that can loop for a long
time on untrusted input (interpolation, rendering, unpacking, large applies) calls
`check_deadline()` at its loop heads. The runner opens a `deadline_scope` around each reconcile;
outside a scope `check_deadline()` costs one context-variable read and never raises.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from types import TracebackType

from reconciler.model.errors import InputError, Transient


@dataclass(frozen=True)
class Limits:
    """The bounds on work caused by untrusted input; each default is documented in security.md."""

    reconcile_seconds: float = 30.0
    """Wall-clock time one reconcile may take before it is abandoned and retried with backoff."""
    yaml_aliases: int = 100
    """Alias references one YAML document may hold (the API server's decoder refuses bombs)."""
    yaml_depth: int = 100
    """Nesting depth of one YAML or JSON document."""
    yaml_bytes: int = 3 * 1024 * 1024
    """Size of one input file read as YAML (kube-apiserver accepts 3 MiB request bodies)."""
    state_bytes: int = 1024 * 1024 * 1024
    """Size of a `--state` file read back (a saved cluster, Secrets and events included)."""
    object_bytes: int = 1572864
    """Size of one stored object, as etcd's 1.5 MiB request limit."""
    interpolation_bytes: int = 1024 * 1024
    """Size of the result of one `$(...)$` interpolation of a template."""
    interpolation_depth: int = 16
    """How deep interpolated values may themselves be interpolated."""
    render_seconds: float = 5.0
    """CPU time one Jinja2 render may take."""
    render_bytes: int = 1024 * 1024
    """Size of one Jinja2 render's output."""
    artifact_bytes: int = 100 * 1024 * 1024
    """Unpacked size of one artifact (Flux's untar default is 100 MiB)."""
    artifact_files: int = 10_000
    """Files in one unpacked artifact."""
    yaml_alias_nodes: int = 10_000
    """Nodes the aliases of one YAML document may add once expanded (billion laughs)."""
    interpolation_steps: int = 100_000
    """Tag evaluations and stamped values one `$(...)$` interpolation of a template may take."""
    interpolation_work_bytes: int = 8 * 1024 * 1024
    """Bytes one interpolation may produce in total, intermediate re-stamped strings included."""
    jsonpath_results: int = 100_000
    """Values one JSONPath step may select (repeated recursive descent multiplies them)."""
    render_iterations: int = 1_000_000
    """Loop iterations and range items one Jinja2 render may go through."""
    source_fetch_seconds: float = 60.0
    """Time one whole download of a source artifact by the simulator's Tekton or kpack may take
    (not per read: a server sending a byte now and then cannot stretch it)."""
    task_run_seconds: float = 120.0
    """Real time the simulator gives a Tekton run whose steps run for real, when its
    `spec.timeout` (v1beta1) or `spec.timeouts.pipeline` (v1) says nothing."""
    task_run_seconds_max: float = 600.0
    """The cap on that real time, whatever the run's timeout asks for."""
    step_log_bytes: int = 32 * 1024
    """Logs the simulator keeps of one TaskRun's steps (the tail of each step's output)."""
    scan_report_bytes: int = 256 * 1024
    """Size of the Trivy JSON report (`.reconciler/scan-report.json`) a simulated kpack Build
    reads from its source as the registry's vulnerability data for the image it builds."""
    scan_policy_bytes: int = 64 * 1024
    """Size of a ScanPolicy's `spec.regoFile` the simulated scanner reads its rules from."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise InputError(f"limits: {name} must be positive (got {value})")


DEFAULT_LIMITS = Limits()


class DeadlineExceeded(Transient):
    """A reconcile ran past its deadline; it is abandoned and retried with backoff."""

    def __init__(self, seconds: float, where: str) -> None:
        self.seconds = seconds
        self.where = where
        super().__init__(
            "ReconcileTimeout",
            f"reconcile exceeded its deadline of {seconds:g}s (while {where}); "
            "the input may be too expensive to process",
        )


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time past which the current reconcile must stop."""

    at: float
    seconds: float

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self, where: str) -> None:
        if time.monotonic() > self.at:
            raise DeadlineExceeded(self.seconds, where)


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "reconciler_deadline", default=None)


class _DeadlineScope:
    """`deadline_scope`'s context manager: a plain class, as every reconcile opens one (a
    generator-based one costs twice as much)."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._token: contextvars.Token[Deadline | None] | None = None

    def __enter__(self) -> Deadline:
        outer = _current.get()
        deadline = Deadline(time.monotonic() + self._seconds, self._seconds)
        if outer is not None and outer.at < deadline.at:
            deadline = outer
        self._token = _current.set(deadline)
        return deadline

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def deadline_scope(seconds: float) -> _DeadlineScope:
    """Run the body under a deadline `seconds` from now (an enclosing, earlier one still holds)."""
    return _DeadlineScope(seconds)


def current_deadline() -> Deadline | None:
    return _current.get()


def check_deadline(where: str) -> None:
    """Raise `DeadlineExceeded` when the current reconcile's deadline has passed (the loop heads
    of every render call this: the check is inlined rather than `Deadline.check`)."""
    deadline = _current.get()
    if deadline is not None and time.monotonic() > deadline.at:
        raise DeadlineExceeded(deadline.seconds, where)
