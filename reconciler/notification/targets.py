"""The objects a Receiver's `spec.resources` select, as Flux resolves them.

- The namespace is the entry's `namespace`, else the Receiver's. Flux allows another namespace
  unless started with `--no-cross-namespace-refs`; `no_cross_namespace_refs` is that switch.
- `name: "*"` selects every object of the kind with all of `matchLabels` (required then); none
  found is not an error. Any other name selects that object (`matchLabels` ignored); a missing
  one is an error.
- Without `apiVersion`, Flux's default version of the kind is used; kinds without one must say.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.backends.base import Backend
from reconciler.model.errors import ReconcilerError
from reconciler.notification.receiver import DEFAULT_API_VERSIONS, Receiver, ResourceRef


class TargetError(ReconcilerError):
    """A resource entry that cannot be resolved; the request answers 500, as Flux's does."""


@dataclass(frozen=True, order=True)
class Target:
    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def resolve_targets(backend: Backend, receiver: Receiver, ref: ResourceRef, *,
                    no_cross_namespace_refs: bool = False) -> list[Target]:
    namespace = ref.namespace or receiver.namespace
    if no_cross_namespace_refs and namespace != receiver.namespace:
        raise TargetError(f"can't access '{ref.kind}/{namespace}/{ref.name}', cross-namespace "
                          "references have been blocked")
    api_version = ref.api_version or DEFAULT_API_VERSIONS.get(ref.kind, "")
    if not api_version:
        raise TargetError(f"apiVersion must be specified for kind '{ref.kind}'")
    if ref.name == "*":
        if not ref.match_labels:
            raise TargetError("matchLabels field not set when using wildcard '*' as name")
        try:
            found = backend.list(api_version, ref.kind, namespace, ref.match_labels)
        except ReconcilerError as exc:
            raise TargetError(f"failed listing resources in namespace {namespace!r} by matching "
                              f"labels {dict(ref.match_labels)}: {exc}") from None
        return sorted(Target(api_version, ref.kind, namespace, str(o["metadata"]["name"]))
                      for o in found)
    try:
        live = backend.get(api_version, ref.kind, namespace, ref.name)
    except ReconcilerError as exc:
        raise TargetError(f"unable to read {ref.kind} '{namespace}/{ref.name}' error: {exc}") \
            from None
    if live is None:
        raise TargetError(f"unable to read {ref.kind} '{namespace}/{ref.name}' error: "
                          f"{ref.kind} \"{ref.name}\" not found")
    return [Target(api_version, ref.kind, namespace, ref.name)]
