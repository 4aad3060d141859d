"""The cluster verbs (`get`, `events`, `reconcile`, `suspend`, `resume`, `tree NAME`) as a user
runs them: the `reconciler` script against `reconciler serve` (the product's controllers
in-process), objects made with the real kubectl, through the kubeconfig the server wrote."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver.conftest import Served, needs_kubectl, serving_greeter, wait_for
from tests.conftest import GitRepo
from tests.manifests import greeter_workload

pytestmark = needs_kubectl

RECONCILER = Path(sys.executable).with_name("reconciler")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving_greeter(tmp_path_factory.mktemp("cli-serve")) as server:
        yield server


_namespaces = iter(range(1, 1000))


@pytest.fixture
def ns(served: Served) -> str:
    """A fresh namespace holding Ready workloads `web` (tier=front) and `db` (tier=back)."""
    name = f"cli{next(_namespaces)}"
    served.kubectl("create", "namespace", name)
    for workload, tier in (("web", "front"), ("db", "back")):
        served.kubectl("apply", "-f", "-",
                       stdin=greeter_workload(workload, name, tier=tier))
    for workload in ("web", "db"):
        wait_for(functools.partial(_ready, served, name, workload), seconds=30)
    return name


def _ready(served: Served, namespace: str, name: str) -> bool:
    obj = served.get_json("workload", name, "-n", namespace)
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions", []))


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(served: Served | None, *args: str, kubeconfig_first: bool = False) -> Ran:
    """The command run in this process (click's runner: no interpreter start per call, which
    keeps these tests fast); the watch tests run the real script instead."""
    from click.testing import CliRunner

    from reconciler.cli import main

    where = ["--kubeconfig", str(served.kubeconfig)] if served is not None else []
    argv = [*where, *args] if kubeconfig_first else [*args, *where]
    result = CliRunner().invoke(main, argv, env={"KUBECONFIG": None})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def ok(served: Served, *args: str) -> str:
    done = cli(served, *args)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    assert "internal error" not in done.stderr
    return done.stdout


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


# --- get -----------------------------------------------------------------------------------


def test_get_lists_workloads_in_a_namespace_as_a_table(served: Served, ns: str) -> None:
    lines = rows(ok(served, "get", "workloads", "-n", ns))
    assert lines[0] == ["NAME", "READY", "REASON", "SUSPENDED", "AGE"]
    assert [r[:4] for r in lines[1:]] == [["db", "True", "Ready", "False"],
                                         ["web", "True", "Ready", "False"]]


def test_get_takes_kubectl_short_names_and_kind_slash_name(served: Served, ns: str) -> None:
    for kind in ("workload", "wrk", "wl", "workloads.carto.run"):
        assert ok(served, "get", kind, "web", "-n", ns, "-o", "name") == (
            "workload.carto.run/web\n")
        assert ok(served, "get", f"{kind}/web", "-n", ns, "-o", "name") == (
            "workload.carto.run/web\n")


def test_get_selector_all_namespaces_and_wide(served: Served, ns: str) -> None:
    front = rows(ok(served, "get", "wrk", "-A", "-l", "tier=front"))
    assert front[0][0] == "NAMESPACE"
    assert [r[0] for r in front[1:] if r[0] == ns] == [ns]
    assert all(r[1] == "web" for r in front[1:])
    assert rows(ok(served, "get", "wrk", "-n", ns, "-l", "tier notin (front)"))[1][0] == "db"
    wide = ok(served, "get", "wrk", "-n", ns, "-o", "wide")
    assert "SUPPLY CHAIN" in wide.splitlines()[0] and "greeter" in wide


def test_get_json_and_yaml_are_the_objects(served: Served, ns: str) -> None:
    one = json.loads(ok(served, "get", "wrk", "web", "-n", ns, "-o", "json"))
    assert one["kind"] == "Workload" and one["metadata"]["name"] == "web"
    listed = yaml.safe_load(ok(served, "get", "wrk", "-n", ns, "-o", "yaml"))
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["db", "web"]


def test_get_sources_and_kustomizations_with_flux_names(served: Served, ns: str) -> None:
    served.kubectl("apply", "-f", "-", stdin=f"""apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: app, namespace: {ns}}}
