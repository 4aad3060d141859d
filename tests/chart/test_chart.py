"""The Helm chart in charts/reconciler with the real helm v4 (`.tools/bin/helm`, installed by
`scripts/kube_tools.py`): lint, template, the values schema refusing bad values, the generated
files (schema, README, config/install/) equal to a fresh generation, checkov on the rendered
chart, an install into `reconciler serve --rbac` and its uninstall, and the daemon started as the
chart's Deployment starts it (its args, settings and inputs, its ServiceAccount's token) making
the greeter example Ready, then reporting the verb taken out of its ClusterRole."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.apiserver.conftest import RECONCILER, Served, needs_kubectl, serving, wait_for
from tests.chart.harness import (
    CHART,
    HELM,
    conditions_of,
    daemon_as_the_chart_runs_it,
    helm,
    needs_helm,
)
from tests.conftest import EXAMPLES, ROOT
from tests.e2e.daemon_harness import running_daemon

ALL_FEATURES = Path(__file__).parent / "all-features.yaml"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"

def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"),
                                                  ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    out = helm("template", "r", str(CHART), "-n", "ops", *args, home=tmp_path).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def fast_path_reads(role: dict[str, Any]) -> set[str]:
    """Which of the core ServiceAccounts and Namespaces `role` lets read with an informer."""
    return {resource for rule in role["rules"] if rule["apiGroups"] == [""]
            and {"get", "list", "watch"} <= set(rule["verbs"])
            for resource in rule["resources"] if resource in ("serviceaccounts", "namespaces")}


# --- generated files (no helm needed) ------------------------------------------------------

def test_values_schema_and_readme_equal_generated() -> None:
    for path, text in script("generate-chart-docs").generated().items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} is stale: run "
            "`.venv/bin/python scripts/generate-chart-docs.py` and commit it")


def test_every_value_is_documented_in_the_readme() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    for key in values:
        assert f"| `{key}" in readme, key


# --- what the shipped paths stamp (no helm needed) -------------------------------------------

TEMPLATE_KINDS = ("ClusterSourceTemplate", "ClusterImageTemplate", "ClusterConfigTemplate",
                  "ClusterTemplate", "ClusterDeploymentTemplate", "ClusterRunTemplate")
SHIPPED_PATHS = (ROOT / "examples", ROOT / "config" / "supply-chains")


def _yaml_documents(root: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                yield doc


# Plurals of the kinds the shipped paths stamp that the simulator may not serve yet, as the
# real projects' CRDs name them.
UPSTREAM_PLURALS = {("scanning.apps.tanzu.vmware.com", "ImageScan"): "imagescans",
                    ("scanning.apps.tanzu.vmware.com", "SourceScan"): "sourcescans",
                    ("scanning.apps.tanzu.vmware.com", "ScanPolicy"): "scanpolicies"}


def _stamped_in_text(text: str) -> list[tuple[str, str]]:
    """(apiVersion, kind) of each object in a `ytt` or `jinja2` template's text: a `kind:` line
    with an `apiVersion:` line at the same indentation within three lines of it."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        kind = re.match(r"^(\s*)(?:- )?kind:\s*([A-Za-z]\w*)\s*$", line)
        if kind is None:
            continue
        for other in lines[max(0, i - 3):i + 4]:
            version = re.match(rf"^{kind.group(1)}(?:- )?apiVersion:\s*([\w./-]+)\s*$", other)
            if version is not None:
                found.append((version.group(1), kind.group(2)))
                break
    return found


