"""The one reconcile shape (`engine/reconcile`): the step loop, `reconcile`'s finally, and the one
summarizer for every outcome (success, requeue, stop, each error class, a crash) in both condition
sets, Flux's and Cartographer's."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition
from reconciler.model.errors import BackendError, Rejected, Stalled, Transient, Waiting
from reconciler.model.limits import DeadlineExceeded
from reconciler.runtime.controller import RECONCILE_ERROR, RECONCILE_TIMEOUT
from reconciler.runtime.reconcile import (
    DONE,
    PROGRESSING,
    PROGRESSING_WITH_RETRY,
    STOP,
    Action,
    CartographerConditions,
    Conditions,
    Ending,
    FluxConditions,
    Result,
    Step,
    keep_last_good,
    reconcile,
    render,
    requeue,
    run_steps,
    summarize,
)

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"

FLUX = FluxConditions(negative=("FetchFailed", "ArtifactOutdated"),
                      positive=("SourceVerified", "ArtifactInStorage"),
                      retry_message="retrying after a failed reconcile")


def _cartographer_ready(conditions: Any) -> Condition:
    for wanted in (FALSE, UNKNOWN):
        for c in conditions:
            if c.status == wanted:
                return Condition("Ready", wanted, c.reason, c.message)
    return Condition("Ready", TRUE, "Ready")


CARTO = CartographerConditions(order=("SupplyChainReady", "ResourcesSubmitted",
                                      "ResourcesHealthy"),
                               ready_of=_cartographer_ready,
                               failure_types=("ResourcesSubmitted",))


# --- the loop ----------------------------------------------------------------------------------


def _recorder(log: list[str], name: str, result: Result | BaseException) -> Step[list[str]]:
    def step(run: list[str]) -> Result:
        log.append(name)
        if isinstance(result, BaseException):
            raise result
        return result
    return step


@pytest.mark.parametrize(
    ("results", "ran", "ended"),
    [
        ([DONE, DONE, DONE], ["a", "b", "c"], DONE),
        ([DONE, STOP, DONE], ["a", "b"], STOP),
        ([requeue(5), DONE, DONE], ["a"], requeue(5)),
        ([DONE, DONE, requeue(1)], ["a", "b", "c"], requeue(1)),
    ],
    ids=["all-done", "stop", "requeue-first", "requeue-last"],
)
def test_run_steps_stops_at_the_first_step_that_is_not_done(
    results: list[Result], ran: list[str], ended: Result
) -> None:
    log: list[str] = []
    steps = [_recorder(log, n, r) for n, r in zip("abc", results, strict=True)]
    assert run_steps(steps, log) == ended
    assert log == ran


def test_run_steps_checks_between_steps() -> None:
    log: list[str] = []
    steps = [_recorder(log, n, DONE) for n in "ab"]
    assert run_steps(steps, log, between=lambda: log.append("check")) == DONE
    assert log == ["check", "a", "check", "b"]


@pytest.mark.parametrize("error", [Transient("Down", "down"), KeyError("bug"),
                                   KeyboardInterrupt()],
                         ids=["transient", "crash", "interrupt"])
def test_reconcile_finishes_with_the_error_and_raises_it(error: BaseException) -> None:
    log: list[str] = []
    endings: list[Ending] = []
    steps = [_recorder(log, "a", DONE), _recorder(log, "b", error), _recorder(log, "c", DONE)]
    with pytest.raises(type(error)):
        reconcile(log, steps, lambda _run, ending: endings.append(ending))
    assert log == ["a", "b"]
    assert [e.error for e in endings] == [error]
    assert endings[0].failure is not None and endings[0].failure.reason
    assert not endings[0].succeeded


def test_reconcile_finishes_with_the_result() -> None:
    endings: list[Ending] = []
    result = reconcile([], [lambda _run: requeue(3)], lambda _run, e: endings.append(e))
    assert result == requeue(3)
    assert endings == [Ending(requeue(3))]
    assert endings[0].action is Action.REQUEUE and not endings[0].succeeded


# --- Flux's summarizer -------------------------------------------------------------------------


def _types(conditions: list[Condition]) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in conditions}


def test_flux_success_is_ready_with_the_success_message_and_clears_failures() -> None:
    conditions = Conditions([Condition("FetchFailed", TRUE, "GitOperationFailed", "old"),
                             Condition("Reconciling", TRUE, PROGRESSING, "new generation"),
                             Condition("ArtifactInStorage", TRUE, "Succeeded", "stored")])
    out = _types(summarize(conditions, Ending(DONE), FLUX, "stored artifact for 'main@sha1:a'"))
    assert out == {"Ready": (TRUE, "Succeeded", "stored artifact for 'main@sha1:a'"),
                   "ArtifactInStorage": (TRUE, "Succeeded", "stored")}


def test_flux_requeue_is_reconciling_and_ready_mirrors_the_most_important_failure() -> None:
    conditions = Conditions([Condition("ArtifactInStorage", FALSE, "NoArtifact", "none"),
                             Condition("ArtifactOutdated", TRUE, "NewRevision", "rev b")])
    out = _types(summarize(conditions, Ending(requeue(5)), FLUX))
    assert out["Ready"] == (FALSE, "NewRevision", "rev b")
    assert out["Reconciling"] == (TRUE, PROGRESSING, "reconciliation in progress")


def test_flux_requeue_without_a_failure_is_unknown_progressing() -> None:
    conditions = Conditions([Condition("Reconciling", TRUE, PROGRESSING, "waiting for a wave")])
    out = _types(summarize(conditions, Ending(requeue(5)), FLUX))
    assert out["Ready"] == (UNKNOWN, PROGRESSING, "waiting for a wave")
    assert "Stalled" not in out


def test_flux_stop_mirrors_what_the_step_said_and_is_not_reconciling() -> None:
    conditions = Conditions([Condition("Reconciling", TRUE, PROGRESSING, "x"),
                             Condition("Healthy", FALSE, "HealthCheckFailed", "stale"),
                             Condition("Ready", FALSE, "BuildFailed", "bad kustomization")])
    rules = FluxConditions(negative=(), positive=("Healthy",))
    out = _types(summarize(conditions, Ending(STOP), rules))
    assert out["Ready"] == (FALSE, "BuildFailed", "bad kustomization")
    assert "Reconciling" not in out and "Stalled" not in out


def test_flux_stop_without_a_reason_is_never_ready() -> None:
    out = _types(summarize(Conditions(), Ending(STOP), FLUX))
    assert out["Ready"][0] == FALSE and out["Ready"][1]


@pytest.mark.parametrize(
    ("error", "ready", "reconciling"),
    [
        (Stalled("InvalidURL", "url is not valid"), (FALSE, "InvalidURL", "url is not valid"),
         None),
        (Waiting("DependencyNotReady", "waiting for b", retry_after=7),
         (UNKNOWN, "DependencyNotReady", "waiting for b"), PROGRESSING),
        (Transient("ArtifactUnavailable", "storage is not reachable"),
         (FALSE, "ArtifactUnavailable", "storage is not reachable"), PROGRESSING_WITH_RETRY),
        (DeadlineExceeded(30, "applying ConfigMap a"),
         (FALSE, RECONCILE_TIMEOUT, None), PROGRESSING_WITH_RETRY),
        (Rejected("the server rejected ConfigMap a"),
         (FALSE, "Rejected", "the server rejected ConfigMap a"), PROGRESSING_WITH_RETRY),
        (BackendError("connection refused"),
         (FALSE, "BackendError", "connection refused"), PROGRESSING_WITH_RETRY),
        (KeyError("boom"), (FALSE, RECONCILE_ERROR, None), PROGRESSING_WITH_RETRY),
    ],
    ids=["stalled", "waiting", "transient", "deadline", "rejected", "backend", "crash"],
)
def test_flux_errors(error: BaseException, ready: tuple[str, str, str | None],
                     reconciling: str | None) -> None:
    previous_ready = Condition("ArtifactInStorage", TRUE, "Succeeded", "stored 'main@sha1:a'")
    out = _types(summarize(Conditions([previous_ready]), Ending(None, error), FLUX))
    status, reason, message = out["Ready"]
    assert (status, reason) == ready[:2]
    assert message == ready[2] if ready[2] is not None else message
    if reconciling is None:
        assert "Reconciling" not in out
        assert out["Stalled"] == (TRUE, ready[1], ready[2])
    else:
        assert out["Reconciling"][:2] == (TRUE, reconciling)
        assert "Stalled" not in out
    # The last good artifact is still in storage and still said so.
    assert out["ArtifactInStorage"] == (TRUE, "Succeeded", "stored 'main@sha1:a'")


def test_flux_retry_keeps_the_progress_message_a_step_set() -> None:
    conditions = Conditions([Condition("Reconciling", TRUE, PROGRESSING,
                                       "building artifact: new upstream revision 'b'")])
    out = _types(summarize(conditions, Ending(None, Transient("X", "failed")), FLUX))
    assert out["Reconciling"] == (TRUE, PROGRESSING_WITH_RETRY,
                                  "building artifact: new upstream revision 'b'")
    default = _types(summarize(Conditions(), Ending(None, Transient("X", "failed")), FLUX))
    assert default["Reconciling"][2] == "retrying after a failed reconcile"


def test_a_crash_is_never_ready_nor_unknown_without_a_reason() -> None:
    for rules in (FLUX, CARTO):
        ready = summarize(Conditions(), Ending(None, RuntimeError()), rules)
        found = next(c for c in ready if c.type == "Ready")
        assert found.status == FALSE and found.reason == RECONCILE_ERROR and found.message


# --- Cartographer's summarizer -----------------------------------------------------------------


def _carto_steps() -> Conditions:
    return Conditions([Condition("SupplyChainReady", TRUE, "Ready"),
                       Condition("ResourcesSubmitted", TRUE, "ResourceSubmissionComplete"),
                       Condition("ResourcesHealthy", UNKNOWN, "HealthyConditionRule")])


def test_cartographer_success_uses_its_own_rule_and_order() -> None:
    out = summarize(_carto_steps(), Ending(DONE), CARTO)
    assert [c.type for c in out] == ["SupplyChainReady", "ResourcesSubmitted",
                                     "ResourcesHealthy", "Ready"]
    assert (out[-1].status, out[-1].reason) == (UNKNOWN, "HealthyConditionRule")


def test_cartographer_stop_has_no_flux_conditions() -> None:
    stopped = Conditions([Condition("SupplyChainReady", FALSE, "SupplyChainNotFound", "none")])
    out = summarize(stopped, Ending(STOP), CARTO)
    assert [(c.type, c.status, c.reason) for c in out] == [
        ("SupplyChainReady", FALSE, "SupplyChainNotFound"),
        ("Ready", FALSE, "SupplyChainNotFound")]


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [(Stalled("TemplateRejected", "no"), FALSE, "TemplateRejected"),
     (Waiting("NotYet", "soon"), UNKNOWN, "NotYet"),
     (Transient("SourceUnavailable", "connection reset"), FALSE, "SourceUnavailable"),
     (DeadlineExceeded(30, "realizing"), FALSE, RECONCILE_TIMEOUT),
     (BackendError("refused"), FALSE, "BackendError"),
     (ValueError("bug"), FALSE, RECONCILE_ERROR)],
    ids=["stalled", "waiting", "transient", "deadline", "backend", "crash"],
)
def test_cartographer_error_is_reported_on_resources_submitted_and_ready(
    error: BaseException, status: str, reason: str
) -> None:
    conditions = Conditions([Condition("SupplyChainReady", TRUE, "Ready")])
    out = summarize(conditions, Ending(None, error), CARTO)
    assert [(c.type, c.status, c.reason) for c in out] == [
        ("SupplyChainReady", TRUE, "Ready"), ("ResourcesSubmitted", status, reason),
        ("Ready", status, reason)]
    assert all(c.message for c in out[1:])


def test_cartographer_error_after_a_broken_chain_is_on_ready_only() -> None:
    conditions = Conditions([Condition("SupplyChainReady", FALSE, "TemplatesNotFound", "x")])
    out = summarize(conditions, Ending(None, Transient("Down", "down")), CARTO)
    assert [c.type for c in out] == ["SupplyChainReady", "Ready"]


# --- rendering and the last good fields ----------------------------------------------------------


def _previous() -> list[dict[str, Any]]:
    return [Condition("SupplyChainReady", TRUE, "Ready").to_dict(NOW),
            Condition("ResourcesSubmitted", TRUE, "ResourceSubmissionComplete").to_dict(NOW),
            Condition("ResourcesHealthy", TRUE, "HealthyConditionRule").to_dict(NOW),
            Condition("Ready", TRUE, "Ready").to_dict(NOW)]


def test_a_ready_workload_that_fails_keeps_its_places_and_says_why() -> None:
    error = Transient("SourceUnavailable", "connection reset")
    ending = Ending(None, error)
    current = summarize(Conditions([Condition("SupplyChainReady", TRUE, "Ready")]), ending, CARTO)
    rendered = render(_previous(), current, CARTO, ending, LATER)
    assert [(c["type"], c["status"], c["reason"]) for c in rendered] == [
        ("SupplyChainReady", TRUE, "Ready"),
        ("ResourcesSubmitted", FALSE, "SourceUnavailable"),
        ("ResourcesHealthy", TRUE, "HealthyConditionRule"),
        ("Ready", FALSE, "SourceUnavailable")]
    assert rendered[0]["lastTransitionTime"] == NOW
    assert rendered[3]["lastTransitionTime"] == LATER and rendered[3]["message"]


def test_flux_render_keeps_conditions_of_other_writers_and_drops_its_own_stale_ones() -> None:
    previous = [Condition("FetchFailed", TRUE, "GitOperationFailed", "x").to_dict(NOW),
                Condition("Ready", FALSE, "GitOperationFailed", "x").to_dict(NOW),
                Condition("example.com/Audited", TRUE, "Audited").to_dict(NOW)]
    ending = Ending(DONE)
    current = summarize(Conditions(), ending, FLUX, "stored")
    rendered = render(previous, current, FLUX, ending, LATER, generation=3)
    assert [(c["type"], c["status"]) for c in rendered] == [
        ("Ready", TRUE), ("example.com/Audited", TRUE)]
    assert rendered[0]["observedGeneration"] == 3


@pytest.mark.parametrize(
    ("ending", "kept"),
    [(Ending(DONE), False), (Ending(requeue(5)), True), (Ending(STOP), True),
     (Ending(None, Transient("ArtifactUnavailable", "x")), True),
     (Ending(None, RuntimeError("bug")), True)],
    ids=["success", "requeue", "stop", "transient", "crash"],
)
def test_only_a_success_changes_the_last_good_fields(ending: Ending, kept: bool) -> None:
    previous = {"lastAppliedRevision": "main@sha1:a", "inventory": {"entries": []}}
    status = {"lastAppliedRevision": "", "lastAppliedDigest": "", "inventory": {"entries": [1]}}
    out = keep_last_good(dict(status), previous, ending,
                         ("lastAppliedRevision", "lastAppliedDigest"))
    if kept:
        assert out == {"lastAppliedRevision": "main@sha1:a", "inventory": {"entries": [1]}}
    else:
        assert out == status
