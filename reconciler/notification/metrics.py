"""The webhook receiver's Prometheus counter, on a registry the caller owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

OUTCOMES = (
    "accepted",            # 200: verified; every matching object asked to reconcile
    "ignored",             # 200: verified, but an event the Receiver does not act on (a ping)
    "unauthorized",        # 401: missing or wrong signature or token
    "not_found",           # 404: no Receiver publishes this path
    "method_not_allowed",  # 405: not a POST
    "length_required",     # 411: no Content-Length
    "too_large",           # 413: body over the limit, refused before it is read
    "bad_request",         # 400: malformed request, or an event the Receiver does not accept
    "unavailable",         # 503: Receiver suspended or not Ready
    "failed",              # 500: a matching object could not be asked to reconcile
)


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "reconciler_receiver_requests_total",
            "Webhook receiver requests by outcome (" + ", ".join(OUTCOMES) + ").",
            ["outcome"], registry=registry)
        for outcome in OUTCOMES:
            # Present from the first scrape, so a rate over an outcome is never empty.
            self.requests.labels(outcome=outcome)

    def count(self, outcome: str) -> None:
        self.requests.labels(outcome=outcome).inc()
