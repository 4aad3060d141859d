"""Simulated Tekton Pipelines: PipelineRuns and TaskRuns, whose steps really run.

What real Tekton reports, a run reports here: `status.startTime`, a `Succeeded` condition that is
Unknown/Running until the run is over and then True/Succeeded (or False), a `completionTime`,
and its results (`status.results` in v1, `status.pipelineResults` / `status.taskResults` in
v1beta1). A `pipelineRef`/`taskRef` naming an object that does not exist fails the run at once
(CouldntGetPipeline / CouldntGetTask), as Tekton does; a cancelled run (`spec.status`) fails with
reason Cancelled. Finished runs never change again: runs are immutable records.

Steps that run for real. A TaskRun whose Task has steps with `script` or `command` runs them on
this machine, one after the other, as subprocesses (`run_task`): in a fresh temporary copy of
the unpacked source artifact its `source-url` param names (TAP's param; `simulator.sourcefetch`),
with `$(params.NAME)`, `$(context.taskRun.name)`, `$(results.NAME.path)` and
`$(workspaces.NAME.path)` (the source copy) substituted; a `script` without `#!` runs with
`/bin/sh` after `set -e`, as Tekton does. Each step gets a scrubbed environment (PATH, HOME and
TMPDIR inside the run's temporary directory, LANG, the step's own `env` values; nothing else of
the daemon's), its own process group (on Linux under a supervisor, a child subreaper, that
ends every process the step started when the step ends), a time limit shared by the run (its
`spec.timeout`, else `Limits.task_run_seconds`, never more than `Limits.task_run_seconds_max`),
and bounded output (the tail of each step is kept, `Limits.step_log_bytes` in all). Exit status
0 moves on to the next step; any other fails the run, reason Failed, message `step "S" in task
"T" exited with code N`, and skips the remaining steps; running out of time fails it with reason
TaskRunTimeout. The image of a step is not used: the host's tools are. `status.steps[]` is
written as Tekton writes it and the logs (JSON {step: text}) go in annotation
`simulator.reconciler.dev/logs`. Results are the files the steps wrote under
`$(results.NAME.path)`.

A TaskRun of `git-writer` (TAP's ClusterTask) is performed by `simulator.gitwriter` instead of a
script, with credentials from the Secret its `git_secret` param names, or else the first Secret
with Git keys among its ServiceAccount's `secrets` whose `tekton.dev/git-N` annotation names the
repository's host (as Tekton's credential initialisation: `https://host` for http(s), `host` for
ssh; unannotated Secrets are not used).

A PipelineRun whose Pipeline's tasks all name a Task (or an inline `taskSpec`, or git-writer),
at least one of them runnable, creates one TaskRun per pipeline task, as Tekton does
(`<pipelinerun>-<task>`, owner reference, labels `tekton.dev/pipelineRun` and
`tekton.dev/pipelineTask`), one at a time in `runAfter`/result-reference order, passing params and
earlier results on; the first failure fails the PipelineRun with the TaskRun's message and skips
the rest. `finally` tasks are not run, `when` expressions are not evaluated, and tasks Tekton
would run in parallel run one after the other.

Steps start in the unpacked source already. TAP's sample testing Pipeline instead downloads
`$(params.source-url)` itself (`wget ... | tar xz`); in `simulate` and `test` that URL names the
in-cluster host, which nothing answers, so such a step fails: drop the download and use the
working directory.

Time. A run takes a fixed virtual duration (`TektonTiming`, or the duration annotation below),
however long its steps take for real: they run on a worker thread from the first reconcile, and
the reconcile at the virtual end waits for them (in slices that stay within the reconcile
deadline), so `simulate` stays deterministic. `reconciler serve` calls `configure_for_serving`:
its reconciles never wait (the cluster's lock is held), the run just stays Running until the steps
are done. `reconciler run` on the simulator keeps the waiting: its clock follows the wall clock, so
steps have had the run's virtual duration in real time by then; a step that takes longer holds
the simulated cluster (its lock) for up to the reconcile deadline per reconcile.

Turning it off. Running a repository's steps means running its code on this machine, as the user
running `reconciler`. `RECONCILER_SIMULATOR_RUN_STEPS=false` (or `0`/`off`/`no`) turns steps and
the git-writer off: every run then takes the annotation-driven outcome below. The default is on
for `simulate`, `test` and `run`, off for `serve` (whose API clients are not the machine's user).

Annotations on a run steer the simulation of runs without script/command steps (and of every
run when steps are off). They usually come from the ClusterRunTemplate, so a supply chain author
can exercise the failure path without a cluster:

- `simulator.reconciler.dev/outcome: Failed` makes the run fail.
- `simulator.reconciler.dev/results: '{"digest": "sha256:..."}'` sets result values.
- `simulator.reconciler.dev/duration: "45"` sets the run's virtual duration in seconds.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from reconciler.backends.base import Backend, write_status
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from reconciler.model.errors import BackendError, ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits, current_deadline
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from simulator import gitwriter
from simulator.sourcefetch import fetch_source

log = structlog.get_logger(__name__)

TEKTON_API: Final = "tekton.dev/v1"
ANNOTATION_PREFIX: Final = "simulator.reconciler.dev/"
OUTCOME_ANNOTATION: Final = ANNOTATION_PREFIX + "outcome"
RESULTS_ANNOTATION: Final = ANNOTATION_PREFIX + "results"
DURATION_ANNOTATION: Final = ANNOTATION_PREFIX + "duration"
LOGS_ANNOTATION: Final = ANNOTATION_PREFIX + "logs"
SOURCE_ANNOTATION: Final = ANNOTATION_PREFIX + "source-url"
"""On a PipelineRun's TaskRuns: the PipelineRun's `source-url`, for tasks not passed one."""
STEPS_ENV: Final = "RECONCILER_SIMULATOR_RUN_STEPS"
SUCCEEDED: Final = "Succeeded"
PIPELINE_RUN_LABEL: Final = "tekton.dev/pipelineRun"
PIPELINE_TASK_LABEL: Final = "tekton.dev/pipelineTask"
FIELD_MANAGER: Final = "tekton-pipelines-controller"
# Its own manager: an apply of the annotation alone under FIELD_MANAGER would drop every other
# field that manager set (the labels and spec of a PipelineRun's TaskRun).
LOGS_FIELD_MANAGER: Final = "tekton-pipelines-controller-logs"
_CANCELLED = ("Cancelled", "CancelledRunFinally", "StoppedRunFinally", "TaskRunCancelled")
_RESULT_BYTES = 4096  # Tekton's limit on one result (the termination message)
_JOBS_KEPT = 256
_WAIT_MARGIN = 2.0  # seconds of the reconcile deadline left unused while waiting for steps
_OFF = ("0", "false", "off", "no")
_ON = ("1", "true", "on", "yes")


def steps_enabled(default: bool = True, environ: Mapping[str, str] | None = None) -> bool:
    """Whether steps run for real: `RECONCILER_SIMULATOR_RUN_STEPS`, else `default`."""
    value = (os.environ if environ is None else environ).get(STEPS_ENV, "").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    return default


@dataclass
class TektonTiming:
    """Virtual seconds a run takes unless its duration annotation says otherwise."""

    pipeline_run: float = 20.0
    task_run: float = 10.0


@dataclass(frozen=True)
class _Flavour:
    """What differs between PipelineRuns and TaskRuns."""

    kind: str
    ref_field: str  # pipelineRef
    spec_field: str  # pipelineSpec
    definition_kind: str  # Pipeline
    definition_plural: str  # pipelines
    missing_reason: str  # CouldntGetPipeline
    v1beta1_results: str  # pipelineResults
    running_message: str
    succeeded_message: str
    failed_message: str


PIPELINE_RUN = _Flavour(
    kind="PipelineRun", ref_field="pipelineRef", spec_field="pipelineSpec",
    definition_kind="Pipeline", definition_plural="pipelines",
    missing_reason="CouldntGetPipeline", v1beta1_results="pipelineResults",
    running_message="Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 0",
    succeeded_message="Tasks Completed: {tasks} (Failed: 0, Cancelled 0), Skipped: 0",
    failed_message="Tasks Completed: {tasks} (Failed: 1, Cancelled 0), Skipped: 0",
)

TASK_RUN = _Flavour(
    kind="TaskRun", ref_field="taskRef", spec_field="taskSpec",
    definition_kind="Task", definition_plural="tasks",
    missing_reason="CouldntGetTask", v1beta1_results="taskResults",
    running_message="Not all Steps in the Task have finished executing",
    succeeded_message="All Steps have completed executing",
    failed_message="\"step-{step}\" exited with code 1",
)


# --- running steps ------------------------------------------------------------------------


@dataclass
class StepResult:
    """One step as it ended: `reason` is Completed, Error, TaskRunTimeout or Skipped."""

    name: str
    exit_code: int
    reason: str
    log: str = ""


@dataclass
class TaskOutcome:
    steps: list[StepResult] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)
    failure: tuple[str, str] | None = None
    """(reason, message) when the run failed."""


@dataclass(frozen=True)
class TaskJob:
    """Everything a worker thread needs to run one TaskRun's steps (no cluster access)."""

    task: str
    """The task's name in messages: the pipeline task, else the Task, else the run."""
    run_name: str
    namespace: str
    uid: str
    steps: tuple[Mapping[str, Any], ...]
    params: Mapping[str, str | list[str]]
    result_names: tuple[str, ...]
    workspaces: tuple[str, ...]
    source_url: str
    timeout: float
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)
    """Set when the run is cancelled: the running step's process group is killed."""


