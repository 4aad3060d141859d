"""Settings as grouped frozen dataclasses, passed in explicitly (never read from globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.model.errors import InputError


@dataclass(frozen=True)
class SourceSettings:
    artifact_root: Path
    """Where artifacts (tar.gz of fetched revisions) are stored."""
    workdir: Path
    """Where Git clones are cached between polls."""
    artifact_base_url: str = "http://source-controller.reconciler-system.svc.cluster.local./"
    """The URL prefix written into `status.artifact.url`."""
    allow_local_urls: bool = False
    """Whether `GitRepository.spec.url` may be a file:// URL or a local path. Off for the daemon
    (such a URL would read any repository on the host, another namespace's Git cache included);
    on for `simulate`, `test` and `diff`, which run the user's own files on their machine.
    Submodules never may, either way."""


@dataclass(frozen=True)
class SimulateSettings:
    budget_seconds: float = 3600.0
    """Virtual time a `simulate` run may take before it stops waiting."""
    max_rounds: int = 10_000
    """Reconcile rounds without a fixed point before a run is declared runaway."""


@dataclass(frozen=True)
class ListenAddress:
    """A `HOST:PORT` to serve on; port 0 asks the system for a free one."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """`127.0.0.1:8080`, `[::1]:8080` or `:8080` (all interfaces); raises `InputError`."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise InputError(f"listen address {text!r} is not HOST:PORT "
                             "(for example 127.0.0.1:8080, [::1]:8080 or :8080)")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise InputError(f"listen address {text!r}: write an IPv6 host in brackets, "
                             "as in [::1]:8080")
        return cls(host or "0.0.0.0", int(port_text))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DaemonSettings:
    environment: str = "simulator"
    """The environment to run in, by its `reconciler.environments` entry point name."""
    listen: ListenAddress = ListenAddress("127.0.0.1", 8080)
    """Where `/metrics`, `/healthz`, `/readyz` and `/debug/objects` are served."""
    artifacts_listen: ListenAddress = ListenAddress("127.0.0.1", 9090)
    """Where the artifact server listens."""
    artifacts_url: str | None = None
    """The base URL written into `status.artifact.url`; None: the artifact server's address."""
    state: Path | None = None
    """Load the environment's state from this file at start and save it at shutdown."""
    data_dir: Path | None = None
    """Artifacts and Git caches; None: `STATE.d` beside `state`, else a temporary directory."""
    tick_seconds: float = 1.0
    """Real seconds between reconcile ticks."""
    time_scale: float = 1.0
    """Environment seconds per real second, for environments whose clock we drive (the
    simulator's): above 1, simulated builds and rollouts finish sooner in real time."""
    max_rounds_per_tick: int = 100
    """Rounds a tick may run while the cluster keeps changing before it yields to the next."""
    stall_after_seconds: float = 300.0
    """A tick running longer than this fails the liveness check."""

    @property
    def resolved_data_dir(self) -> Path | None:
        if self.data_dir is not None:
            return self.data_dir
        if self.state is not None:
            return self.state.with_name(self.state.name + ".d")
        return None


@dataclass(frozen=True)
class Settings:
    sources: SourceSettings
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
