"""How the simulated kpack divides its steps between an Image and its Builds: the Image starts
the Build it creates (its pod, `Succeeded` Unknown) in the same reconcile, in the order the
two kpack controllers would write, and a Build leaves its Image to the Image's own reconcile,
which the runner offers because it lists the Image's Builds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.engine.runner import RoundDriver, run_until_settled
from reconciler.model.objects import Obj
from simulator.ecosystem import ImageBuilder
from simulator.environment import SimulatedEnvironment
from tests.unit.ecosystem_harness import KNATIVE, KPACK, NS, Ecosystem, condition, image

APP = {"app.py": "print('hello')\n"}


def test_the_image_starts_the_build_it_creates_after_saying_it_is_building(
        tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", eco.artifact(APP)))
    writes: list[tuple[str, str]] = []

    def record(type_: str, obj: Obj, before: Obj | None) -> None:
        writes.append((type_, f"{obj['kind']}/{obj['metadata']['name']}"))

    eco.cluster.add_listener(record)
    assert eco.kpack.reconcile(eco.get(KPACK, "Image", "web")) is None
    build = eco.get(KPACK, "Build", "web-build-1")
    assert build["status"]["podName"] == "web-build-1-build-pod"
    assert condition(build, "Succeeded")["status"] == "Unknown"
    ready = condition(eco.get(KPACK, "Image", "web"), "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Building")
    assert writes == [("ADDED", "Build/web-build-1"), ("MODIFIED", "Image/web"),
                      ("MODIFIED", "Build/web-build-1")]

    # The Build's own first reconcile finds it started: nothing to write, done in 30 s.
    revision = eco.cluster.revision
    assert eco.kpack.reconcile(build) == 30.0
    assert eco.cluster.revision == revision


def test_a_finished_build_leaves_its_image_to_the_images_reconcile(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", eco.artifact(APP)))
    eco.kpack.reconcile(eco.get(KPACK, "Image", "web"))
    eco.clock.advance(30.0)
    before = eco.get(KPACK, "Image", "web")
    assert eco.kpack.reconcile(eco.get(KPACK, "Build", "web-build-1")) is None
    assert condition(eco.get(KPACK, "Build", "web-build-1"), "Succeeded")["status"] == "True"
    assert eco.get(KPACK, "Image", "web") == before

    eco.kpack.reconcile(before)
    img = eco.get(KPACK, "Image", "web")
    assert condition(img, "Ready")["status"] == "True"
    assert img["status"]["latestImage"] == eco.get(KPACK, "Build", "web-build-1")["status"][
        "latestImage"]


def _ready_image(env: SimulatedEnvironment) -> dict[str, Any] | None:
    found = env.cluster.get(KPACK, "Image", NS, "web")
    conditions = ((found or {}).get("status") or {}).get("conditions") or []
    return found if any(c["type"] == "Ready" and c["status"] == "True"
                        for c in conditions) else None


def test_the_runner_brings_the_image_to_its_finished_build() -> None:
    env = SimulatedEnvironment()
    env.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    env.cluster.apply({
        "apiVersion": KPACK, "kind": "Image", "metadata": {"name": "web", "namespace": NS},
        "spec": {"tag": "registry.example.com/apps/web",
                 "source": {"git": {"url": "https://git.example.com/web.git",
                                    "revision": "0" * 40}}}})
    report = run_until_settled(env, env.controllers, lambda: _ready_image(env) is not None,
                               budget_seconds=300.0)
    assert report.settled, report.reason
    assert report.virtual_seconds == 30.0
    img = _ready_image(env)
    assert img is not None
    assert (img["status"]["latestBuildRef"], img["status"]["buildCounter"]) == ("web-build-1", 1)
    build = env.cluster.get(KPACK, "Build", NS, "web-build-1")
    assert build is not None and img["status"]["latestImage"] == build["status"]["latestImage"]


class Offers:
    """The simulated kpack, noting the name of every object it is offered."""

    def __init__(self, kpack: ImageBuilder) -> None:
        self.kpack, self.name = kpack, kpack.name
        self.seen: list[str] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return self.kpack.watches()

    def reconcile(self, obj: Obj) -> float | None:
        self.seen.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return self.kpack.reconcile(obj)


def test_a_commit_does_not_offer_the_builds_of_earlier_commits_again() -> None:
    # A finished Build reads nothing, so its Image's next Builds do not wake it: what a commit
    # costs does not grow with the Build history kept.
    env = SimulatedEnvironment()
    env.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kpack = next(c for c in env.controllers if isinstance(c, ImageBuilder))
    offers = Offers(kpack)
    driver = RoundDriver(env, [offers])

    def commit(revision: int) -> None:
        env.cluster.apply({
            "apiVersion": KPACK, "kind": "Image", "metadata": {"name": "web", "namespace": NS},
            "spec": {"tag": "registry.example.com/apps/web",
                     "source": {"git": {"url": "https://git.example.com/web.git",
                                        "revision": f"{revision:040x}"}}}})
        offers.seen.clear()
        for _ in range(20):
            assert driver.run_to_fixed_point(50).fixed_point
            wake = driver.next_wakeup()
            if wake is None:
                return
            env.advance(max(wake, 0.001))
        raise AssertionError("kpack did not settle")

    for revision in range(1, 5):
        commit(revision)
    assert {o for o in offers.seen if o.startswith("Build/")} == {"Build/web-build-4"}
    img = env.cluster.get(KPACK, "Image", NS, "web")
    assert img is not None and img["status"]["latestBuildRef"] == "web-build-4"
    assert condition(img, "Ready")["status"] == "True"


class _WithoutViews:
    """The cluster without its read-only `views`: lists come back as copies."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        if name == "views":
            raise AttributeError(name)
        return getattr(self._cluster, name)


def test_builds_and_revisions_read_through_views_or_copies_give_the_same_writes(
        tmp_path: Path) -> None:
    """The simulated kpack and Knative read an Image's Builds and a Service's Revisions through
    the cluster's read-only views (no copies); with a backend that has none they read copies.
    Build after build and revision after revision, through the history limits (pruning), both
    write the same objects: statuses, owner references, labels and annotations."""
    worlds = []
    for views in (True, False):
        eco = Ecosystem(tmp_path / str(views))
        if not views:
            eco.kpack.backend = eco.knative.backend = _WithoutViews(eco.cluster)
        for i in range(3):
            url = eco.artifact({"requirements.txt": "flask\n", "VERSION": f"{i}\n"})
            eco.apply(image("web", url, successBuildHistoryLimit=1,
                            build={"env": [{"name": "N", "value": str(i)}]}))
            eco.apply({"apiVersion": KNATIVE, "kind": "Service", "metadata": {"name": "web"},
                       "spec": {"template": {
                           "metadata": {"labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "w", "image": f"web:{i}"}]}}}})
            eco.settle()
        worlds.append({(o["kind"], o["metadata"]["name"]): _without_uids(o)
                       for o in eco.cluster.all_objects()
                       if o["kind"] in ("Image", "Build", "Service", "Revision")})
    with_views, with_copies = worlds
    assert ("Build", "web-build-3") in with_views and ("Revision", "web-00003") in with_views
    assert ("Build", "web-build-1") not in with_views  # pruned: successBuildHistoryLimit 1
    assert with_views == with_copies


def _without_uids(obj: dict[str, Any]) -> dict[str, Any]:
    """Without the uids (owner references' too): random in each world."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "uid"}
    meta["ownerReferences"] = [{k: v for k, v in ref.items() if k != "uid"}
                               for ref in meta.get("ownerReferences", [])]
    return {**obj, "metadata": meta}