def stamped_by_shipped_paths() -> set[tuple[str, str]]:
    """(API group, resource) of every object a template under examples/ or
    config/supply-chains/ stamps: its `template`, or the objects of its `ytt` or `jinja2` text.
    Plurals come from the built-in kinds, the simulated ecosystem's, the CRDs and
    UPSTREAM_PLURALS."""
    from reconciler.model.kinds import BUILTIN_KINDS, kind_info_from_crd
    from simulator.ecosystem import ECOSYSTEM_KINDS

    docs = [doc for root in SHIPPED_PATHS for doc in _yaml_documents(root)]
    known = [*BUILTIN_KINDS, *ECOSYSTEM_KINDS, *(
        kind_info_from_crd(doc) for root in (ROOT / "config" / "crds", *SHIPPED_PATHS)
        for doc in (_yaml_documents(root) if root.name == "crds" else docs)
        if doc.get("kind") == "CustomResourceDefinition")]
    plurals = {**UPSTREAM_PLURALS, **{(info.group, info.kind): info.plural for info in known}}
    found: set[tuple[str, str]] = set()
    for doc in docs:
        if not (str(doc.get("apiVersion", "")).startswith("carto.run/")
                and doc.get("kind") in TEMPLATE_KINDS):
            continue
        spec = doc.get("spec") or {}
        pairs = ([(spec["template"].get("apiVersion"), spec["template"].get("kind"))]
                 if isinstance(spec.get("template"), dict) else
                 _stamped_in_text(str(spec.get("ytt") or spec.get("jinja2") or "")))
        for api_version, kind in pairs:
            group = str(api_version).rpartition("/")[0]
            plural = plurals.get((group, str(kind)))
            assert plural, (f"{doc['kind']} {doc['metadata']['name']} stamps {api_version} "
                            f"{kind}, a kind this test has no plural for")
            found.add((group, plural))
    return found


def test_the_shipped_paths_stamp_kinds_this_test_finds() -> None:
    # The paved path at least: a GitRepository, a kpack Image and a Knative Service.
    assert {("source.toolkit.fluxcd.io", "gitrepositories"), ("kpack.io", "images"),
            ("serving.knative.dev", "services"), ("", "configmaps")} <= stamped_by_shipped_paths()


# --- helm lint and template -----------------------------------------------------------------

@needs_helm
@pytest.mark.parametrize("values", [[], ["-f", str(ALL_FEATURES)]], ids=["defaults", "all"])
def test_lint_strict(tmp_path: Path, values: list[str]) -> None:
    done = helm("lint", "--strict", str(CHART), *values, home=tmp_path)
    assert "0 chart(s) failed" in done.stdout


