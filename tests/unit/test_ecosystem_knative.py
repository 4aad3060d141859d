"""The simulated Knative Serving: a Revision per template, traffic to the latest ready one
(the previous keeps serving while a new one rolls out), the URL and Ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.ecosystem_harness import KNATIVE, Ecosystem, condition


def _service(image: str, **template_meta: Any) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": {"containers": [{"name": "workload", "image": image}]}}
    if template_meta:
        template["metadata"] = template_meta
    return {"apiVersion": KNATIVE, "kind": "Service", "metadata": {"name": "web"},
            "spec": {"template": template}}


def test_first_revision_rolls_out_and_takes_all_traffic(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_service("registry.example.com/web@sha256:" + "1" * 64))
    eco.step()
    svc = eco.get(KNATIVE, "Service", "web")
    assert condition(svc, "Ready")["status"] == "Unknown"
    assert svc["status"]["latestCreatedRevisionName"] == "web-00001"
    assert "latestReadyRevisionName" not in svc["status"]
    assert "traffic" not in svc["status"]

    assert eco.settle() == 5.0
    svc = eco.get(KNATIVE, "Service", "web")
    assert condition(svc, "Ready")["status"] == "True"
    assert svc["status"]["url"] == "http://web.apps.example.com"
    assert svc["status"]["latestReadyRevisionName"] == "web-00001"
    assert svc["status"]["traffic"] == [
        {"revisionName": "web-00001", "latestRevision": True, "percent": 100}]
    revision = eco.get(KNATIVE, "Revision", "web-00001")
    assert condition(revision, "Ready")["status"] == "True"
    assert revision["spec"]["containers"][0]["image"].endswith("1" * 64)
    assert revision["metadata"]["labels"]["serving.knative.dev/service"] == "web"
    assert revision["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]


def test_a_new_image_is_a_new_revision_and_traffic_moves_once_it_is_ready(
        tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_service("registry.example.com/web@sha256:" + "1" * 64))
    eco.settle()
    eco.apply(_service("registry.example.com/web@sha256:" + "2" * 64))
    eco.step()
    svc = eco.get(KNATIVE, "Service", "web")
    # Rolling out: the new revision exists, the old one still serves.
    assert svc["status"]["latestCreatedRevisionName"] == "web-00002"
    assert svc["status"]["latestReadyRevisionName"] == "web-00001"
    assert svc["status"]["traffic"][0]["revisionName"] == "web-00001"
    assert condition(svc, "Ready")["status"] == "Unknown"

    eco.settle()
    svc = eco.get(KNATIVE, "Service", "web")
    assert svc["status"]["latestReadyRevisionName"] == "web-00002"
    assert svc["status"]["traffic"] == [
        {"revisionName": "web-00002", "latestRevision": True, "percent": 100}]
    assert condition(svc, "Ready")["status"] == "True"
    assert eco.names(KNATIVE, "Revision") == ["web-00001", "web-00002"]


def test_a_change_outside_the_template_makes_no_revision(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_service("registry.example.com/web@sha256:" + "1" * 64))
    eco.settle()
    changed = _service("registry.example.com/web@sha256:" + "1" * 64)
    changed["metadata"]["labels"] = {"team": "blue"}
    changed["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]
    eco.apply(changed)
    eco.settle()
    assert eco.names(KNATIVE, "Revision") == ["web-00001"]
    # A template annotation is part of the template: a new revision.
    eco.apply(_service("registry.example.com/web@sha256:" + "1" * 64,
                       annotations={"autoscaling.knative.dev/maxScale": "3"}))
    eco.settle()
    assert eco.names(KNATIVE, "Revision") == ["web-00001", "web-00002"]


def test_old_revisions_are_bounded(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    for i in range(13):
        eco.apply(_service(f"registry.example.com/web@sha256:{i:064x}"))
        eco.settle()
    names = eco.names(KNATIVE, "Revision")
    assert names == [f"web-{n:05d}" for n in range(4, 14)]
    assert eco.get(KNATIVE, "Service", "web")["status"]["latestReadyRevisionName"] == "web-00013"


def test_a_service_being_deleted_gets_no_new_revision(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    held = _service("registry.example.com/web@sha256:" + "1" * 64)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    eco.apply(held)
    eco.settle()
    _, gone = eco.cluster.delete_object(KNATIVE, "Service", "apps", "web")
    assert not gone
    changed = _service("registry.example.com/web@sha256:" + "2" * 64)
    changed["metadata"]["finalizers"] = ["example.com/hold"]
    eco.apply(changed)
    eco.settle()
    assert eco.names(KNATIVE, "Revision") == ["web-00001"]



def _settled_revision(eco: Ecosystem) -> dict[str, Any]:
    eco.apply(_service("registry.example.com/web@sha256:" + "1" * 64))
    eco.settle()
    revision = eco.get(KNATIVE, "Revision", "web-00001")
    assert revision["status"]["observedGeneration"] == revision["metadata"]["generation"]
    assert condition(revision, "Ready")["status"] == "True"
    return revision


def test_a_revision_edited_in_place_shows_the_generation_it_runs(tmp_path: Path) -> None:
    """A settled Revision whose conditions already hold is still written when its generation
    moved (someone edited it in place, as `kubectl edit` on the served cluster can)."""
    eco = Ecosystem(tmp_path)
    revision = _settled_revision(eco)
    edited = eco.cluster.apply(
        {"apiVersion": KNATIVE, "kind": "Revision",
         "metadata": {"name": "web-00001", "namespace": revision["metadata"]["namespace"]},
         "spec": {"timeoutSeconds": 30}},
        field_manager="someone")
    assert edited["metadata"]["generation"] > revision["metadata"]["generation"]
    eco.settle()
    revision = eco.get(KNATIVE, "Revision", "web-00001")
    assert revision["status"]["observedGeneration"] == edited["metadata"]["generation"]
    assert condition(revision, "Ready")["status"] == "True"


def test_a_revisions_container_status_written_by_someone_else_is_put_right(
        tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    revision = _settled_revision(eco)
    running = revision["status"]["containerStatuses"]
    revision["status"]["containerStatuses"] = [{"name": "workload", "imageDigest": "wrong"}]
    eco.cluster.update_status(revision)
    eco.settle()
    assert eco.get(KNATIVE, "Revision", "web-00001")["status"]["containerStatuses"] == running