spec: {{url: "https://example.invalid/app.git", interval: 1h, suspend: true,
       ref: {{branch: main}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: {ns}}}
spec: {{interval: 1h, prune: true, suspend: true, path: ./,
       sourceRef: {{kind: GitRepository, name: app}}}}
""")
    for kind in ("sources", "gitrepo", "gitrepositories"):
        lines = rows(ok(served, "get", kind, "-n", ns))
        assert lines[0][:3] == ["NAME", "REVISION", "SUSPENDED"]
        assert lines[1][0] == "app" and "True" in lines[1]
    assert ok(served, "get", "ks", "-n", ns, "-o", "name") == (
        "kustomization.kustomize.toolkit.fluxcd.io/apps\n")
    everything = ok(served, "get", "all", "-n", ns, "-o", "name").split()
    assert everything == ["workload.carto.run/db", "workload.carto.run/web",
                          "gitrepository.source.toolkit.fluxcd.io/app",
                          "kustomization.kustomize.toolkit.fluxcd.io/apps"]
    listed = json.loads(ok(served, "get", "all", "-n", ns, "-o", "json"))
    assert [i["kind"] for i in listed["items"]] == ["Workload", "Workload", "GitRepository",
                                                    "Kustomization"]


def test_global_flags_come_before_or_after_the_command(served: Served, ns: str) -> None:
    before = cli(served, "get", "wrk", "-n", ns, "-o", "name", kubeconfig_first=True)
    after = cli(served, "get", "wrk", "-n", ns, "-o", "name")
    assert before.returncode == after.returncode == 0
    assert before.stdout == after.stdout != ""
    # -v after the command: the backend's info log reaches stderr.
    loud = cli(served, "get", "wrk", "-n", ns, "-v")
    assert "connected to Kubernetes" in loud.stderr
    assert "connected to Kubernetes" not in after.stderr


def test_get_watch_prints_a_changed_object_again(served: Served, ns: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    process = subprocess.Popen(
        [str(RECONCILER), "get", "wrk", "web", "-n", ns, "--watch", "--kubeconfig",
         str(served.kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().split()[0] == "NAME"
        assert process.stdout.readline().split()[0] == "web"
        served.kubectl("label", "workload", "web", "-n", ns, "changed=yes")
        again = process.stdout.readline().split()  # the same object, printed again
        assert again[0] == "web"
        served.kubectl("delete", "workload", "web", "-n", ns)
        line = process.stdout.readline().strip()
        while line != "web deleted" and line.split()[:2] == ["web", "True"]:
            line = process.stdout.readline().strip()  # the deletion's own updates come first
        assert line == "web deleted"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            assert "Traceback" not in process.stderr.read()
            process.stderr.close()


# --- events --------------------------------------------------------------------------------


def test_events_for_one_object(served: Served, ns: str) -> None:
    table = rows(ok(served, "events", "--for", "workload/web", "-n", ns))
    assert table[0][:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    assert {r[3] for r in table[1:]} == {"workload/web"}
    assert "StampedObjectApplied" in {r[2] for r in table[1:]}
    listed = json.loads(ok(served, "events", "-n", ns, "-o", "json"))
    assert {e["involvedObject"]["name"] for e in listed["items"]} == {"web", "db"}
    assert ok(served, "events", "-n", ns, "--types", "Warning") == ""


def test_events_watch_prints_new_events(served: Served, ns: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    process = subprocess.Popen(
        [str(RECONCILER), "events", "--for", "workload/late", "-n", ns, "-w",
         "--kubeconfig", str(served.kubeconfig)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        served.kubectl("apply", "-f", "-",
                       stdin=greeter_workload("late", ns, tier="x"))
        line = process.stdout.readline()
        while line.split()[:1] == ["LAST"]:
            line = process.stdout.readline()
        assert "workload/late" in line and "Normal" in line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# --- reconcile, suspend, resume ----------------------------------------------------------------


def _live(served: Served, ns: str, kind: str, name: str) -> Any:
    return served.get_json(kind, name, "-n", ns)


def test_reconcile_sets_requested_at_and_waits_for_it(served: Served, ns: str) -> None:
    done = cli(served, "reconcile", "workload", "web", "-n", ns, "--timeout", "30",
               "-o", "name")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "workload.carto.run/web\n"
    assert "reconciled" in done.stderr
    live = _live(served, ns, "workload", "web")
    requested = live["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    assert live["status"]["lastHandledReconcileAt"] == requested


def test_suspend_stops_reconciles_until_resume(served: Served, ns: str) -> None:
    assert cli(served, "suspend", "wrk", "web", "-n", ns, "-o", "name").returncode == 0
    live = _live(served, ns, "workload", "web")
    assert live["metadata"]["annotations"]["reconciler.dev/suspend"] == "true"
    assert rows(ok(served, "get", "wrk", "web", "-n", ns))[1][3] == "True"
    refused = cli(served, "reconcile", "wrk", "web", "-n", ns)
    assert refused.returncode == 1 and "suspended" in refused.stderr
    # A spec change while suspended is not reconciled; the other workload's reconcile,
    # requested after the change, is.
    served.kubectl("patch", "workload", "web", "-n", ns, "--type", "merge",
                   "-p", '{"spec":{"params":[{"name":"x","value":"1"}]}}')
    generation = _live(served, ns, "workload", "web")["metadata"]["generation"]
    assert cli(served, "reconcile", "wrk", "db", "-n", ns, "--timeout", "30").returncode == 0
    assert _live(served, ns, "workload", "web")["status"]["observedGeneration"] < generation
    resumed = cli(served, "resume", "workload/web", "-n", ns, "--timeout", "30")
    assert resumed.returncode == 0, resumed.stderr
    live = _live(served, ns, "workload", "web")
    assert live["metadata"]["annotations"]["reconciler.dev/suspend"] == "false"
    assert live["status"]["observedGeneration"] == generation


def test_suspend_a_kustomization_sets_spec_suspend(served: Served, ns: str) -> None:
    served.kubectl("apply", "-f", "-", stdin=f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: {ns}}}
spec: {{interval: 1h, prune: true, path: ./, suspend: false,
       sourceRef: {{kind: GitRepository, name: missing}}}}
""")
    done = cli(served, "suspend", "ks/apps", "-n", ns, "-o", "yaml")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["spec"]["suspend"] is True
    assert _live(served, ns, "kustomization", "apps")["spec"]["suspend"] is True


