"""A Receiver's spec as the product reads it, and its webhook path as Flux computes it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.annotations import REQUESTED_AT_ANNOTATION
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of
from reconciler.model.schema import RECEIVER
from reconciler.sources.gitspec import parse_duration

API_VERSION = RECEIVER.api_version
KIND = RECEIVER.kind
WEBHOOK_PREFIX = "/hook/"
DEFAULT_INTERVAL = 600.0
"""Flux's default `spec.interval` (10m)."""

GENERIC, GENERIC_HMAC, GITHUB, GITLAB = "generic", "generic-hmac", "github", "gitlab"

# Flux's defaults for a resource without apiVersion; other kinds must name theirs.
DEFAULT_API_VERSIONS: Mapping[str, str] = {
    "Bucket": "source.toolkit.fluxcd.io/v1",
    "HelmChart": "source.toolkit.fluxcd.io/v1",
    "HelmRepository": "source.toolkit.fluxcd.io/v1",
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1beta2",
    "ImageRepository": "image.toolkit.fluxcd.io/v1beta2",
}


def webhook_path(token: str, name: str, namespace: str) -> str:
    """`/hook/` + hex sha256 of token, name and namespace concatenated (Flux's GetWebhookPath)."""
    digest = hashlib.sha256((token + name + namespace).encode()).hexdigest()
    return WEBHOOK_PREFIX + digest


class ReceiverSpecError(ValueError):
    """A spec the schema lets through but the controller cannot use (an unparsable interval)."""


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    name: str
    api_version: str = ""
    namespace: str = ""
    match_labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ResourceRef:
        labels = raw.get("matchLabels")
        return cls(
            kind=str(raw.get("kind") or ""),
            name=str(raw.get("name") or ""),
            api_version=str(raw.get("apiVersion") or ""),
            namespace=str(raw.get("namespace") or ""),
            match_labels={str(k): str(v) for k, v in labels.items()}
            if isinstance(labels, Mapping) else {},
        )


@dataclass(frozen=True)
class Receiver:
    namespace: str
    name: str
    generation: int
    type: str
    events: tuple[str, ...]
    resources: tuple[ResourceRef, ...]
    secret_name: str
    interval_text: str
    suspend: bool
    requested_at: str

    @classmethod
    def parse(cls, obj: Obj) -> Receiver:
        spec = spec_of(obj)
        m = meta(obj)
        for key in ("events", "resources"):
            # Found by fuzzing: a value that is not a list raised TypeError (or, for a string,
            # was read letter by letter).
            if spec.get(key) is not None and not isinstance(spec.get(key), list):
                raise ReceiverSpecError(f"spec.{key} must be a list")
        annotations = m.get("annotations")
        secret_ref = spec.get("secretRef")
        return cls(
            namespace=namespace_of(obj),
            name=name_of(obj),
            generation=int(m.get("generation") or 0),
            type=str(spec.get("type") or ""),
            events=tuple(str(e) for e in spec.get("events") or ()),
            resources=tuple(ResourceRef.parse(r) for r in spec.get("resources") or ()
                            if isinstance(r, Mapping)),
            secret_name=str(secret_ref.get("name") or "")
            if isinstance(secret_ref, Mapping) else "",
            interval_text=str(spec.get("interval") or ""),
            suspend=bool(spec.get("suspend")),
            requested_at=str(annotations.get(REQUESTED_AT_ANNOTATION) or "")
            if isinstance(annotations, Mapping) else "",
        )

    @property
    def interval(self) -> float:
        if not self.interval_text:
            return DEFAULT_INTERVAL
        try:
            seconds = parse_duration(self.interval_text)
        except ValueError as exc:
            raise ReceiverSpecError(f"spec.interval: {exc}") from None
        if seconds <= 0:
            raise ReceiverSpecError(f"spec.interval: {self.interval_text!r} must be positive")
        return seconds

    def accepts(self, event: str) -> bool:
        """Flux's events filter: empty accepts all; otherwise a case-insensitive match."""
        return not self.events or any(event.casefold() == e.casefold() for e in self.events)


def go_duration(seconds: float) -> str:
    """Whole seconds as Go's Duration.String() writes them: 10m0s, 1h0m0s, 30s."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
