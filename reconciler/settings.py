"""Settings as grouped frozen dataclasses, passed in explicitly (never read from globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceSettings:
    artifact_root: Path
    """Where artifacts (tar.gz of fetched revisions) are stored."""
    workdir: Path
    """Where Git clones are cached between polls."""
    artifact_base_url: str = "http://source-controller.reconciler-system.svc.cluster.local./"
    """The URL prefix written into `status.artifact.url`."""


@dataclass(frozen=True)
class SimulateSettings:
    budget_seconds: float = 3600.0
    """Virtual time a `simulate` run may take before it stops waiting."""
    max_rounds: int = 10_000
    """Reconcile rounds without a fixed point before a run is declared runaway."""


@dataclass(frozen=True)
class Settings:
    sources: SourceSettings
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