@needs_helm
def test_template_with_defaults(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "ConfigMap",
                     "Deployment",
                     "NetworkPolicy", "Role", "RoleBinding", "Service", "Service", "Service",
                     "ServiceAccount"]
    [deployment] = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/reconciler/reconciler:0.1.0"
    assert container["imagePullPolicy"] == "Always"  # a tag may move
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert container["args"] == ["run", "--config=/etc/reconciler/settings/settings.yaml",
                                 "--leader-elect", "/etc/reconciler/inputs"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert isinstance(security["runAsUser"], int)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/data"
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "data")
    services = {doc["metadata"]["name"] for doc in by_kind(docs, "Service")}
    assert services == {"r-reconciler-metrics", "r-reconciler-artifacts", "r-reconciler-webhook"}
    roles = {doc["metadata"]["name"]: doc for doc in by_kind(docs, "ClusterRole")}
    cluster_role, workload_role = roles["r-reconciler"], roles["r-reconciler-workload"]
    groups = {g for rule in cluster_role["rules"] for g in rule["apiGroups"]}
    assert {"carto.run", "source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io",
            "notification.toolkit.fluxcd.io", "", "apps"} <= groups
    assert not any("*" in rule["verbs"] or "*" in rule["resources"]
                   for rule in cluster_role["rules"])
    [role] = by_kind(docs, "Role")
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]
    # What the shipped paths stamp, granted to the daemon and in the Workloads' ClusterRole.
    stamped = {(group, resource) for rule in workload_role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    missing = stamped_by_shipped_paths() - stamped
    assert not missing, (f"the shipped supply chains stamp {sorted(missing)}: add them to "
                         "rbac.stampedKinds in charts/reconciler/values.yaml")
    assert all(rule["verbs"] == ["get", "list", "watch", "create", "update", "patch", "delete"]
               for rule in workload_role["rules"])
    assert all(rule in cluster_role["rules"] for rule in workload_role["rules"])
    # The owner controllers' no-op fast path reads each owner's ServiceAccount and Namespace
    # through informers (get, list, watch).
    assert fast_path_reads(cluster_role) == {"serviceaccounts", "namespaces"}
    # One replica: the artifact URLs name the artifacts Service; no environment by default.
    assert "env" not in container
    [settings] = [doc["data"]["settings.yaml"] for doc in by_kind(docs, "ConfigMap")
                  if "settings.yaml" in doc["data"]]
    daemon = yaml.safe_load(settings)["daemon"]
    assert daemon["leader_election_namespace"] == "ops"
    assert daemon["artifacts_url"] == "http://r-reconciler-artifacts.ops.svc:9090"


@needs_helm
def test_template_with_every_feature(tmp_path: Path) -> None:
    docs = rendered(tmp_path, "-f", str(ALL_FEATURES))
    deployments = {doc["metadata"]["name"]: doc for doc in by_kind(docs, "Deployment")}
    assert sorted(deployments) == ["r-reconciler", "r-reconciler-shard-team-a",
                                   "r-reconciler-shard-team-b"]
    for name, deployment in deployments.items():
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--leader-elect" in args and deployment["spec"]["replicas"] == 2
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["imagePullPolicy"] == "IfNotPresent"  # a digest cannot move
        assert container["image"].startswith("ghcr.io/reconciler/reconciler@sha256:")
        shard = [a for a in args if a.startswith("--shard=")]
        assert shard == ([] if name == "r-reconciler" else [f"--shard={name.rsplit('-', 2)[-2]}-"
                                                                     f"{name.rsplit('-', 1)[-1]}"])
    # namespaced RBAC: a Role and RoleBinding per watched namespace, plus the Lease's
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in by_kind(docs, "Role")}
    assert roles == {("team-a", "r-reconciler"), ("team-b", "r-reconciler"),
                     ("ops", "r-reconciler-leader-election")}
    cluster_roles = {doc["metadata"]["name"]: doc for doc in by_kind(docs, "ClusterRole")}
    assert sorted(cluster_roles) == ["r-reconciler", "r-reconciler-workload"]
    assert not any("workloads" in rule["resources"]
                   for rule in cluster_roles["r-reconciler"]["rules"])
    assert [rule["resources"] for rule in cluster_roles["r-reconciler-workload"]["rules"]] == [
        ["configmaps", "services"], ["deployments"], ["services"]]
    # Namespaced: the Namespaces (cluster-scoped) still in the ClusterRole, the ServiceAccounts
    # in each watched namespace's Role.
    assert fast_path_reads(cluster_roles["r-reconciler"]) == {"namespaces"}
    assert all(fast_path_reads(role) == {"serviceaccounts"} for role in by_kind(docs, "Role")
               if role["metadata"]["name"] == "r-reconciler")
    # Two replicas: each pod's artifact URLs name the pod itself, unless artifacts_url is set
    # (here it is: https://artifacts.example.com); the extra `env` entry is passed on as given.
    for deployment in deployments.values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["env"] == [{"name": "RECONCILER_KUBERNETES_BURST", "value": "80"}]
    settings = [yaml.safe_load(doc["data"]["settings.yaml"])["daemon"]
                for doc in by_kind(docs, "ConfigMap") if "settings.yaml" in doc["data"]]
    assert len(settings) == 3 and all(
        daemon["leader_election_namespace"] == "ops"
        and daemon["artifacts_url"] == "https://artifacts.example.com" for daemon in settings)
    for kind in ("ServiceMonitor", "NetworkPolicy", "Ingress"):
        assert len(by_kind(docs, kind)) == 1, kind
    assert len(by_kind(docs, "PodDisruptionBudget")) == 3


