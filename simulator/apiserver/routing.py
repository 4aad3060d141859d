"""Request paths to what they name: group, version, resource, namespace, name, subresource.

The shapes are kube-apiserver's:

    /api | /apis | /apis/GROUP                                        discovery
    /api/v1 | /apis/GROUP/VERSION                                     a resource list
    PREFIX[/watch]/RESOURCE[/NAME[/SUBRESOURCE]]                      cluster-scoped, or all
                                                                      namespaces
    PREFIX[/watch]/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]        namespaced
    /api/v1/namespaces/NAME[/status|/finalize]                        a Namespace itself

`/watch/` paths are deprecated but still served: they turn the request into a watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Route:
    group: str
    version: str
    resource: str = ""
    namespace: str | None = None
    name: str = ""
    subresource: str = ""
    watch_path: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class Discovery:
    """`/api`, `/apis`, `/apis/GROUP`, or a group-version's resource list."""

    kind: str  # "legacy" | "groups" | "group" | "resources"
    group: str = ""
    version: str = ""


class BadPath(ValueError):
    pass


def split(target: str) -> tuple[list[str], dict[str, str]]:
    """Path segments (decoded) and the query (last value of each parameter)."""
    parts = urlsplit(target)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return segments, query


def route(segments: list[str]) -> Route | Discovery | None:
    """None for a path that is not under /api or /apis; raises BadPath for a malformed one."""
    if not segments or segments[0] not in ("api", "apis"):
        return None
    if segments[0] == "api":
        if len(segments) == 1:
            return Discovery("legacy")
        group, version, rest = "", segments[1], segments[2:]
    else:
        if len(segments) == 1:
            return Discovery("groups")
        if len(segments) == 2:
            return Discovery("group", segments[1])
        group, version, rest = segments[1], segments[2], segments[3:]
    if not rest:
        return Discovery("resources", group, version)
    watch = rest[0] == "watch"
    if watch:
        rest = rest[1:]
        if not rest:
            raise BadPath("a watch path names a resource")
    namespace: str | None = None
    if rest[0] == "namespaces" and (len(rest) >= 4 or (len(rest) == 3 and rest[2] not in (
            "status", "finalize"))):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise BadPath("too many path segments")
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    for value in (resource, name, sub, namespace or ""):
        if value in (".", "..") or "/" in value or "%" in value:
            raise BadPath(f"invalid path segment {value!r}")
    return Route(group, version, resource, namespace, name, sub, watch)
