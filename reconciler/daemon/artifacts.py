"""The artifact store as the daemon's HTTP server sees it: every lookup counted by outcome."""

from __future__ import annotations

from pathlib import Path

from reconciler.observability.metrics import ReconcilerMetrics
from reconciler.sources.artifacts import ArtifactNotFoundError, ArtifactPathError, ArtifactStore


class CountingArtifactStore(ArtifactStore):
    """Counts `open` by outcome in `reconciler_artifact_requests_total`.

    Only the server's own instance is a `CountingArtifactStore`, so the count is that of HTTP
    requests (GET and HEAD) and not of the controllers' own lookups in the same directory.
    """

    def __init__(self, root: Path, metrics: ReconcilerMetrics) -> None:
        # The server never builds URLs: any base URL will do.
        super().__init__(root, "http://unused.invalid")
        self._requests = metrics.artifact_requests

    def open(self, path: str) -> Path:
        try:
            found = super().open(path)
        except ArtifactPathError:
            self._requests.labels(outcome="forbidden").inc()
            raise
        except ArtifactNotFoundError:
            self._requests.labels(outcome="not_found").inc()
            raise
        self._requests.labels(outcome="served").inc()
        return found
