"""Git sources: polling, the content-addressed artifact store and its HTTP server."""

from reconciler.sources.artifacts import (
    Artifact,
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactStore,
)
from reconciler.sources.git import (
    GitAuthenticationError,
    GitRepositoryController,
    GitSourceError,
    GitSpecError,
    SourceEvent,
    SourceResult,
)
from reconciler.sources.server import ArtifactServer, ArtifactServerError

__all__ = [
    "Artifact",
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactPathError",
    "ArtifactServer",
    "ArtifactServerError",
    "ArtifactStore",
    "GitAuthenticationError",
    "GitRepositoryController",
    "GitSourceError",
    "GitSpecError",
    "SourceEvent",
    "SourceResult",
]