_REFERENCE = re.compile(r"\$\(\s*([^()\s]+?)\s*\)")
_BRACKETS = re.compile(r"""\[\s*["']([^"']+)["']\s*\]""")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace `$(name)` references Tekton knows (`params.x`, `params["x"]`, `context...`,
    `results.x.path`, `workspaces.x.path`) found in `values`; leave any other text alone."""
    def one(match: re.Match[str]) -> str:
        key = _BRACKETS.sub(lambda m: "." + m.group(1), match.group(1))
        return values.get(key, match.group(0))

    return _REFERENCE.sub(one, text)


def expand_list(items: Sequence[Any], values: Mapping[str, str],
                arrays: Mapping[str, list[str]]) -> list[str]:
    """Substitute each item; an item that is exactly `$(params.NAME[*])` of an array param
    becomes all of its elements, as in Tekton's `args`."""
    out: list[str] = []
    for item in items:
        text = str(item)
        match = re.fullmatch(r"\$\(\s*params\.([^()\s\[]+)\[\*\]\s*\)", text)
        if match and match.group(1) in arrays:
            out.extend(arrays[match.group(1)])
        else:
            out.append(substitute(text, values))
    return out


def run_task(job: TaskJob, limits: Limits = DEFAULT_LIMITS,
             fetch: Callable[[str, Path, Limits, float | None], Path] = fetch_source,
             ) -> TaskOutcome:
    """Run `job`'s steps in a fresh temporary directory; never raises for what a step does."""
    deadline = time.monotonic() + job.timeout
    with tempfile.TemporaryDirectory(prefix="reconciler-taskrun-") as tmp_name:
        tmp = Path(tmp_name)
        source, home, scratch, results, scripts = (tmp / d for d in
                                                   ("source", "home", "tmp", "results", "scripts"))
        for directory in (home, scratch, results, scripts):
            directory.mkdir(mode=0o700)
        if job.source_url:
            try:
                fetch(job.source_url, source, limits, deadline)
            except ReconcilerError as exc:
                return TaskOutcome(failure=("Failed", f"task \"{job.task}\": cannot fetch the "
                                                      f"source: {exc}"))
        else:
            source.mkdir(mode=0o700)
        values, arrays = _values(job, source, results)
        env_base = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home),
                    "TMPDIR": str(scratch), "LANG": "C.UTF-8"}
        outcome = TaskOutcome()
        for index, step in enumerate(job.steps):
            name = str(step.get("name") or f"unnamed-{index}")
            if job.cancel.is_set() and outcome.failure is None:
                outcome.failure = ("Cancelled", f"TaskRun \"{job.run_name}\" was cancelled")
            if outcome.failure is not None:
                outcome.steps.append(StepResult(name, 1, "Skipped"))
                continue
            try:
                argv = _argv(step, index, values, arrays, scripts, limits)
            except _StepError as exc:
                outcome.steps.append(StepResult(name, 1, "Error", str(exc)))
                outcome.failure = ("Failed", f"step \"{name}\" in task \"{job.task}\": {exc}")
                continue
            if argv is None:
                outcome.steps.append(StepResult(
                    name, 0, "Completed", "(no script or command: the simulator runs only "
                                          "script and command steps)\n"))
                continue
            env = {**env_base, **_step_env(step, values)}
            cwd = _working_dir(step, values, source)
            code, text, timed_out = run_process(argv, cwd, env, deadline, limits.step_log_bytes,
                                                job.cancel)
            if timed_out:
                outcome.steps.append(StepResult(name, code, "TaskRunTimeout", text))
                outcome.failure = ("TaskRunTimeout",
                                   f"TaskRun \"{job.run_name}\" failed to finish within "
                                   f"\"{_go_duration(job.timeout)}\" (step \"{name}\" in task "
                                   f"\"{job.task}\" was killed)")
            elif code != 0:
                outcome.steps.append(StepResult(name, code, "Error", text))
                outcome.failure = ("Failed", f"step \"{name}\" in task \"{job.task}\" exited "
                                             f"with code {code}")
            else:
                outcome.steps.append(StepResult(name, 0, "Completed", text))
        if outcome.failure is None:
            outcome.results = _read_results(results, job.result_names)
        _fit_logs(outcome.steps, limits.step_log_bytes)
        return outcome


