"""The chart installed by the real helm into `reconciler serve --rbac`, and the daemon started
as the chart's Deployment starts it (its args, its settings and inputs ConfigMaps as files, its
environment with the Downward API's values filled in as the kubelet fills them, its
ServiceAccount's token):

- the paved path (examples/paved-path: a GitRepository fetched for real from `git daemon` ->
  a kpack Image -> a Knative Service) becomes Ready with two replicas and leader election, the
  artifact server on the port the settings file names and the artifact URLs naming the pod,
  and again after the leader goes, under the new leader's address;
- one verb taken from a stamped kind is reported on the Workload, naming verb, resource, group,
  namespace and user;
- `helm upgrade` to a changed chart (a changed CRD in `crds/`) keeps working: helm leaves the
  CRD as it was, the daemon upgrades it from its inputs when it starts.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.apiserver.conftest import Served, needs_kubectl, serving, wait_for
from tests.chart.harness import CHART, conditions_of, daemon_as_the_chart_runs_it, helm, needs_helm
from tests.conftest import EXAMPLES, GitRepo
from tests.e2e.daemon_harness import DaemonProcess, http_get, running_daemon

NS = "reconciler-system"
PAVED = EXAMPLES / "paved-path"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _install(served: Served, *values: str, chart: Path = CHART,
             command: str = "install") -> str:
    done = helm("--kubeconfig", str(served.kubeconfig), command, "rec", str(chart), "-n", NS,
                "--create-namespace", "--wait", "--timeout", "60s", *values, home=served.home)
    return done.stdout


def _workload(name: str, url: str) -> str:
    text = (PAVED / "developer" / "workload.yaml").read_text()
    assert "name: band-service\n" in text and "${APP_REPO_URL}" in text
    return text.replace("name: band-service\n", f"name: {name}\n").replace(
        "${APP_REPO_URL}", url)


def _ready(served: Served, name: str) -> dict[str, tuple[str, str, str]] | None:
    conditions = conditions_of(served.get_json("workload", name, "-n", "default"))
    return conditions if conditions.get("Ready", ("",))[0] == "True" else None


def _wait_ready(served: Served, daemon: DaemonProcess, name: str) -> None:
    try:
        wait_for(lambda: _ready(served, name), seconds=60)
    except AssertionError:
        raise AssertionError(f"{conditions_of(served.get_json('workload', name))}\n"
                             f"{daemon.stderr_tail()}") from None


def _set_verbs(served: Served, cluster_role: str, group: str, resource: str,
               verbs: list[str]) -> None:
    """Give `resource.group` its own rule in the ClusterRole with exactly `verbs`."""
    role = served.get_json("clusterrole", cluster_role)
    rules = []
    for rule in role["rules"]:
        if rule["apiGroups"] == [group] and resource in rule["resources"]:
            rest = [r for r in rule["resources"] if r != resource]
            if rest:
                rules.append({**rule, "resources": rest})
        else:
            rules.append(rule)
    rules.append({"apiGroups": [group], "resources": [resource], "verbs": verbs})
    role["rules"] = rules
    served.kubectl("replace", "-f", "-", stdin=json.dumps(role))


@pytest.fixture
def paved_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # 30 simulated seconds per real one: kpack's 30 s build takes 1 s.
    with serving(tmp_path_factory.mktemp("serve-chart-paved"), "--rbac", "--controllers",
                 "ecosystem", "--time-scale", "30") as server:
        yield server


@pytest.fixture
def band_service(make_repo: Callable[..., GitRepo]) -> GitRepo:
    app = PAVED / "developer" / "app"
    return make_repo("band-service", {p.name: p.read_text() for p in app.iterdir()})


@needs_helm
@needs_kubectl
@pytest.mark.timeout(300)
def test_the_paved_path_under_the_chart_fails_over_and_names_a_missing_verb(
        paved_served: Served, band_service: GitRepo, serve_repo: Callable[[GitRepo], str],
        tmp_path: Path) -> None:
    """Two replicas: the leader's artifact URLs name its own pod; the standby's store is empty;
    when the leader goes, the new one stores the artifact again under its own address.

    Which grant a missing verb is taken from: a Workload's writes go as its ServiceAccount
    (the daemon impersonates it; `default` when it names none), and only its reads go as the
    daemon. So a verb for a stamped kind matters in the ClusterRole bound to that
    ServiceAccount, the chart's `rec-reconciler-workload`: taking `patch` on kpack Images from
    the daemon's own ClusterRole changes nothing for the Workload (checked first), taking it
    from the Workload's ClusterRole makes the next change to the Image fail, reported on the
    Workload with the ServiceAccount as the user."""
    served, port = paved_served, _free_port()
    # The chart's `env` value reaches the daemon as the pod's environment.
    _install(served, "--set", "replicas=2", "--set", f"ports.artifacts={port}",
             "--set", "env[0].name=RECONCILER_DAEMON_CONCURRENT",
             "--set-string", "env[0].value=3")
    args, env = daemon_as_the_chart_runs_it(served, tmp_path, NS)
    assert "--leader-elect" in args and env["RECONCILER_DAEMON_CONCURRENT"] == "3"
    # The settings file's artifacts_listen (":PORT", from ports.artifacts) is what the daemon
    # listens on: no flag or variable overrides it here. The URLs name the pod, not the Service.
    settings = yaml.safe_load(Path(args[0].removeprefix("--config=")).read_text())["daemon"]
    assert settings["artifacts_listen"] == f":{port}"
    assert "RECONCILER_DAEMON_ARTIFACTS_LISTEN" not in env
    assert env["RECONCILER_DAEMON_ARTIFACTS_URL"] == f"http://127.0.0.1:{port}"

    # The platform team applies the paved path; the developer namespace's `default`
    # ServiceAccount gets the chart's ClusterRole for what Workloads stamp.
    for name in ("supply-chain.yaml", "templates.yaml"):
        served.kubectl("apply", "-f", str(PAVED / "platform" / name))
    served.kubectl("create", "rolebinding", "workload", "-n", "default",
                   "--clusterrole=rec-reconciler-workload", "--serviceaccount=default:default")
    served.kubectl("apply", "-f", "-", stdin=_workload("band-service", serve_repo(band_service)))

    with running_daemon(args, tmp_path / "run.log", env=env) as daemon:
        assert daemon.artifacts_url == f"http://127.0.0.1:{port}"
        [started] = [e for e in daemon.log_events() if e.get("msg") == "daemon started"]
        assert started["concurrent"] == 3 and started["lease"].startswith(f"{NS}/")
        _wait_ready(served, daemon, "band-service")
        lease = served.get_json("lease", "-n", NS, "-o", "json")["items"]
        assert [item["spec"].get("holderIdentity") for item in lease if item["spec"].get(
            "holderIdentity")], "the daemon leads on a Lease in the release's namespace"
        source = served.get_json("gitrepository", "band-service", "-n", "default")
        url = source["status"]["artifact"]["url"]
        assert url.startswith(f"http://127.0.0.1:{port}/"), url
        assert http_get(url)[0] == 200
        image = served.get_json("image.kpack.io", "band-service", "-n", "default")
        first_image = image["status"]["latestImage"]
        assert first_image.startswith("registry.example.com/apps/band-service@sha256:")
        knative = served.get_json("service.serving.knative.dev", "band-service", "-n",
                                  "default")
        assert knative["status"]["url"] == "http://band-service.default.example.com"
        assert knative["spec"]["template"]["spec"]["containers"][0]["image"] == first_image

        # A second replica stands by with a store of its own, empty: the artifacts Service,
        # balancing across both pods, would answer every other fetch with a 404. (Both "pods"
        # share this host's network here, so the second gets another port than the chart's.)
        port_b = _free_port()
        env_b = {**env, "RECONCILER_DAEMON_ARTIFACTS_LISTEN": f"127.0.0.1:{port_b}",
                 "RECONCILER_DAEMON_ARTIFACTS_URL": f"http://127.0.0.1:{port_b}",
                 "RECONCILER_DAEMON_DATA_DIR": str(tmp_path / "data-b")}
        with running_daemon(args, tmp_path / "standby.log", env=env_b) as standby:
            path = urlsplit(url).path
            assert http_get(f"http://127.0.0.1:{port_b}{path}")[0] == 404
            # Ready while standing by (a rolling update waits for the new pod to be ready
            # before it stops the old leader), yet not working.
            wait_for(lambda: http_get(f"{standby.ops_url}/readyz")[0] == 200 or None,
                     seconds=30)
            assert not any(e.get("msg") == "workers started" for e in standby.log_events())
            # The leader goes (SIGTERM releases the Lease); the standby leads, stores the
            # artifact again and writes its own address, and the path is Ready again.
            assert daemon.stop() == 0, daemon.stderr_tail()

            def moved() -> str | None:
                got = served.get_json("gitrepository", "band-service", "-n", "default")
                now = str(got["status"]["artifact"]["url"])
                return now if now.startswith(f"http://127.0.0.1:{port_b}/") else None

            try:
                new_url = wait_for(moved, seconds=60)
            except AssertionError:
                raise AssertionError(standby.stderr_tail()) from None
            assert http_get(new_url)[0] == 200
            _wait_ready(served, standby, "band-service")
            # The cost of naming the pod (values.yaml, `replicas`): kpack sees a new blob URL.
            wait_for(lambda: served.get_json("image.kpack.io", "band-service", "-n", "default")[
                "spec"]["source"]["blob"]["url"] == new_url or None, seconds=30)

            def change_build(value: str) -> None:
                # A merge patch: no resourceVersion to race the daemon's status writes with.
                change = {"spec": {"build": {"env": [{"name": "BP_JVM_VERSION",
                                                      "value": value}]}}}
                served.kubectl("patch", "workload", "band-service", "-n", "default",
                               "--type", "merge", "-p", json.dumps(change))

            def image_env() -> list[dict[str, str]]:
                got = served.get_json("image.kpack.io", "band-service", "-n", "default")
                return list(got["spec"]["build"]["env"])

            # Not the daemon's own grant: the Image is still updated, as the ServiceAccount.
            _set_verbs(served, "rec-reconciler", "kpack.io", "images",
                       ["get", "list", "watch", "create", "update", "delete"])
            change_build("17")
            wait_for(lambda: image_env() == [{"name": "BP_JVM_VERSION", "value": "17"}],
                     seconds=60)
            _wait_ready(served, standby, "band-service")

            # The Workload's: refused, and the Workload says exactly what is missing.
            _set_verbs(served, "rec-reconciler-workload", "kpack.io", "images",
                       ["get", "list", "watch", "create", "update", "delete"])
            change_build("11")

            def refused() -> dict[str, tuple[str, str, str]] | None:
                conditions = conditions_of(served.get_json("workload", "band-service", "-n",
                                                         "default"))
                rejected = ("False", "TemplateRejectedByAPIServer")
                return conditions if conditions.get("Ready", ("",))[:2] == rejected else None

            try:
                conditions = wait_for(refused, seconds=60)
            except AssertionError:
                raise AssertionError(standby.stderr_tail()) from None
            message = (
                "unable to apply object [default/band-service] for resource [image-builder] in "
                "supply chain [web]: forbidden to patch images.kpack.io 'band-service' in "
                "namespace 'default': images.kpack.io \"band-service\" is forbidden: User "
                "\"system:serviceaccount:default:default\" cannot patch resource \"images\" in "
                "API group \"kpack.io\" in the namespace \"default\". Grant ServiceAccount "
                "default/default the 'patch' verb on 'images.kpack.io' (a Role, or a ClusterRole "
                "for cluster-scoped kinds and lists across namespaces) and bind it")
            assert conditions["Ready"] == ("False", "TemplateRejectedByAPIServer", message)
            assert image_env() == [{"name": "BP_JVM_VERSION", "value": "17"}]
            assert standby.stop() == 0, standby.stderr_tail()


@pytest.fixture
def rbac_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-chart-upgrade"), "--rbac") as server:
        yield server


@needs_helm
@needs_kubectl
@pytest.mark.timeout(300)
def test_helm_upgrade_to_a_changed_chart_and_the_daemon_upgrades_its_crds(
        rbac_served: Served, tmp_path: Path) -> None:
    """helm installs `crds/` on install only, never on upgrade; the chart also puts its CRDs
    in the daemon's inputs ConfigMap (a template, so upgraded), and the daemon applies them when
    it starts: after `helm upgrade` and the new pods' start, the cluster has the new CRD."""
    served = rbac_served
    _install(served)
    crd_name = "workloads.carto.run"
    before = served.get_json("crd", crd_name)

    # The next version of the chart: one more field in the Workload's schema, one more value.
    chart = tmp_path / "reconciler"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = "0.1.1-next"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    crd_file = chart / "crds" / "carto.run_workloads.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "upgradeProbe" not in spec_schema["properties"]
    spec_schema["properties"]["upgradeProbe"] = {"type": "string",
                                                 "description": "Added by the next chart."}
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))

    upgraded = _install(served, "--set", "settings.daemon.concurrent=3", chart=chart,
                        command="upgrade")
    assert "STATUS: deployed" in upgraded and "REVISION: 2" in upgraded
    settings = served.get_json("cm", "rec-reconciler-settings", "-n", NS)["data"]
    assert yaml.safe_load(settings["settings.yaml"])["daemon"]["concurrent"] == 3
    # helm left the CRD as the first install made it...
    after_helm = served.get_json("crd", crd_name)
    assert after_helm["spec"] == before["spec"]
    # ...and the daemon's inputs hold the new one.
    inputs = served.get_json("cm", "rec-reconciler-inputs", "-n", NS)["data"]
    assert "upgradeProbe" in inputs["carto.run_workloads.yaml"]

    args, env = daemon_as_the_chart_runs_it(served, tmp_path, NS)
    env["RECONCILER_DAEMON_ARTIFACTS_LISTEN"] = "127.0.0.1:0"
    with running_daemon(args, tmp_path / "run.log", env=env) as daemon:
        def upgraded_crd() -> dict[str, Any] | None:
            got = served.get_json("crd", crd_name)
            [stored] = [v for v in got["spec"]["versions"] if v.get("storage")]
            props = stored["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            return got if "upgradeProbe" in props else None

        try:
            wait_for(upgraded_crd, seconds=30)
        except AssertionError:
            raise AssertionError(daemon.stderr_tail()) from None
        assert daemon.stop() == 0, daemon.stderr_tail()
    # The new field is served: a Workload carrying it keeps it.
    served.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "carto.run/v1alpha1", "kind": "Workload",
        "metadata": {"name": "probe", "namespace": "default"},
        "spec": {"upgradeProbe": "kept"}}))
    assert served.get_json("workload", "probe", "-n", "default")["spec"]["upgradeProbe"] == (
        "kept")
