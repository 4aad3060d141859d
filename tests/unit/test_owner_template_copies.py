"""The owner controller keeps the copy of each template it read last and hands it out again
while the template's resourceVersion is unchanged: a reconcile renders from it without copying
the template again, sees an edited template at once, and never changes the kept copy."""

from __future__ import annotations

from pathlib import Path

from reconciler.chains.blueprint import CARTO_API
from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.loader import load_paths, load_text
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment

CHAIN = Path(__file__).resolve().parents[2] / "examples" / "greeter" / "00-supply-chain.yaml"
GREETER = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: hello-{i}
  namespace: default
  labels:
    app.example.com/type: greeter
spec: {{}}
"""


def _configmap(env: SimulatedEnvironment, name: str) -> Obj:
    found = env.cluster.get("v1", "ConfigMap", "default", name)
    assert found is not None
    return found


def test_templates_are_copied_once_per_version_and_never_changed() -> None:
    env = SimulatedEnvironment()
    for loaded in [*load_paths([CHAIN]),
                   *[o for i in range(5) for o in load_text(GREETER.format(i=i), "w.yaml")]]:
        env.cluster.apply(loaded.obj)
    owner = OwnerController(env.cluster, env.clock, WORKLOAD, fast_path=False)
    for _ in range(3):
        for w in env.cluster.list(CARTO_API, "Workload"):
            owner.reconcile(w)
    kept = dict(owner._template_copies)
    assert kept, "no template was read"
    for (api_version, kind, _, name), (version, copy) in kept.items():
        live = env.cluster.get(api_version, kind, "", name)
        assert live is not None and copy == live  # rendering left the kept copy as it was
        assert copy["metadata"]["resourceVersion"] == version
    # The same copy object serves every reconcile while nothing changes.
    for w in env.cluster.list(CARTO_API, "Workload"):
        owner.reconcile(w)
    assert all(owner._template_copies[ref][1] is copy for ref, (_, copy) in kept.items())

    # An edited template is read again and used at once.
    (api_version, kind, _, name), (_, copy) = next(iter(kept.items()))
    edited = env.cluster.get(api_version, kind, "", name)
    assert edited is not None
    cm_name = next(iter(_configmap_names(env)))
    before = _configmap(env, cm_name)["data"]
    template = edited["spec"]["template"]
    template["data"] = {k: f"{v}-edited" for k, v in (template.get("data") or {}).items()}
    env.cluster.apply(edited, force=True)
    for w in env.cluster.list(CARTO_API, "Workload"):
        owner.reconcile(w)
    assert owner._template_copies[(api_version, kind, "", name)][1] is not copy
    after = _configmap(env, cm_name)["data"]
    assert after != before and all(str(v).endswith("-edited") for v in after.values())


def _configmap_names(env: SimulatedEnvironment) -> list[str]:
    return [str(c["metadata"]["name"]) for c in env.cluster.list("v1", "ConfigMap", "default")
            if (c["metadata"].get("labels") or {}).get("carto.run/workload-name")]