class _StepError(Exception):
    pass


def _values(job: TaskJob, source: Path, results: Path) -> tuple[dict[str, str],
                                                                 dict[str, list[str]]]:
    values: dict[str, str] = {
        "context.taskRun.name": job.run_name, "context.taskRun.namespace": job.namespace,
        "context.taskRun.uid": job.uid, "context.task.name": job.task,
    }
    arrays: dict[str, list[str]] = {}
    for name, value in job.params.items():
        if isinstance(value, list):
            arrays[name] = [str(v) for v in value]
            values[f"params.{name}"] = " ".join(arrays[name])
        else:
            values[f"params.{name}"] = str(value)
    for name in job.result_names:
        values[f"results.{name}.path"] = str(results / name)
    for name in (*job.workspaces, "source"):
        values[f"workspaces.{name}.path"] = str(source)
        values[f"workspaces.{name}.bound"] = "true"
    return values, arrays


def _argv(step: Mapping[str, Any], index: int, values: Mapping[str, str],
          arrays: Mapping[str, list[str]], scripts: Path, limits: Limits) -> list[str] | None:
    args = step.get("args") or []
    command = step.get("command") or []
    if not isinstance(args, list) or not isinstance(command, list):
        raise _StepError("command and args must be lists")
    script = step.get("script")
    if isinstance(script, str) and script.strip():
        text = substitute(script, values)
        if len(text.encode()) > limits.interpolation_bytes:
            raise _StepError(f"script expands to more than {limits.interpolation_bytes} bytes "
                             "(limit interpolation_bytes)")
        if not text.startswith("#!"):
            text = "#!/bin/sh\nset -e\n" + text
        path = scripts / f"script-{index}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return [str(path), *expand_list(args, values, arrays)]
    if command:
        argv = expand_list([*command, *args], values, arrays)
        if sum(len(a.encode()) for a in argv) > limits.interpolation_bytes:
            raise _StepError(f"command expands to more than {limits.interpolation_bytes} bytes "
                             "(limit interpolation_bytes)")
        return argv
    return None


def _step_env(step: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in step.get("env") or []:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) \
                and "value" in item and "\x00" not in item["name"] and "=" not in item["name"]:
            out[item["name"]] = substitute(str(item.get("value") or ""), values)
    return out


def _working_dir(step: Mapping[str, Any], values: Mapping[str, str], source: Path) -> Path:
    """The step's `workingDir` when it names a directory inside the source copy, else the copy's
    root (an image's /workspace/... path means the source here)."""
    given = substitute(str(step.get("workingDir") or ""), values)
    if not given:
        return source
    candidate = Path(given) if given.startswith(str(source)) else source / given
    try:
        resolved = candidate.resolve()
    except OSError:
        return source
    if resolved.is_relative_to(source.resolve()) and resolved.is_dir():
        return resolved
    return source


_running_groups: dict[int, bool] = {}
"""Each running step's process group, and whether it is a supervisor's (ended with SIGTERM)."""
_groups_lock = threading.Lock()


@atexit.register
def _kill_all() -> None:
    """At exit, end every step still running: its thread is a daemon thread, its process group
    would otherwise outlive `reconciler`. A supervisor is asked (SIGTERM) so that it ends all
    of its step's descendants."""
    with _groups_lock:
        groups = list(_running_groups.items())
    for group, supervised in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if supervised:
                os.kill(group, signal.SIGTERM)
            else:
                os.killpg(group, signal.SIGKILL)


_SUPERVISOR = r"""
import ctypes, json, os, signal, sys, time
with open(sys.argv[1], encoding="utf-8") as f:
    spec = json.load(f)
os.unlink(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    os.write(2, b"reconciler: cannot supervise the step: prctl(PR_SET_CHILD_SUBREAPER) "
                b"failed; set RECONCILER_SIMULATOR_RUN_STEPS=false\n")
    sys.exit(125)
libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: the daemon's thread is gone
if os.getppid() != spec["parent"]:
    sys.exit(125)
class Stop(Exception):
    pass
def stop(*_):
    raise Stop
signal.signal(signal.SIGTERM, stop)
step = os.fork()
if step == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.setpgid(0, 0)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # the step dies with its supervisor
        os.chdir(spec["cwd"])
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        os.write(2, f"cannot run {spec['argv'][0]!r}: {exc.strerror}\n".encode())
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
code = 137
try:
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == step:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            break
except (Stop, ChildProcessError):
    pass
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def children():
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found
try:
    os.killpg(step, signal.SIGKILL)
except OSError:
    pass
while True:
    for pid in children():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.01)
sys.exit(code)
"""
"""The step's supervisor (Linux): a child subreaper, so every process the step starts, even in
a new session, stays its descendant; when the step exits or the supervisor gets SIGTERM, it
kills all of them, reaps them and exits with the step's status (128+N when killed by N)."""
_SUPERVISED = sys.platform == "linux" and bool(sys.executable)
_STOP_GRACE = 5.0
"""Seconds a supervisor has to end its step's processes after SIGTERM before it is killed."""


def _popen(argv: Sequence[str], cwd: Path, env: Mapping[str, str]
           ) -> tuple[subprocess.Popen[bytes], bool]:
    """The step's process: its supervisor when there can be one, else the step itself."""
    options: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE,
                               "stderr": subprocess.STDOUT, "start_new_session": True,
                               "close_fds": True}
    if not _SUPERVISED:
        return subprocess.Popen(list(argv), cwd=cwd, env=dict(env), **options), False
    fd, spec_path = tempfile.mkstemp(prefix="reconciler-step-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"argv": list(argv), "cwd": str(cwd), "env": dict(env),
                       "parent": os.getpid()}, out)
        return subprocess.Popen([sys.executable, "-I", "-S", "-c", _SUPERVISOR, spec_path],
                                cwd="/", env={"LANG": "C.UTF-8"}, **options), True
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(spec_path)
        raise


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str], deadline: float,
                log_bytes: int, cancel: threading.Event | None = None) -> tuple[int, str, bool]:
    """Run `argv` in its own process group until it exits, `deadline` (monotonic) passes or
    `cancel` is set; returns (exit code, tail of its combined output, timed out). On Linux it
    runs under a supervisor (`_SUPERVISOR`, a child subreaper) that ends every process the step
    started when the step ends, even one that left its process group and session (`setsid`);
    elsewhere the step's process group is killed at the end, and a process that left it is not
    found.

    The output is read on this thread (select, non-blocking reads): nothing else ever reads
    the pipe, so closing it cannot leave a reader on a descriptor number the process reuses.
    Output still arriving after the process exited (a background process holding the pipe) is
    read for at most `_DRAIN_SECONDS`."""
    tail = bytearray()
    try:
        proc, supervised = _popen(argv, cwd, env)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        return code, f"cannot run {argv[0]!r}: {exc.strerror}\n", False
    with _groups_lock:
        _running_groups[proc.pid] = supervised
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)

    def read(wait: float) -> bool:
        """Read what the pipe holds after waiting up to `wait` seconds; False at its end."""
        readable, _, _ = select.select([fd], [], [], max(wait, 0.0))
        if not readable:
            return True
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        tail.extend(chunk)
        if len(tail) > 2 * log_bytes:
            del tail[:-log_bytes]
        return True

    timed_out, open_pipe = False, True
    try:
        while proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if cancel is not None and cancel.is_set():
                break
            if open_pipe:
                open_pipe = read(min(left, _TICK))
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(left, _TICK))
    finally:
        if supervised and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_STOP_GRACE)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        with _groups_lock:
            _running_groups.pop(proc.pid, None)
        drain_until = time.monotonic() + _DRAIN_SECONDS
        while open_pipe and (left := drain_until - time.monotonic()) > 0:
            open_pipe = read(min(left, _TICK))
        proc.stdout.close()
    code = proc.returncode
    if code < 0:
        code = 128 - code  # killed by a signal, as a shell reports it
    text = bytes(tail[-log_bytes:]).decode("utf-8", "replace")
    return code, text, timed_out


