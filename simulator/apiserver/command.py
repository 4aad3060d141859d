"""`reconciler serve`: the simulated cluster over the Kubernetes API until SIGTERM or SIGINT.

The CLI (in `reconciler`, which never imports `simulator`) finds `serve` through the
`reconciler.servers` entry point and hands it the loaded objects and its options.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import structlog

from reconciler.loader import LoadedObject
from reconciler.model.errors import InputError
from reconciler.portal.app import Portal
from reconciler.portal.http import serve_request
from simulator.apiserver import rbac
from simulator.apiserver.authn import Tokens
from simulator.apiserver.certs import (
    extra_hosts,
    make_credentials,
    write_key_file,
    write_kubeconfig,
)
from simulator.apiserver.faults import Faults, FaultSpecError
from simulator.apiserver.faults import load as load_faults
from simulator.apiserver.gate import Gate
from simulator.apiserver.handlers import Api
from simulator.apiserver.runtime import ServedCluster
from simulator.apiserver.server import ApiServer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    kubeconfig: Path
    host: str = "127.0.0.1"
    port: int = 0
    state: Path | None = None
    insecure_http: bool = False
    time_scale: float = 1.0
    controllers: str = "all"
    rbac: bool = False
    """Authorize with RBAC (kube's default ClusterRoles made at start); otherwise every
    authenticated user may do everything."""
    faults: str | None = None
    """A fault-injection SPEC or @FILE (`faults`); None: no injection, no /debug/faults."""


def serve(objects: Sequence[LoadedObject], options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT (main thread only); raises InputError when it cannot start."""
    stop = threading.Event()
    try:
        faults = Faults(load_faults(options.faults)) if options.faults is not None else None
    except FaultSpecError as exc:
        raise InputError(str(exc)) from exc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("shutting down", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    scratch = Path(tempfile.mkdtemp(prefix="reconciler-serve-tls-"))
    try:
        credentials = make_credentials(extra_hosts(options.host))
        cert = None if options.insecure_http else write_key_file(scratch, credentials)
        with ServedCluster(objects, options.state, options.controllers,
                           options.time_scale) as cluster:
            assert cluster.store is not None
            api = Api(cluster.store, "", stop.is_set, lambda: cluster.ready)
            if options.rbac:
                rbac.bootstrap(cluster.store)
            gate = Gate(api, Tokens(credentials.token), options.rbac)
            portal = _portal(cluster, options)
            try:
                server = ApiServer(gate, options.host, options.port, cert,
                                   ui=(lambda handler: serve_request(portal, handler))
                                   if portal is not None else None, faults=faults)
            except OSError as exc:
                raise InputError(f"cannot listen on {options.host}:{options.port}: "
                                 f"{exc.strerror}") from exc
            api.address = server.address
            server.start()
            try:
                write_kubeconfig(options.kubeconfig, server.url, credentials.token,
                                 None if options.insecure_http else credentials.ca_pem)
                # Absolute, so the line works from any folder it is pasted in.
                path = shlex.quote(str(options.kubeconfig.resolve()))
                sys.stdout.write(f"export KUBECONFIG={path}\n")
                sys.stdout.flush()
                log.info("serving", url=server.url, kubeconfig=str(options.kubeconfig),
                         rbac=options.rbac,
                         portal=f"{server.url}/ui/" if portal is not None else None)
                stop.wait()
            finally:
                if portal is not None:
                    portal.close()
                if faults is not None:
                    faults.close()  # an outage under way listens again first
                server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _portal(cluster: ServedCluster, options: ServeOptions) -> Portal | None:
    """The read-only portal over the served cluster, fed by its change listener; None under
    `--rbac`, where a page without a token would read what RBAC hides."""
    if options.rbac:
        log.info("portal not served: under --rbac it would read every object unauthorized")
        return None
    store = cluster.store
    assert store is not None
    portal = Portal(store.cluster, store.locked)
    portal.attach(store.cluster)
    return portal


def serve_command(objects: Sequence[LoadedObject], *, kubeconfig: Path, host: str, port: int,
                  state: Path | None, insecure_http: bool, time_scale: float,
                  controllers: str, rbac: bool = False, faults: str | None = None) -> None:
    """The `reconciler.servers` entry point: plain arguments, so the CLI needs no type of ours."""
    serve(objects, ServeOptions(kubeconfig=kubeconfig, host=host, port=port, state=state,
                                insecure_http=insecure_http, time_scale=time_scale,
                                controllers=controllers, rbac=rbac, faults=faults))