def test_reconcile_reports_an_object_that_is_not_ready(served: Served, ns: str) -> None:
    """A Kustomization whose source does not exist is handled, and is not Ready: exit 1."""
    served.kubectl("apply", "-f", "-", stdin=f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: broken, namespace: {ns}}}
spec: {{interval: 1h, prune: true, path: ./,
       sourceRef: {{kind: GitRepository, name: missing}}}}
""")
    done = cli(served, "reconcile", "ks", "broken", "-n", ns, "--timeout", "30")
    assert done.returncode == 1
    assert "not Ready" in done.stderr and "internal error" not in done.stderr


# --- tree ----------------------------------------------------------------------------------


def test_tree_of_a_named_owner_in_the_cluster(served: Served, ns: str) -> None:
    text = ok(served, "tree", "web", "-n", ns)
    assert text.splitlines()[0].startswith(f"Workload/{ns}/web  Ready=True")
    assert f"greeting: ConfigMap/{ns}/web-greeting" in text
    owners = json.loads(ok(served, "tree", "-n", ns, "-o", "json"))["owners"]
    assert [o["object"] for o in owners] == [f"Workload/{ns}/db", f"Workload/{ns}/web"]
    as_yaml = yaml.safe_load(ok(served, "tree", "web", "-n", ns, "-o", "yaml"))
    assert [o["object"] for o in as_yaml["owners"]] == [f"Workload/{ns}/web"]
    missing = cli(served, "tree", "nope", "-n", ns)
    assert missing.returncode == 1 and "'nope'" in missing.stderr


# --- errors --------------------------------------------------------------------------------


def test_unknown_kind_is_exit_2_naming_the_known_ones(served: Served) -> None:
    for args in (("get", "pods"), ("reconcile", "pods", "x"), ("events", "--for", "pod/x"),
                 ("suspend", "nope/x")):
        done = cli(served, *args)
        assert done.returncode == 2, args
        assert "unknown kind" in done.stderr and "workloads (wrk)" in done.stderr
        assert "internal error" not in done.stderr


def test_missing_object_is_exit_1(served: Served, ns: str) -> None:
    for args in (("get", "wrk", "ghost"), ("reconcile", "wrk", "ghost"),
                 ("suspend", "ks", "ghost"), ("resume", "gitrepo", "ghost"),
                 ("events", "--for", "workload/ghost")):
        done = cli(served, *args, "-n", ns)
        assert done.returncode == 1, args
        assert "not found" in done.stderr and "internal error" not in done.stderr


def test_bad_selector_is_exit_2(served: Served) -> None:
    done = cli(served, "get", "wrk", "-l", "tier in (a")
    assert done.returncode == 2 and "label selector" in done.stderr


def test_unreachable_cluster_is_exit_1(tmp_path: Path, served: Served) -> None:
    config = yaml.safe_load(served.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    done = subprocess.run([str(RECONCILER), "get", "wrk", "--kubeconfig", str(kubeconfig)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "127.0.0.1:1" in done.stderr and "Traceback" not in done.stderr
    absent = subprocess.run([str(RECONCILER), "get", "wrk", "--kubeconfig",
                             str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert absent.returncode == 1 and "does not exist" in absent.stderr


def test_reconcile_a_git_repository_and_see_its_revision(
        served: Served, ns: str, make_repo: Callable[..., GitRepo],
        serve_repo: Callable[[GitRepo], str]) -> None:
    repo = make_repo("app", {"README.md": "one\n"})
    url = serve_repo(repo)
    served.kubectl("apply", "-f", "-", stdin=f"""apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: app, namespace: {ns}}}
spec: {{url: "{url}", interval: 1h, ref: {{branch: main}}}}
""")
    first = repo.git("rev-parse", "HEAD")
    wait_for(lambda: first in ok(served, "get", "gitrepo", "app", "-n", ns), seconds=30)
    second = repo.commit({"README.md": "two\n"})
    # Within its 1h interval only a requested reconcile fetches the new commit.
    done = cli(served, "reconcile", "source", "app", "-n", ns, "--timeout", "30", "-o", "yaml")
    assert done.returncode == 0, done.stderr
    assert second in yaml.safe_load(done.stdout)["status"]["artifact"]["revision"]
    assert second in rows(ok(served, "get", "sources", "-n", ns))[1][1]