_TICK = 0.05
"""Seconds between looks at the step's exit, its deadline and its cancel."""
_DRAIN_SECONDS = 0.5
"""How long output is still read after the step's process group was killed."""


def _read_results(results: Path, names: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        path = results / name
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                out[name] = fh.read(_RESULT_BYTES).decode("utf-8", "replace")
    return out


def _fit_logs(steps: Sequence[StepResult], budget: int) -> None:
    """Trim the steps' logs to their tails so that together they fit `budget` bytes, sharing it
    evenly and handing what a short log leaves unused to the others."""
    sizes = [len(s.log.encode()) for s in steps]
    if sum(sizes) <= budget:
        return
    remaining, pending = budget, sorted(range(len(steps)), key=lambda i: sizes[i])
    while pending:
        share = remaining // len(pending)
        index = pending.pop(0)
        keep = min(sizes[index], share)
        remaining -= keep
        data = steps[index].log.encode()
        steps[index].log = data[len(data) - keep:].decode("utf-8", "ignore") if keep else ""


def _go_duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: Any) -> float | None:
    """A Go duration ("1h30m", "90s", "0"); None for none or an unreadable one."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    if value == "0":
        return 0.0
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


# --- the controller -------------------------------------------------------------------------


@dataclass
class _Job:
    future: concurrent.futures.Future[TaskOutcome]
    cancel: threading.Event
    kind: str = TASK_RUN.kind
    namespace: str = ""
    name: str = ""


class TektonRuns:
    """Runs PipelineRuns and TaskRuns to completion on the virtual clock."""

    name = "simulated-tekton"

    def __init__(self, backend: Backend, clock: Clock, timing: TektonTiming | None = None, *,
                 limits: Limits = DEFAULT_LIMITS, run_steps: bool | None = None) -> None:
        self.backend, self.clock = backend, clock
        self.timing = timing or TektonTiming()
        self.limits = limits
        self.run_steps = steps_enabled() if run_steps is None else run_steps
        self.wait_for_steps = True
        """Whether the reconcile at a run's virtual end waits for its steps (deterministic
        `simulate`), rather than leaving it Running until they are done (`serve`)."""
        self.allow_local_git = True
        """Whether the git-writer may push to local paths and file:// URLs."""
        self.push = True
        """Whether the git-writer pushes (not in a dry run: `reconciler diff`)."""
        self._jobs: dict[str, _Job] = {}
        listen = getattr(backend, "on_removed", None)
        if callable(listen):  # the simulator's cluster: a deleted run's job stops at once
            listen(self._removed)

    def _removed(self, obj: Obj) -> None:
        if obj.get("kind") in (TASK_RUN.kind, PIPELINE_RUN.kind) \
                and str(obj.get("apiVersion") or "").startswith("tekton.dev/"):
            self._forget(obj)

    def configure_for_serving(self) -> None:
        """`reconciler serve`: never wait while holding the cluster's lock, no local Git
        repositories, and steps off unless `RECONCILER_SIMULATOR_RUN_STEPS` turns them on
        (the API's clients are not this machine's user)."""
        self.wait_for_steps = False
        self.allow_local_git = False
        self.run_steps = steps_enabled(default=False)

    def configure_for_dry_run(self) -> None:
        """`reconciler diff`: the git-writer commits in its temporary clone and pushes
        nothing, so computing a plan never writes to a GitOps repository."""
        self.push = False

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(TEKTON_API, PIPELINE_RUN.kind), (TEKTON_API, TASK_RUN.kind)]

    def reconcile(self, obj: Obj) -> float | None:
        flavour = PIPELINE_RUN if obj.get("kind") == PIPELINE_RUN.kind else TASK_RUN
        status = status_of(obj)
        if _succeeded_status(status) in (TRUE, FALSE):
            self._forget(obj)
            return None
        now = self.clock.now()
        start = _parse_time(status.get("startTime")) or now
        writer = flavour is TASK_RUN and self.run_steps and _is_git_writer(obj)
        definition, missing = ({}, "") if writer else self._definition(obj, flavour)
        if missing:
            self._write(obj, start, Condition(SUCCEEDED, FALSE, flavour.missing_reason, missing),
                        results=None)
            return None
        if str(spec_of(obj).get("status") or "") in _CANCELLED:
            self._forget(obj)
            self._write(obj, start, Condition(
                SUCCEEDED, FALSE, "Cancelled",
                f"{flavour.kind} \"{name_of(obj)}\" was cancelled"), results=None)
            return None
        if self.run_steps:
            if writer or (flavour is TASK_RUN and _runnable(definition)):
                return self._reconcile_task(obj, definition, start, writer)
            if flavour is PIPELINE_RUN:
                tasks, missing = self._pipeline_tasks(obj, definition)
                if missing:
                    self._write(obj, start, Condition(SUCCEEDED, FALSE, "CouldntGetTask",
                                                      missing), results=None)
                    return None
                if tasks:
                    return self._reconcile_pipeline(obj, definition, tasks, start)
        remaining = start + self._duration(obj, flavour) - now
        if remaining > 0:
            self._write(obj, start, Condition(SUCCEEDED, UNKNOWN, "Running",
                                              flavour.running_message), results=None)
            return remaining
        tasks_count = len(definition.get("tasks") or []) or 1
        steps = definition.get("steps") or [{}]
        if str(_annotations(obj).get(OUTCOME_ANNOTATION, "")).lower() == "failed":
            step = str((steps[0] or {}).get("name") or "unnamed-0")
            done = Condition(SUCCEEDED, FALSE, "Failed",
                             flavour.failed_message.format(tasks=tasks_count, step=step))
            self._write(obj, start, done, results=None)
            return None
        done = Condition(SUCCEEDED, TRUE, "Succeeded",
                         flavour.succeeded_message.format(tasks=tasks_count, step=""))
        self._write(obj, start, done, results=_results(obj, definition))
        return None

    # --- TaskRuns whose steps run ---------------------------------------------------------

    def _reconcile_task(self, run: Obj, definition: Mapping[str, Any], start: float,
                        writer: bool) -> float | None:
        key = _run_key(run)
        job = self._jobs.get(key)
        if job is None:
            self._prune()
            cancel = threading.Event()
            job = self._jobs[key] = _Job(self._submit(run, definition, writer, cancel), cancel,
                                         TASK_RUN.kind, namespace_of(run), name_of(run))
        due = start + self._duration(run, TASK_RUN)
        remaining = due - self.clock.now()
        if not status_of(run).get("startTime"):
            self._write(run, start, Condition(SUCCEEDED, UNKNOWN, "Running",
                                              TASK_RUN.running_message), results=None,
                        extra={"podName": f"{name_of(run)}-pod"})
            run = self.backend.get(TEKTON_API, "TaskRun", namespace_of(run), name_of(run)) or run
        if remaining > 0:
            return remaining
        if not job.future.done():
            if not self.wait_for_steps:
                return 1.0
            with contextlib.suppress(concurrent.futures.TimeoutError):
                job.future.result(timeout=self._wait_slice())
            if not job.future.done():
                return 0.0  # waited a slice of this reconcile's deadline; wait on next round
        outcome = job.future.result()
        self._jobs.pop(key, None)
        # Waiting: the run ends exactly at its virtual end (simulate's timestamps never depend
        # on how long the steps took). Not waiting: when its steps were seen done.
        end = due if self.wait_for_steps else max(due, self.clock.now())
        self._finish_task(run, definition, start, end, outcome)
        return None

    def _wait_slice(self) -> float:
        deadline = current_deadline()
        left = deadline.remaining() if deadline is not None else self.limits.reconcile_seconds
        return max(left - _WAIT_MARGIN, 0.1)

    def _submit(self, run: Obj, definition: Mapping[str, Any], writer: bool,
                cancel: threading.Event) -> concurrent.futures.Future[TaskOutcome]:
        """Gather what the job needs from the cluster (here, on the reconcile's thread) and
        start it on a worker thread."""
        params = _params(definition, spec_of(run))
        timeout = self._timeout(spec_of(run).get("timeout"))
        task = _task_label(run)
        work: Callable[[], TaskOutcome]
        if writer:
            try:
                request = gitwriter.parse_params({k: v for k, v in params.items()
                                                  if isinstance(v, str)})
                credentials = self._git_credentials(run, params)
            except ReconcilerError as exc:
                failed = TaskOutcome(
                    steps=[StepResult(gitwriter.STEP_NAME, 1, "Error", f"{exc}\n")],
                    failure=("Failed", f"step \"{gitwriter.STEP_NAME}\" in task \"{task}\": {exc}"))
                done: concurrent.futures.Future[TaskOutcome] = concurrent.futures.Future()
                done.set_result(failed)
                return done
            allow_file, push = self.allow_local_git, self.push

            def work() -> TaskOutcome:
                return _run_git_writer(task, request, credentials, timeout, allow_file, push,
                                       cancel)
        else:
            steps = tuple(s for s in definition.get("steps") or [] if isinstance(s, Mapping))
            job = TaskJob(
                task=task, run_name=name_of(run), namespace=namespace_of(run),
                uid=str(meta(run).get("uid") or ""), steps=steps, params=params,
                result_names=tuple(str(r.get("name")) for r in definition.get("results") or []
                                   if isinstance(r, Mapping) and r.get("name")),
                workspaces=tuple(str(w.get("name")) for w in definition.get("workspaces") or []
                                 if isinstance(w, Mapping) and w.get("name")),
                source_url=str(params.get("source-url") or
                               _annotations(run).get(SOURCE_ANNOTATION) or ""),
                timeout=timeout, cancel=cancel)
            limits = self.limits

            def work() -> TaskOutcome:
                return run_task(job, limits)

        log.info("running TaskRun", namespace=namespace_of(run), name=name_of(run),
                 task=task, kind="git-writer" if writer else "steps")
        return _start_job(work, task)

    def _timeout(self, given: Any) -> float:
        seconds = parse_duration(given)
        if not seconds:  # none, unreadable, or "0" (no timeout): the default, then the cap
            seconds = self.limits.task_run_seconds
        return min(seconds, self.limits.task_run_seconds_max)

    def _git_credentials(self, run: Obj, params: Mapping[str, Any]
                         ) -> gitwriter.GitCredentials | None:
        """From the Secret param `git_secret` names, else, as Tekton's credential
        initialisation finds them, the first Secret with Git keys among the run's
        ServiceAccount's `secrets` whose `tekton.dev/git-N` annotation names the repository's
        host (`https://host[:port]` for http(s), `host[:port]` for ssh). A Secret without such
        an annotation is not used for Git; none matching: no credentials."""
        namespace = namespace_of(run)
        name = str(params.get("git_secret") or "").strip()
        if name:
            return gitwriter.secret_credentials(self._lookup, namespace, name, "param git_secret")
        repository = str(params.get("git_repository") or "").strip()
        account = str(spec_of(run).get("serviceAccountName") or "default")
        sa = self.backend.get("v1", "ServiceAccount", namespace, account)
        for ref in (sa or {}).get("secrets") or []:
            secret_name = str((ref or {}).get("name") or "")
            secret = self.backend.get("v1", "Secret", namespace, secret_name) \
                if secret_name else None
            if secret is None or not _annotated_for(_annotations(secret), repository):
                continue
            found = gitwriter.secret_credentials(self._lookup, namespace, secret_name,
                                                 f"serviceaccount {account}", only_git=True)
            if found is not None:
                return found
        return None

    def _lookup(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.backend.get(api_version, kind, namespace, name)

    def _finish_task(self, run: Obj, definition: Mapping[str, Any], start: float, end: float,
                     outcome: TaskOutcome) -> None:
        started, finished = rfc3339(start), rfc3339(end)
        steps = []
        for step in outcome.steps:
            terminated = {"exitCode": step.exit_code, "reason": step.reason,
                          "startedAt": started, "finishedAt": finished}
            steps.append({"name": step.name, "container": f"step-{step.name}",
                          "terminated": terminated, "terminationReason": step.reason})
        if outcome.failure is None:
            done = Condition(SUCCEEDED, TRUE, "Succeeded", TASK_RUN.succeeded_message)
            given = _annotation_results(run)
            values = {**{k: v for k, v in given.items() if k not in outcome.results},
                      **outcome.results}
            results = [{"name": k, "value": v} for k, v in values.items()]
        else:
            done = Condition(SUCCEEDED, FALSE, *outcome.failure)
            results = []
        self._write(run, start, done, results=results or None, at=end,
                    extra={"steps": steps, "podName": f"{name_of(run)}-pod"})
        logs = json.dumps({s.name: s.log for s in outcome.steps}, sort_keys=False)
        with contextlib.suppress(BackendError):
            self.backend.apply({"apiVersion": TEKTON_API, "kind": "TaskRun",
                                "metadata": {"name": name_of(run), "namespace": namespace_of(run),
                                             "annotations": {LOGS_ANNOTATION: logs}}},
                               field_manager=LOGS_FIELD_MANAGER)

    def _forget(self, run: Obj) -> None:
        """Stop the run's job: a job not started never starts, a running step's process group
        is killed, a git-writer not yet pushed does not push."""
        job = self._jobs.pop(_run_key(run), None)
        if job is not None:
            job.cancel.set()
            job.future.cancel()

    def _prune(self) -> None:
        """Stop and forget the jobs of runs that no longer exist (deleted before their end, so
        never reconciled again; on the simulator's cluster the deletion itself already did), and
        forget finished jobs beyond `_JOBS_KEPT`."""
        for key, job in list(self._jobs.items()):
            live = self.backend.get(TEKTON_API, job.kind, job.namespace, job.name) \
                if job.name else None
            if job.name and (live is None or _run_key(live) != key):
                self._jobs.pop(key, None)
                job.cancel.set()
                job.future.cancel()
        if len(self._jobs) < _JOBS_KEPT:
            return
        for key, job in list(self._jobs.items()):
            if job.future.done():
                del self._jobs[key]

    # --- PipelineRuns with runnable tasks ---------------------------------------------------

    def _pipeline_tasks(self, run: Obj, definition: Mapping[str, Any]
                        ) -> tuple[list[_PipelineTask], str]:
        """The pipeline's tasks in run order with their Task specs, when every one names a
        Task and one at least runs for real; ([], "") otherwise; ([], why) for a missing Task."""
        tasks: list[_PipelineTask] = []
        runnable = False
        for item in definition.get("tasks") or []:
            if not isinstance(item, Mapping) or not item.get("name"):
                return [], ""
            ref, inline = item.get("taskRef"), item.get("taskSpec")
            if isinstance(inline, Mapping):
                spec: Mapping[str, Any] = inline
            elif isinstance(ref, Mapping) and ref.get("name"):
                if ref.get("name") == gitwriter.TASK_NAME and ref.get("kind") in (
                        None, "Task", "ClusterTask"):
                    tasks.append(_PipelineTask(item, {}, writer=True))
                    runnable = True
                    continue
                if ref.get("kind") not in (None, "Task"):
                    return [], ""
                found = self.backend.get(TEKTON_API, "Task", namespace_of(run), str(ref["name"]))
                if found is None:
                    return [], (f"Pipeline {namespace_of(run)}/{_pipeline_name(run)} can't be "
                                f"Run; it contains Tasks that don't exist: Couldn't retrieve "
                                f"Task \"{ref['name']}\": tasks.tekton.dev \"{ref['name']}\" "
                                "not found")
                spec = spec_of(found)
            else:
                return [], ""
            runnable = runnable or _runnable(spec)
            tasks.append(_PipelineTask(item, spec, writer=False))
        return (_run_order(tasks), "") if runnable else ([], "")

    def _reconcile_pipeline(self, run: Obj, definition: Mapping[str, Any],
                            tasks: list[_PipelineTask], start: float) -> float | None:
        namespace = namespace_of(run)
        params = _params(definition, spec_of(run))
        done_results: dict[str, dict[str, str]] = {}
        references: list[dict[str, str]] = []
        completed = 0
        for index, task in enumerate(tasks):
            child_name = _child_name(name_of(run), task.name)
            references.append({"apiVersion": TEKTON_API, "kind": "TaskRun", "name": child_name,
                               "pipelineTaskName": task.name})
            child = self.backend.get(TEKTON_API, "TaskRun", namespace, child_name)
            if child is None:
                self.backend.apply(self._child(run, task, child_name, params, done_results),
                                   field_manager=FIELD_MANAGER)
                self._write_pipeline_running(run, start, completed, len(tasks), references)
                return None
            state = _succeeded_status(status_of(child))
            if state == TRUE:
                completed += 1
                done_results[task.name] = {str(r.get("name")): str(r.get("value"))
                                           for r in _child_results(child)}
                continue
            if state == FALSE:
                cond = _condition(child)
                skipped = len(tasks) - index - 1
                message = (f"Tasks Completed: {completed + 1} (Failed: 1, Cancelled 0), "
                           f"Skipped: {skipped}: {cond.get('message', '')}")
                self._write(run, start, Condition(SUCCEEDED, FALSE, "Failed", message),
                            results=None, extra={"childReferences": references})
                return None
            self._write_pipeline_running(run, start, completed, len(tasks), references)
            return None
        values = _pipeline_values(run, params, done_results)
        results = []
        for item in definition.get("results") or []:
            if isinstance(item, Mapping) and item.get("name"):
                value = substitute(str(item.get("value") or ""), values)
                if "$(" not in value:
                    results.append({"name": str(item["name"]), "value": value})
        done = Condition(SUCCEEDED, TRUE, "Succeeded",
                         PIPELINE_RUN.succeeded_message.format(tasks=len(tasks)))
        self._write(run, start, done, results=results or None,
                    extra={"childReferences": references})
        return None

    def _write_pipeline_running(self, run: Obj, start: float, completed: int, total: int,
                                references: list[dict[str, str]]) -> None:
        message = (f"Tasks Completed: {completed} (Failed: 0, Cancelled 0), "
                   f"Incomplete: {total - completed}, Skipped: 0")
        self._write(run, start, Condition(SUCCEEDED, UNKNOWN, "Running", message), results=None,
                    extra={"childReferences": references})

    def _child(self, run: Obj, task: _PipelineTask, child_name: str,
               params: Mapping[str, str | list[str]],
               done_results: Mapping[str, Mapping[str, str]]) -> Obj:
        values = _pipeline_values(run, params, done_results)
        child_params = []
        for item in task.item.get("params") or []:
            if not isinstance(item, Mapping) or not item.get("name"):
                continue
            value = item.get("value")
            if isinstance(value, list):
                child_params.append({"name": str(item["name"]),
                                     "value": expand_list(value, values, _arrays(params))})
            else:
                child_params.append({"name": str(item["name"]),
                                     "value": substitute(str(value or ""), values)})
        spec: dict[str, Any] = {"params": child_params}
        if task.writer or not isinstance(task.item.get("taskSpec"), Mapping):
            spec["taskRef"] = dict(task.item.get("taskRef") or {})
        else:
            spec["taskSpec"] = task.item["taskSpec"]
        run_spec = spec_of(run)
        account = (run_spec.get("taskRunTemplate") or {}).get("serviceAccountName") \
            or run_spec.get("serviceAccountName")
        if account:
            spec["serviceAccountName"] = account
        timeouts = run_spec.get("timeouts") or {}
        timeout = timeouts.get("tasks") or timeouts.get("pipeline") or run_spec.get("timeout")
        if timeout:
            spec["timeout"] = timeout
        labels = {PIPELINE_RUN_LABEL: name_of(run), PIPELINE_TASK_LABEL: task.name,
                  "tekton.dev/memberOf": "tasks"}
        pipeline = _pipeline_name(run)
        if pipeline:
            labels["tekton.dev/pipeline"] = pipeline
        annotations = {k: v for k, v in _annotations(run).items()
                       if k in (DURATION_ANNOTATION,)}
        source = params.get("source-url")
        if isinstance(source, str) and source:
            annotations[SOURCE_ANNOTATION] = source
        return {
            "apiVersion": TEKTON_API, "kind": "TaskRun",
            "metadata": {
                "name": child_name, "namespace": namespace_of(run), "labels": labels,
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": str(run.get("apiVersion") or TEKTON_API),
                                     "kind": "PipelineRun", "name": name_of(run),
                                     "uid": str(meta(run).get("uid") or ""),
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": spec,
        }

    # --- helpers -------------------------------------------------------------------------

    def _definition(self, run: Obj, flavour: _Flavour) -> tuple[Mapping[str, Any], str]:
        """The Pipeline/Task spec the run executes, or why it cannot be found."""
        spec = spec_of(run)
        inline = spec.get(flavour.spec_field)
        if isinstance(inline, Mapping):
            return inline, ""
        ref = spec.get(flavour.ref_field)
        if not isinstance(ref, Mapping) or not ref.get("name"):
            # Resolver references (bundles, git, hub) and ClusterTasks live outside the cluster's
            # namespaced objects: assume they resolve.
            return {}, ""
        if ref.get("kind") not in (None, flavour.definition_kind):
            return {}, ""
        name = str(ref["name"])
        try:
            found = self.backend.get(TEKTON_API, flavour.definition_kind, namespace_of(run), name)
        except BackendError:
            found = None
        if found is None:
            what = "retrieving pipeline" if flavour is PIPELINE_RUN else "listing tasks"
            run_kind = "pipelinerun" if flavour is PIPELINE_RUN else "taskRun"
            return {}, (f"Error {what} for {run_kind} {namespace_of(run)}/{name_of(run)}: "
                        f"{flavour.definition_plural}.tekton.dev \"{name}\" not found")
        return spec_of(found), ""

    def _duration(self, run: Obj, flavour: _Flavour) -> float:
        given = _annotations(run).get(DURATION_ANNOTATION)
        if given is not None:
            try:
                return max(0.0, float(given))
            except ValueError:
                pass
        return self.timing.pipeline_run if flavour is PIPELINE_RUN else self.timing.task_run

    def _write(self, run: Obj, start: float, succeeded: Condition,
               results: list[dict[str, str]] | None, *, at: float | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
        previous = status_of(run)
        status = dict(previous)
        now = self.clock.now() if at is None else at
        status["startTime"] = previous.get("startTime") or rfc3339(start)
        status["conditions"] = merge_conditions(previous.get("conditions"), [succeeded],
                                                rfc3339(now))
        if succeeded.status != UNKNOWN:
            status["completionTime"] = rfc3339(now)
        if results:
            status[_results_field(run)] = results
        status.update(extra or {})
        if status != previous:
            write_status(self.backend, {**run, "status": status})


@dataclass(frozen=True)
class _PipelineTask:
    item: Mapping[str, Any]
    spec: Mapping[str, Any]
    writer: bool

    @property
    def name(self) -> str:
        return str(self.item["name"])


_JOB_SLOTS = threading.BoundedSemaphore(2)
"""TaskRuns whose steps run at the same time, in the whole process."""


def _start_job(work: Callable[[], TaskOutcome],
               task: str) -> concurrent.futures.Future[TaskOutcome]:
    """Run `work` on a daemon thread (an exiting process does not wait for a step; `_kill_all`
    ends the steps' process groups), at most two at a time."""
    future: concurrent.futures.Future[TaskOutcome] = concurrent.futures.Future()

    def body() -> None:
        with _JOB_SLOTS:
            if not future.set_running_or_notify_cancel():
                return
            future.set_result(_guarded(work, task))

    threading.Thread(target=body, name=f"simulated-tekton-{task}", daemon=True).start()
    return future


def _guarded(work: Callable[[], TaskOutcome], task: str) -> TaskOutcome:
    try:
        return work()
    except Exception as exc:  # a bug or an OS failure: the run fails, the daemon carries on
        log.exception("simulated TaskRun failed unexpectedly", task=task)
        return TaskOutcome(failure=("Failed", f"task \"{task}\": the simulator could not run it: "
                                              f"{type(exc).__name__}: {exc}"))


def _run_git_writer(task: str, request: gitwriter.GitWriteRequest,
                    credentials: gitwriter.GitCredentials | None, timeout: float,
                    allow_file: bool, push: bool = True,
                    cancel: threading.Event | None = None) -> TaskOutcome:
    step = gitwriter.STEP_NAME
    with tempfile.TemporaryDirectory(prefix="reconciler-git-writer-") as tmp:
        try:
            written = gitwriter.write_files(request, credentials, Path(tmp), timeout=timeout,
                                            allow_file=allow_file, push=push, cancel=cancel)
        except gitwriter.GitWriteError as exc:
            return TaskOutcome(steps=[StepResult(step, 1, "Error", f"{exc}\n")],
                               failure=("Failed", f"step \"{step}\" in task \"{task}\" exited "
                                                  f"with code 1: {exc}"))
    return TaskOutcome(steps=[StepResult(step, 0, "Completed", written.log + "\n")],
                       results={"commit": written.commit})


_GIT_ANNOTATION = re.compile(r"tekton\.dev/git-\d+")


def _annotated_for(annotations: Mapping[str, Any], repository: str) -> bool:
    """Whether a `tekton.dev/git-N` annotation names the host `repository` is on, as Tekton
    matches them: scheme and host (and port) for http(s) URLs, the host for ssh."""
    wanted = _git_host(repository)
    return wanted is not None and any(
        _GIT_ANNOTATION.fullmatch(str(key)) and _git_host(str(value), annotation=True) == wanted
        for key, value in annotations.items())


def _git_host(url: str, *, annotation: bool = False) -> tuple[str, str] | None:
    """(scheme, host[:port]) of a repository URL (scp-like `user@host:path` is ssh); an
    annotation value without a scheme names an ssh host."""
    url = url.strip()
    scp = re.match(r"^(?:[^@/:]+@)?([^:/]+):(?!//)", url)
    if "://" not in url:
        if annotation:
            return ("ssh", url.rstrip("/").lower()) if url else None
        return ("ssh", scp.group(1).lower()) if scp else None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    scheme = parts.scheme.lower()
    if scheme == "ssh":  # Tekton's ssh annotations name the host: ssh://host matches it too
        return "ssh", f"{host}:{port}" if port and port != 22 else host
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, f"{host}:{port}" if port and port != default else host


def _runnable(definition: Mapping[str, Any]) -> bool:
    return any(isinstance(s, Mapping) and (
        (isinstance(s.get("script"), str) and s["script"].strip()) or s.get("command"))
        for s in definition.get("steps") or [])


def _is_git_writer(run: Obj) -> bool:
    ref = spec_of(run).get("taskRef")
    return (isinstance(ref, Mapping) and ref.get("name") == gitwriter.TASK_NAME
            and ref.get("kind") in (None, "Task", "ClusterTask"))


def _run_key(run: Obj) -> str:
    return str(meta(run).get("uid") or f"{namespace_of(run)}/{name_of(run)}")


def _task_label(run: Obj) -> str:
    labels = meta(run).get("labels") or {}
    if labels.get(PIPELINE_TASK_LABEL):
        return str(labels[PIPELINE_TASK_LABEL])
    ref = spec_of(run).get("taskRef")
    if isinstance(ref, Mapping) and ref.get("name"):
        return str(ref["name"])
    return name_of(run)


def _params(definition: Mapping[str, Any], run_spec: Mapping[str, Any]
            ) -> dict[str, str | list[str]]:
    """Declared defaults, then the run's values (strings and arrays; objects as JSON)."""
    out: dict[str, str | list[str]] = {}
    for source, value_key in ((definition.get("params"), "default"),
                              (run_spec.get("params"), "value")):
        for item in source or []:
            if isinstance(item, Mapping) and item.get("name") and value_key in item:
                value = item[value_key]
                if isinstance(value, list):
                    out[str(item["name"])] = [str(v) for v in value]
                elif isinstance(value, Mapping):
                    out[str(item["name"])] = json.dumps(value, sort_keys=True)
                else:
                    out[str(item["name"])] = "" if value is None else str(value)
    return out


def _arrays(params: Mapping[str, str | list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in params.items() if isinstance(v, list)}


def _pipeline_values(run: Obj, params: Mapping[str, str | list[str]],
                     done_results: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    values = {f"params.{k}": (" ".join(v) if isinstance(v, list) else v)
              for k, v in params.items()}
    values.update({"context.pipelineRun.name": name_of(run),
                   "context.pipelineRun.namespace": namespace_of(run),
                   "context.pipelineRun.uid": str(meta(run).get("uid") or ""),
                   "context.pipeline.name": _pipeline_name(run) or name_of(run)})
    for task, results in done_results.items():
        for name, value in results.items():
            values[f"tasks.{task}.results.{name}"] = value
    return values


def _pipeline_name(run: Obj) -> str:
    ref = spec_of(run).get("pipelineRef")
    return str(ref.get("name") or "") if isinstance(ref, Mapping) else ""


def _child_name(run_name: str, task: str) -> str:
    name = f"{run_name}-{task}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


_TASK_REFERENCE = re.compile(r"\$\(\s*tasks\.([^.\s)]+)\.results\.")


def _run_order(tasks: list[_PipelineTask]) -> list[_PipelineTask]:
    """Declared order, except that a task comes after the tasks it names in `runAfter` or whose
    results its params or `when` expressions use (a cycle keeps the declared order)."""
    names = {t.name for t in tasks}
    needs: dict[str, set[str]] = {}
    for task in tasks:
        after = {str(n) for n in task.item.get("runAfter") or []}
        text = json.dumps([task.item.get("params"), task.item.get("when")])
        after |= set(_TASK_REFERENCE.findall(text))
        needs[task.name] = (after & names) - {task.name}
    ordered: list[_PipelineTask] = []
    placed: set[str] = set()
    pending = list(tasks)
    while pending:
        ready = next((t for t in pending if needs[t.name] <= placed), pending[0])
        pending.remove(ready)
        ordered.append(ready)
        placed.add(ready.name)
    return ordered


def _child_results(child: Obj) -> list[Mapping[str, Any]]:
    status = status_of(child)
    found = status.get("results") or status.get("taskResults") or []
    return [r for r in found if isinstance(r, Mapping)]


def _condition(obj: Obj) -> Mapping[str, Any]:
    for cond in status_of(obj).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == SUCCEEDED:
            return cond
    return {}


def _annotation_results(run: Obj) -> dict[str, str]:
    raw = _annotations(run).get(RESULTS_ANNOTATION)
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}


def _succeeded_status(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == SUCCEEDED:
            return str(cond.get("status"))
    return None


def _annotations(obj: Obj) -> dict[str, Any]:
    found = meta(obj).get("annotations")
    return found if isinstance(found, dict) else {}


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _results_field(run: Obj) -> str:
    """`results` for v1 runs; the v1beta1 name for runs created as v1beta1.

    The cluster serves every version of a kind, so the version a run was created with is read
    from its managedFields, as the API server records it.
    """
    managed = meta(run).get("managedFields") or [{}]
    created_as = str((managed[0] or {}).get("apiVersion") or TEKTON_API)
    if created_as.endswith("/v1beta1"):
        return PIPELINE_RUN.v1beta1_results if run.get("kind") == PIPELINE_RUN.kind \
            else TASK_RUN.v1beta1_results
    return "results"


def _results(run: Obj, definition: Mapping[str, Any]) -> list[dict[str, str]]:
    """One value per declared result: from the results annotation, else a stable placeholder."""
    given: dict[str, Any] = {}
    raw = _annotations(run).get(RESULTS_ANNOTATION)
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        given = parsed if isinstance(parsed, dict) else {}
    names = [str(r.get("name")) for r in definition.get("results") or []
             if isinstance(r, Mapping) and r.get("name")]
    names += [n for n in given if n not in names]
    out = []
    for name in names:
        if name in given:
            value = given[name] if isinstance(given[name], str) else json.dumps(given[name])
        else:
            seed = f"{namespace_of(run)}/{name_of(run)}/{name}".encode()
            value = f"{name}-{hashlib.sha256(seed).hexdigest()[:12]}"
        out.append({"name": name, "value": value})
    return out
