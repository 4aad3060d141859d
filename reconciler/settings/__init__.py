"""Settings as grouped frozen dataclasses, passed in explicitly (never read from globals)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.model.errors import InputError
from reconciler.runtime.jitter import check_percentage


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
    interval_jitter: float = 0.0
    """A GitRepository's next poll after a success is `spec.interval * (1 ± interval_jitter)`
    (Flux's `--interval-jitter-percentage` / 100). 0 for `simulate`, `test` and `diff`, so their
    virtual timelines stay deterministic; the daemon's `--interval-jitter-percentage` (5)."""


@dataclass(frozen=True)
class OwnerSettings:
    """The Workload and Deliverable controllers (`engine/owner.OwnerController`)."""

    fast_path: bool = True
    """Skip render, diff and apply when an owner is offered again and nothing its last settled
    reconcile read has changed since (docs/architecture.md, "The owner's no-op fast path")."""
    fast_path_max_age_seconds: float = 600.0
    """A fast-path record older than this (on the controller's clock) is not trusted: the owner
    is reconciled in full again. Bounds how long a change the record cannot see (RBAC: Roles,
    RoleBindings and their cluster-wide kin) goes unnoticed by an owner nothing else triggers."""

    def __post_init__(self) -> None:
        if not self.fast_path_max_age_seconds >= 0:
            raise InputError("fast_path_max_age_seconds must be 0 (no fast path) or more (got "
                             f"{self.fast_path_max_age_seconds:g})")


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
        return netloc(self.host, self.port)


def netloc(host: str, port: int) -> str:
    """`host:port`, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DaemonSettings:
    """`reconciler run`: where it serves, how it ticks and retries, leader election, sharding
    and the webhook receiver."""

    environment: str = "simulator"
    """The environment to run in, by its `reconciler.environments` entry point name."""
    listen: ListenAddress = ListenAddress("127.0.0.1", 8080)
    """Where `/metrics`, `/healthz`, `/readyz`, `/debug/objects` and the portal (`/ui/`) are
    served."""
    artifacts_listen: ListenAddress = ListenAddress("127.0.0.1", 9090)
    """Where the artifact server listens."""
    artifacts_url: str | None = None
    """The base URL written into `status.artifact.url`; None: the artifact server's address."""
    state: Path | None = None
    """Load the environment's state from this file at start and save it at shutdown."""
    data_dir: Path | None = None
    """Artifacts and Git caches; None: `STATE.d` beside `state`, else a temporary directory."""
    state_save_seconds: float = 5.0
    """While running, save `state` this often when the cluster changed, so a crash (kill -9
    included) loses at most this much; an SQLite state writes only what changed. 0: only at
    shutdown."""
    tick_seconds: float = 1.0
    """Real seconds between reconcile ticks."""
    time_scale: float = 1.0
    """Environment seconds per real second, for environments whose clock we drive (the
    simulator's): above 1, simulated builds and rollouts finish sooner in real time."""
    max_rounds_per_tick: int = 100
    """Rounds a tick may run while the cluster keeps changing before it yields to the next."""
    stall_after_seconds: float = 300.0
    """A tick running longer than this fails the liveness check."""
    concurrent: int = 4
    """Reconciles each controller runs at once (its work queue's worker threads)."""
    retry_base_seconds: float = 5.0
    """First retry after a failed reconcile (a transient error, a timeout, a crash); doubles
    with each consecutive failure of the same object."""
    retry_max_seconds: float = 300.0
    """Cap on the retry delay of one object."""
    requeue_qps: float = 10.0
    """Retries per second one controller's queue lets through on average (its token bucket,
    controller-runtime's default), on top of the per-object backoff."""
    requeue_burst: int = 100
    """Retries the token bucket lets through at once."""
    webhook_listen: ListenAddress | None = None
    """Where the Flux `Receiver` webhook server listens (`--webhook-listen`); None: not served."""
    no_cross_namespace_refs: bool = False
    """Flux's `--no-cross-namespace-refs`: a Receiver may only name resources in its own
    namespace."""
    leader_elect: bool = False
    """Elect a leader on a `coordination.k8s.io/v1` Lease; only the leader reconciles."""
    leader_election_namespace: str | None = None
    """The Lease's namespace; None: the pod's own namespace (required outside a pod)."""
    lease_name: str | None = None
    """The Lease's name; None: `reconciler-leader-election`, with `-shard-KEY` for a shard."""
    lease_duration_seconds: float = 15.0
    """How long a standby waits after the last renewal before taking the Lease over."""
    renew_deadline_seconds: float = 10.0
    """How long the leader keeps trying to renew before it stops leading (and exits)."""
    retry_period_seconds: float = 2.0
    """Between two attempts to acquire or renew the Lease."""
    shard: str | None = None
    """Reconcile only owners labelled `sharding.fluxcd.io/key: SHARD` (None: the unlabelled
    owners and the cluster-scoped blueprints)."""
    interval_jitter_percentage: float = 5.0
    """Flux's `--interval-jitter-percentage`: a source's next poll is its interval ± this
    percentage, drawn per poll, so sources on one interval do not poll in lockstep."""
    log_format: str = "console"
    """`console` (`TIMESTAMP [level] message key=value`) or `json` (one object per line, with
    the keys controller-runtime's and Flux's log pipelines expect)."""
    portal_actions: bool = False
    """Let the portal at `/ui/` on `listen` reconcile, suspend and resume (same-origin POSTs);
    off: the portal is read-only. On a `listen` address other than loopback this needs
    `portal_token_file`."""
    portal_token_file: Path | None = None
    """A file holding the token portal actions must carry (`Authorization: Bearer TOKEN`; the
    page asks for it); compared in constant time. None: no token, and actions only on a
    loopback `listen`."""
    portal_hosts: tuple[str, ...] = ()
    """Host header values the portal answers to besides its `listen` address (and
    localhost/127.0.0.1/[::1] when that is loopback or all interfaces): `name` (any port) or
    `name:port`, e.g. an Ingress host or a port-forward's local port. Others get 421."""

    def __post_init__(self) -> None:
        if self.log_format not in ("console", "json"):
            raise InputError(f"log_format must be console or json (got {self.log_format!r})")
        if self.tick_seconds < 0.01 or self.time_scale <= 0:
            raise InputError("need tick_seconds >= 0.01 and time_scale > 0 (got "
                             f"{self.tick_seconds:g} and {self.time_scale:g})")
        if self.lease_duration_seconds < 1 or self.renew_deadline_seconds <= 0 or \
                self.retry_period_seconds < 0.001:
            raise InputError("leader election: need lease_duration_seconds >= 1, "
                             "renew_deadline_seconds > 0 and retry_period_seconds >= 0.001")
        if self.state_save_seconds < 0:
            raise InputError("state_save_seconds must be 0 (only at shutdown) or more (got "
                             f"{self.state_save_seconds:g})")
        if self.concurrent < 1:
            raise InputError(f"--concurrent must be at least 1 (got {self.concurrent})")
        if not 0 < self.retry_base_seconds <= self.retry_max_seconds:
            raise InputError("retries: need 0 < retry_base_seconds <= retry_max_seconds (got "
                             f"{self.retry_base_seconds:g} and {self.retry_max_seconds:g})")
        if self.requeue_qps <= 0 or self.requeue_burst < 1:
            raise InputError("retries: need requeue_qps > 0 and requeue_burst >= 1")
        try:
            check_percentage(self.interval_jitter_percentage)
        except ValueError as exc:
            raise InputError(f"--interval-jitter-percentage: {exc}") from None
        if self.portal_actions and self.portal_token_file is None and \
                not is_loopback(self.listen.host):
            raise InputError(
                f"daemon.portal_actions on listen address {self.listen} (not loopback) needs "
                "daemon.portal_token_file: anything that reaches the address could otherwise "
                "reconcile, suspend and resume")
        if self.leader_elect and self.environment != "kubernetes":
            raise InputError(
                f"--leader-elect needs --environment kubernetes: the {self.environment} "
                "environment is one process's own cluster, with no other replica to elect "
                "a leader among")

    @property
    def resolved_data_dir(self) -> Path | None:
        if self.data_dir is not None:
            return self.data_dir
        if self.state is not None:
            return self.state.with_name(self.state.name + ".d")
        return None


@dataclass(frozen=True)
class KubernetesSettings:
    """How `KubernetesBackend` talks to an API server (the `kubernetes` environment reads them
    from `RECONCILER_KUBE_*` variables, see `from_environ`)."""

    qps: float = 20.0
    """Requests per second the client-side token bucket lets through on average (client-go's
    default is 5; 20 is what controller-runtime managers commonly set)."""
    burst: int = 40
    """Requests the bucket lets through at once after a quiet period."""
    retries: int = 5
    """Extra attempts for a request answered 429, or (idempotent requests only: get, list,
    server-side apply) 5xx or a connection error. 0 disables retries."""
    retry_base_seconds: float = 0.2
    """First backoff between attempts, doubling each time, with full jitter."""
    retry_max_seconds: float = 30.0
    """Cap on one backoff, and on the wait a `Retry-After` header may ask for."""
    request_timeout_seconds: float = 30.0
    """Total time one non-watch request may take."""
    connect_timeout_seconds: float = 10.0
    """Time to establish a connection (watches included)."""
    watch_timeout_seconds: int = 300
    """`timeoutSeconds` asked of each watch; the informer then watches again from where it was
    (kube-apiserver picks 30-60 min; shorter makes a silently dead connection cheaper)."""
    informers: bool = True
    """Answer get/list from watch-fed caches (one informer per kind read); off: every read is a
    request."""
    list_page_size: int = 500
    """`limit` of each list page."""
    crd_establish_seconds: float = 30.0
    """How long an applied CustomResourceDefinition may take to be Established."""
    impersonate_user: str | None = None
    """Send every request as this user (`Impersonate-User`); the credentials need the
    `impersonate` verb."""
    impersonate_groups: tuple[str, ...] = ()
    """Groups to impersonate (`Impersonate-Group`, one header each); only with a user."""
    default_service_account: str | None = None
    """Flux's `--default-service-account`: the ServiceAccount (in the Kustomization's own
    namespace) a Kustomization without `spec.serviceAccountName` applies, prunes and deletes
    as; unset, those go as the reconciler's own identity, as in Flux."""

    def __post_init__(self) -> None:
        if not (self.qps > 0 and self.burst >= 1):
            raise InputError(f"kubernetes client: qps must be > 0 and burst >= 1 "
                             f"(got qps={self.qps}, burst={self.burst})")
        if self.retries < 0 or self.retry_base_seconds < 0 or self.retry_max_seconds < 0:
            raise InputError("kubernetes client: retries and retry times must be >= 0")
        if self.request_timeout_seconds <= 0 or self.connect_timeout_seconds <= 0 or \
                self.watch_timeout_seconds < 1 or self.list_page_size < 1:
            raise InputError("kubernetes client: timeouts and the page size must be positive")
        if self.impersonate_groups and not self.impersonate_user:
            raise InputError("kubernetes client: impersonating groups needs a user "
                             "(RECONCILER_KUBE_AS)")
        account = self.default_service_account
        if account is not None and (not account or any(c in account for c in ":/ ")):
            raise InputError(f"kubernetes client: default service account {account!r}: "
                             "give a ServiceAccount name (no namespace)")

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> KubernetesSettings:
        """`RECONCILER_KUBE_QPS`, `_BURST`, `_RETRIES`, `_TIMEOUT` (request seconds),
        `_WATCH_TIMEOUT`, `_INFORMERS` (0 or 1), `_AS` (user), `_AS_GROUPS` (comma-separated),
        `_DEFAULT_SERVICE_ACCOUNT`; unset ones keep their defaults. Raises `InputError` on a
        malformed value."""
        values: dict[str, Any] = {}
        numbers: dict[str, tuple[str, Callable[[str], Any]]] = {
            "RECONCILER_KUBE_QPS": ("qps", float),
            "RECONCILER_KUBE_BURST": ("burst", int),
            "RECONCILER_KUBE_RETRIES": ("retries", int),
            "RECONCILER_KUBE_TIMEOUT": ("request_timeout_seconds", float),
            "RECONCILER_KUBE_WATCH_TIMEOUT": ("watch_timeout_seconds", int),
        }
        for variable, (name, parse) in numbers.items():
            text = env.get(variable)
            if text:
                try:
                    values[name] = parse(text)
                except ValueError as exc:
                    raise InputError(f"{variable}={text!r}: not a number") from exc
        informers = env.get("RECONCILER_KUBE_INFORMERS")
        if informers:
            if informers not in ("0", "1"):
                raise InputError(f"RECONCILER_KUBE_INFORMERS={informers!r}: use 0 or 1")
            values["informers"] = informers == "1"
        if env.get("RECONCILER_KUBE_AS"):
            values["impersonate_user"] = env["RECONCILER_KUBE_AS"]
        if env.get("RECONCILER_KUBE_AS_GROUPS"):
            values["impersonate_groups"] = tuple(
                g.strip() for g in env["RECONCILER_KUBE_AS_GROUPS"].split(",") if g.strip())
        if env.get("RECONCILER_KUBE_DEFAULT_SERVICE_ACCOUNT"):
            values["default_service_account"] = env["RECONCILER_KUBE_DEFAULT_SERVICE_ACCOUNT"]
        return cls(**values)


@dataclass(frozen=True)
class Settings:
    sources: SourceSettings
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