@needs_helm
def test_template_with_replicas_names_each_pods_own_artifact_address(tmp_path: Path) -> None:
    """Above one replica each pod has its own emptyDir store and only the leader fills it, so
    the URLs it writes must reach that pod, not the Service that balances across standbys: the
    pod's IP (the Downward API's `status.podIP`, expanded by the kubelet in the next entry)."""
    docs = rendered(tmp_path, "--set", "replicas=3", "--set", "ports.artifacts=9191",
                    "--set", "env[0].name=RECONCILER_LIMITS_RENDER_ITERATIONS",
                    "--set-string", "env[0].value=5")
    [deployment] = by_kind(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--leader-elect" in container["args"]
    assert container["env"] == [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RECONCILER_DAEMON_ARTIFACTS_URL", "value": "http://$(POD_IP):9191"},
        {"name": "RECONCILER_LIMITS_RENDER_ITERATIONS", "value": "5"}]
    assert {"name": "artifacts", "containerPort": 9191, "protocol": "TCP"} in container["ports"]


@needs_helm
@pytest.mark.parametrize("values", [[], ["-f", str(ALL_FEATURES)]], ids=["defaults", "all"])
def test_rendered_settings_files_load_in_the_daemon(tmp_path: Path, values: list[str]) -> None:
    settings = [doc["data"]["settings.yaml"] for doc in rendered(tmp_path, *values)
                if doc["kind"] == "ConfigMap" and "settings.yaml" in doc.get("data", {})]
    assert settings
    for i, text in enumerate(settings):
        path = tmp_path / f"settings-{i}.yaml"
        path.write_text(text)
        done = subprocess.run([str(RECONCILER), "settings", "--config", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        effective = yaml.safe_load(done.stdout)
        assert effective["daemon"]["environment"] == "kubernetes"
        assert effective["daemon"]["data_dir"] == "/data"
        # The file's addresses win over the flags' defaults (127.0.0.1:...); the daemon serving
        # artifacts on the file's port is in test_chart_paths.
        origin = {line.split(":", 1)[0].strip(): line.rpartition("# ")[2]
                  for line in done.stdout.splitlines() if line.startswith("  ")}
        for key, value in (("artifacts_listen", "0.0.0.0:9090"), ("listen", "0.0.0.0:8080"),
                           ("leader_election_namespace", "ops")):
            assert effective["daemon"][key] == value, key
            assert origin[key].startswith(f"file {path}:"), (key, origin[key])
        # settings.owners reaches the daemon (all-features.yaml sets it; the default: nothing).
        max_age = effective["owners"]["fast_path_max_age_seconds"]
        if values:
            assert max_age == 300.0
            assert origin["fast_path_max_age_seconds"].startswith(f"file {path}:")
        else:
            assert (max_age, origin["fast_path_max_age_seconds"]) == (600.0, "default")


@needs_helm
@pytest.mark.parametrize(("args", "message"), [
    (["--set", "replicass=2"], "additional properties 'replicass' not allowed"),
    (["--set", "replicas=two"], "at '/replicas': got string, want integer"),
    (["--set", "ingress.enabeld=true"],
     "at '/ingress': additional properties 'enabeld' not allowed"),
    (["--set", "settings.daemon.concurent=8"],
     "at '/settings/daemon': additional properties 'concurent' not allowed"),
    (["--set", "settings.daemon.leader_elect=true"],
     "at '/settings/daemon': additional properties 'leader_elect' not allowed"),
    (["--set", "settings.kubernetes.qps=fast"],
     "at '/settings/kubernetes/qps': got string, want number"),
    (["--set", "settings.owners.fastpath=false"],
     "at '/settings/owners': additional properties 'fastpath' not allowed"),
    (["--set-string", "settings.owners.fast_path=off"],
     "at '/settings/owners/fast_path': got string, want boolean"),
], ids=["typo", "type", "nested-typo", "settings-typo", "chart-owned", "settings-type",
        "owners-typo", "owners-type"])
def test_bad_values_are_refused_by_the_schema(tmp_path: Path, args: list[str],
                                              message: str) -> None:
    done = helm("template", "r", str(CHART), *args, home=tmp_path, check=False)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr, done.stderr


@needs_helm
def test_install_manifests_equal_a_fresh_render() -> None:
    fresh = script("render-install").render(HELM)
    committed = (ROOT / "config" / "install" / "reconciler.yaml").read_text()
    assert committed == fresh, ("config/install/reconciler.yaml is stale: run "
                                "`.venv/bin/python scripts/render-install.py` and commit it")


# --- checkov on the rendered chart ----------------------------------------------------------

@needs_helm
@pytest.mark.parametrize("values", [[], ["-f", str(ALL_FEATURES)]], ids=["defaults", "all"])
def test_checkov_fails_no_check_on_the_rendered_chart(tmp_path: Path,
                                                      values: list[str]) -> None:
    if not (CHECKOV.is_file() and os.access(CHECKOV, os.X_OK)):
        message = f"{CHECKOV} is not installed (bash scripts/checkov.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI's .ci/run must install it")
        pytest.skip(message)
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(helm("template", "r", str(CHART), "-n", "reconciler-system", *values,
                              home=tmp_path).stdout)
    done = subprocess.run([str(CHECKOV), "-f", str(manifests), "--framework", "kubernetes",
                           "--skip-download", "--output", "json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = json.loads(done.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and report["summary"]["failed"] == 0, failed
    assert report["summary"]["passed"] > 0 and done.returncode == 0, done.stderr[-2000:]
    # What stays is skipped in the templates (`checkov.io/skipN: CKV_...=why`), each with its
    # reason; CKV_K8S_43 (digest) only while no image.digest is given.
    skipped = {(c["check_id"], (c["check_result"].get("suppress_comment") or "").strip())
               for c in report["results"]["skipped_checks"]}
    assert all(reason for _, reason in skipped), skipped
    assert {check for check, _ in skipped} == (
        {"CKV_K8S_38"} if values else {"CKV_K8S_38", "CKV_K8S_43"})


# --- helm install into reconciler serve --rbac ---------------------------------------------

@pytest.fixture(scope="module")
def rbac_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-rbac"), "--rbac") as server:
        yield server


@needs_helm
@needs_kubectl
def test_helm_install_and_uninstall_in_a_cluster_with_rbac(rbac_served: Served) -> None:
    served = rbac_served
    kube = ["--kubeconfig", str(served.kubeconfig)]
    # `--wait`: helm waits for the CRDs to be Established and for every resource to be ready
    # (the Deployment available), as the served cluster reports them.
    installed = helm(*kube, "install", "rec", str(CHART), "-n", "reconciler-system",
                     "--create-namespace", "--set", "image.repository=example.invalid/reconciler",
                     "--wait", "--timeout", "60s", home=served.home)
    assert "STATUS: deployed" in installed.stdout
    assert "kubectl -n reconciler-system rollout status deployment/rec-reconciler" in (
        installed.stdout)
    assert "--clusterrole=rec-reconciler-workload --serviceaccount=NAMESPACE:default" in (
        installed.stdout)
    assert "kubectl apply --server-side -f charts/reconciler/crds/" in installed.stdout
    deployment = served.get_json("deploy", "rec-reconciler", "-n", "reconciler-system")
    assert deployment["status"]["availableReplicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "example.invalid/reconciler:0.1.0")
    crds = served.kubectl("get", "crd", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/workloads.carto.run" in crds
    # the ServiceAccount gets what the ClusterRole grants, and no more
    sa = "system:serviceaccount:reconciler-system:rec-reconciler"
    for verb, resource, allowed in [
            ("list", "workloads.carto.run", "yes"),
            ("patch", "gitrepositories.source.toolkit.fluxcd.io/status", "yes"),
            ("impersonate", "serviceaccounts", "yes"),
            ("create", "events", "yes"),
            # the owner controllers' no-op fast path: the owners' ServiceAccounts, Namespaces
            ("get", "serviceaccounts", "yes"), ("watch", "serviceaccounts", "yes"),
            ("get", "namespaces", "yes"), ("list", "namespaces", "yes"),
            ("update", "namespaces", "no"),
            ("delete", "workloads.carto.run", "no"),
            ("create", "secrets", "no")]:
        answer = served.kubectl("auth", "can-i", verb, resource, "--as", sa,
                                check=False).stdout.strip()
        assert answer == allowed, (verb, resource, answer)
    lease = served.kubectl("auth", "can-i", "update", "leases.coordination.k8s.io", "--as", sa,
                           "-n", "reconciler-system", check=False).stdout.strip()
    assert lease == "yes"

    removed = helm(*kube, "uninstall", "rec", "-n", "reconciler-system",
                   home=served.home)
    assert 'release "rec" uninstalled' in removed.stdout
    for what in (("deploy", "rec-reconciler"), ("svc", "rec-reconciler-metrics"),
                 ("sa", "rec-reconciler"), ("cm", "rec-reconciler-settings")):
        assert served.kubectl("get", *what, "-n", "reconciler-system",
                              check=False).returncode == 1, what
    assert served.kubectl("get", "clusterrole", "rec-reconciler",
                          check=False).returncode == 1
    # helm never deletes what it installed from crds/ (so no custom resource is lost)
    assert "customresourcedefinition.apiextensions.k8s.io/workloads.carto.run" in (
        served.kubectl("get", "crd", "-o", "name").stdout.split())


# --- the daemon, started as the chart's Deployment starts it -------------------------------

@pytest.fixture(scope="module")
def ecosystem_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-chart-daemon"), "--rbac", "--controllers",
                 "ecosystem") as server:
        yield server


@needs_helm
@needs_kubectl
@pytest.mark.timeout(300)
def test_the_daemon_as_the_chart_runs_it_reconciles_and_reports_a_missing_verb(
        ecosystem_served: Served, tmp_path: Path) -> None:
    served, ns = ecosystem_served, "reconciler-system"
    helm("--kubeconfig", str(served.kubeconfig), "install", "rec", str(CHART), "-n", ns,
         "--create-namespace", "--wait", "--timeout", "60s", home=served.home)
    args, env = daemon_as_the_chart_runs_it(served, tmp_path, ns)
    # The operator applies the greeter example (no Git) as the admin, and lets the Workload's
    # ServiceAccount (none named: `default`) write what its supply chain stamps: the daemon
    # impersonates it for those writes.
    for name in ("00-supply-chain.yaml", "00-workload.yaml"):
        served.kubectl("apply", "-f", str(EXAMPLES / "greeter" / name))
    served.kubectl("create", "role", "greeter-tenant", "-n", "default",
                   "--verb=get,list,watch,create,patch", "--resource=configmaps")
    served.kubectl("create", "rolebinding", "greeter-tenant", "-n", "default",
                   "--role=greeter-tenant", "--serviceaccount=default:default")

    # A loopback artifact server (test_chart_paths keeps the settings file's address).
    env["RECONCILER_DAEMON_ARTIFACTS_LISTEN"] = "127.0.0.1:0"
    with running_daemon(args, tmp_path / "run.log", env=env) as daemon:
        def ready(name: str) -> dict[str, tuple[str, str, str]] | None:
            conditions = conditions_of(served.get_json("workload", name, "-n", "default"))
            return conditions if conditions.get("Ready", ("",))[0] == "True" else None

        try:
            wait_for(lambda: ready("hello"), seconds=60)
        except AssertionError:
            raise AssertionError(f"{conditions_of(served.get_json('workload', 'hello'))}\n"
                                 f"{daemon.stderr_tail()}") from None
        greeting = served.get_json("cm", "hello-greeting", "-n", "default")
        assert greeting["data"] == {"greeting": "hello hello"}

        # One verb less: the ClusterRole loses `impersonate` on serviceaccounts (its rule's
        # only verb, so the rule goes: RBAC refuses a rule without verbs).
        role = served.get_json("clusterrole", "rec-reconciler")
        [rule] = [r for r in role["rules"] if r["verbs"] == ["impersonate"]]
        role["rules"].remove(rule)
        served.kubectl("replace", "-f", "-", stdin=json.dumps(role))
        second = (EXAMPLES / "greeter" / "00-workload.yaml").read_text().replace(
            "name: hello", "name: hello-again")
        served.kubectl("apply", "-f", "-", stdin=second)

        def refused() -> dict[str, tuple[str, str, str]] | None:
            conditions = conditions_of(served.get_json("workload", "hello-again", "-n",
                                                     "default"))
            return conditions if conditions.get("Ready", ("",))[0] == "False" else None

        try:
            conditions = wait_for(refused, seconds=60)
        except AssertionError:
            raise AssertionError(daemon.stderr_tail()) from None
        user = f"system:serviceaccount:{ns}:rec-reconciler"
        message = (
            "unable to apply object [default/hello-again-greeting] for resource [greeting] in "
            "supply chain [greeter]: forbidden to patch configmaps 'hello-again-greeting' in "
            "namespace 'default': serviceaccounts \"default\" is forbidden: User "
            f"\"{user}\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in "
            "the namespace \"default\". Grant the reconciler's identity the 'impersonate' verb "
            "on 'serviceaccounts' (a Role, or a ClusterRole for cluster-scoped kinds and lists "
            "across namespaces) and bind it")
        for type_ in ("ResourcesSubmitted", "Ready"):
            assert conditions[type_] == ("False", "TemplateRejectedByAPIServer", message)
        assert served.kubectl("get", "cm", "hello-again-greeting", "-n", "default",
                              check=False).returncode == 1
        assert daemon.stop() == 0, daemon.stderr_tail()
