"""Input manifests several test modules write: one definition each, so they cannot drift."""

from __future__ import annotations

from typing import Any


def git_kustomization(url: str, *, wait: bool | None = None) -> str:
    """A GitRepository `config` on `url` (branch main) and a Kustomization `app` deploying its
    `./deploy` folder into `default` with prune, both in `default`."""
    wait_line = "" if wait is None else f"  wait: {str(wait).lower()}\n"
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: config
  namespace: default
spec:
  url: {url}
  interval: 1m
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: app
  namespace: default
spec:
  interval: 10m
  path: ./deploy
  prune: true
{wait_line}  targetNamespace: default
  sourceRef:
    kind: GitRepository
    name: config
"""


SETTINGS_TEMPLATE = """template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$-settings
    data:
      value: $(workload.spec.params[0].value)$"""
"""The `settings` template's body: a ConfigMap `<workload>-settings` holding the Workload's
first param."""


def settings_template(kind: str = "ClusterTemplate", body: str = SETTINGS_TEMPLATE) -> str:
    """A template `settings` of `kind` (a ClusterConfigTemplate exposes `.data`) with `body`
    (the `template:` or `jinja2:` entry of its spec)."""
    config_path = "  configPath: .data\n" if kind == "ClusterConfigTemplate" else ""
    return f"""\
apiVersion: carto.run/v1alpha1
kind: {kind}
metadata:
  name: settings
spec:
{config_path}  {body}
"""


def settings_chain(kind: str = "ClusterTemplate", body: str = SETTINGS_TEMPLATE) -> str:
    """`settings_template(kind, body)` and a ClusterSupplyChain `chain` that stamps it for the
    Workloads labelled `app.example.com/kind: settings`."""
    return settings_template(kind, body) + f"""\
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: chain
spec:
  selector:
    app.example.com/kind: settings
  resources:
    - name: settings
      templateRef:
        kind: {kind}
        name: settings
"""


def greeter_chain(stamped_name: str = "$(workload.metadata.name)$-greeting") -> str:
    """The greeter supply chain of `examples/greeter/`: a ClusterTemplate `greeting` stamping a
    ConfigMap named `stamped_name`, selected by `app.example.com/type: greeter`."""
    return f"""\
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: greeting
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {stamped_name}
    data:
      greeting: hello $(workload.metadata.name)$
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: greeter
spec:
  selector:
    app.example.com/type: greeter
  resources:
    - name: greeting
      templateRef:
        kind: ClusterTemplate
        name: greeting
"""


def source_tester_chain(workload_url: str) -> str:
    """A ClusterSourceTemplate `tester` stamping a Runnable `<workload>-tests` (service account
    `tester`, ClusterRunTemplate `tekton-source-tester`, inputs source-url and source-revision),
    the ClusterSupplyChain `tested` running a ClusterSourceTemplate `source` then `tester`, and
    the Workload `app` on Git `workload_url` (branch main). The caller supplies `source`, the
    run template and the ServiceAccount."""
    return """\
apiVersion: carto.run/v1alpha1
kind: ClusterSourceTemplate
metadata: {name: tester}
spec:
  urlPath: status.outputs.url
  revisionPath: status.outputs.revision
  template:
    apiVersion: carto.run/v1alpha1
    kind: Runnable
    metadata: {name: $(workload.metadata.name)$-tests}
    spec:
      serviceAccountName: tester
      runTemplateRef: {name: tekton-source-tester}
      inputs:
        source-url: $(source.url)$
        source-revision: $(source.revision)$
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata: {name: tested}
spec:
  selector: {app.example.com/type: tested}
  resources:
    - name: source
      templateRef: {kind: ClusterSourceTemplate, name: source}
    - name: tests
      templateRef: {kind: ClusterSourceTemplate, name: tester}
      sources: [{resource: source, name: source}]
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app
  labels: {app.example.com/type: tested}
spec:
  serviceAccountName: tester
  source: {git: {url: "__WORKLOAD_URL__", ref: {branch: main}}}
""".replace("__WORKLOAD_URL__", workload_url)


def greeter_workload(name: str, namespace: str, **labels: str) -> str:
    """A Workload `namespace/name` with an empty spec that the greeter supply chain selects
    (`app.example.com/type: greeter`), with the extra `labels`."""
    extra = "".join(f"    {key}: {value}\n" for key, value in labels.items())
    return f"""\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    app.example.com/type: greeter
{extra}spec: {{}}
"""


def widget_crd(group: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A namespaced `Widget` kind of `group` with a status subresource that keeps any field:
    a custom resource the cluster keeps a generation for."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}", "labels": labels or {}},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                           "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}}
