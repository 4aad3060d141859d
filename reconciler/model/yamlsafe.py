"""Bounded YAML and JSON loading for untrusted input.

Every YAML document the product reads from a user (input files, files from Git artifacts, kuttl
steps, Jinja2 output) goes through `load_yaml_documents`, which refuses, with the file and line:

- input larger than `Limits.yaml_bytes`, and text that is not UTF-8;
- NUL bytes and other non-printable control characters (YAML forbids them; PyYAML and libyaml
  would otherwise fail without a line, or not at all);
- nesting deeper than `Limits.yaml_depth` (a 10,000-deep document is a clean error, never a
  `RecursionError`);
- more than `Limits.yaml_aliases` alias references in one document, or aliases that would add
  more than `Limits.yaml_alias_nodes` nodes once expanded (billion laughs), and an alias to a
  node that contains it (a recursive structure);
- duplicate mapping keys (the API server's strict decoding refuses them; PyYAML silently keeps
  the last one).

The events come from libyaml when it is available (`CSafeLoader`), else from PyYAML's pure
parser; the nodes are composed here, iteratively, so that every bound is checked while the
document is built and nothing recurses on the input's depth. Values are then constructed by
PyYAML's `SafeConstructor`, as `yaml.safe_load` would.

`load_json_bounded` does the same for JSON (size, depth, duplicate keys, no NaN/Infinity).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.model.errors import LoadError
from reconciler.model.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "YamlDocument",
    "check_text",
    "decode_text",
    "load_json_bounded",
    "load_yaml",
    "load_yaml_documents",
]

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# What YAML 1.1 (and PyYAML's Reader) accepts: tab, LF, CR and printable characters.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlDocument:
    """One non-empty document: its composed node (for line numbers), its value and its lines
    (0-based `first`, exclusive `end`, as the node's marks give them)."""

    node: Node
    data: Any
    first: int
    end: int

    @property
    def line(self) -> int:
        """1-based line where the document's content starts."""
        return self.first + 1


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def decode_text(data: bytes, source: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """`data` as UTF-8 text, refusing oversized and undecodable input with file and line."""
    if len(data) > limits.yaml_bytes:
        raise LoadError(source, f"file is too large: {len(data)} bytes, the limit is "
                                f"{limits.yaml_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LoadError(source, f"invalid UTF-8: byte 0x{data[exc.start]:02x} at offset "
                                f"{exc.start} cannot be decoded (files must be UTF-8)",
                        line) from exc
    return text[1:] if text.startswith("\ufeff") else text


def check_text(text: str, source: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse text that is too large or holds characters YAML does not allow."""
    if len(text) > limits.yaml_bytes or len(text.encode("utf-8", "surrogatepass")) > \
            limits.yaml_bytes:
        raise LoadError(source, f"input is too large: more than {limits.yaml_bytes} bytes")
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        char = bad.group()
        name = "a NUL byte" if char == "\0" else f"control character U+{ord(char):04X}"
        raise LoadError(source, f"invalid YAML: {name} is not allowed in YAML text "
                                "(is this a binary file?)", _line_at(text, bad.start()))


class _Frame:
    """A container being composed: its node, how many nodes it expands to, its height."""

    __slots__ = ("height", "key", "keys", "node", "size")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.size = 1
        self.height = 1
        self.key: Node | None = None  # a mapping's key waiting for its value
        self.keys: dict[tuple[str, str], int] = {}


class _Composer:
    """Builds one document's node graph from events, checking every bound as it goes."""

    def __init__(self, loader: Any, source: str, limits: Limits) -> None:
        self.loader = loader
        self.source = source
        self.limits = limits

    def fail(self, message: str, mark: Any) -> LoadError:
        line = mark.line + 1 if mark is not None else None
        return LoadError(self.source, f"invalid YAML: {message}", line)

    def compose(self) -> Node | None:
        loader, limits = self.loader, self.limits
        anchors: dict[str, Node] = {}
        sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
        open_nodes: set[int] = set()
        aliases = 0
        composed = 0
        expanded = 0
        stack: list[_Frame] = []
        root: Node | None = None
        while True:
            event = loader.get_event()
            node: Node
            size = height = 1
            if isinstance(event, ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, event.start_mark,  # type: ignore[arg-type]
                                  event.end_mark, style=event.style)  # type: ignore[arg-type]
                composed += 1
                expanded += 1
                self._anchor(anchors, event, node)
            elif isinstance(event, SequenceStartEvent | MappingStartEvent):
                if len(stack) >= limits.yaml_depth:
                    raise self.fail(f"nesting is deeper than the limit of {limits.yaml_depth} "
                                    "levels", event.start_mark)
                tag = event.tag
                is_seq = isinstance(event, SequenceStartEvent)
                kind: type[SequenceNode | MappingNode] = SequenceNode if is_seq else MappingNode
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, event.implicit)
                node = kind(tag, [], event.start_mark, None,  # type: ignore[arg-type]
                            flow_style=event.flow_style)
                composed += 1
                expanded += 1
                self._anchor(anchors, event, node)
                open_nodes.add(id(node))
                stack.append(_Frame(node))
                continue
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                frame = stack.pop()
                node = frame.node
                node.end_mark = event.end_mark
                open_nodes.discard(id(node))
                size, height = frame.size, frame.height
                sizes[id(node)] = (size, height)
            elif isinstance(event, AliasEvent):
                target = anchors.get(event.anchor or "")
                if target is None:
                    raise self.fail(f"found undefined alias {event.anchor!r}", event.start_mark)
                if id(target) in open_nodes:
                    raise self.fail(f"alias {event.anchor!r} refers to a node that contains it",
                                    event.start_mark)
                aliases += 1
                if aliases > limits.yaml_aliases:
                    raise self.fail(f"excessive aliasing: more than {limits.yaml_aliases} alias "
                                    "references in one document", event.start_mark)
                node = target
                size, height = sizes.get(id(target), (1, 1))
                expanded += size
                if expanded - composed > limits.yaml_alias_nodes:
                    raise self.fail(
                        f"excessive aliasing: aliases expand to more than "
                        f"{limits.yaml_alias_nodes} additional nodes", event.start_mark)
                if len(stack) + height > limits.yaml_depth:
                    raise self.fail(f"nesting is deeper than the limit of {limits.yaml_depth} "
                                    "levels once aliases are expanded", event.start_mark)
            else:
                raise self.fail(f"unexpected {type(event).__name__}", event.start_mark)
            if not stack:
                root = node
                break
            parent = stack[-1]
            parent.size += size
            parent.height = max(parent.height, height + 1)
            if isinstance(parent.node, SequenceNode):
                parent.node.value.append(node)
            elif parent.key is None:
                parent.key = node
                if isinstance(node, ScalarNode) and node.tag != _MERGE_TAG:
                    identity = (node.tag, node.value)
                    first = parent.keys.get(identity)
                    if first is not None:
                        raise self.fail(
                            f"duplicate key {node.value!r} in a mapping (first at line "
                            f"{first}); the API server refuses duplicate fields",
                            node.start_mark)
                    parent.keys[identity] = node.start_mark.line + 1
            else:
                parent.node.value.append((parent.key, node))
                parent.key = None
        return root

    def _anchor(self, anchors: dict[str, Node], event: Any, node: Node) -> None:
        anchor = event.anchor
        if anchor is None:
            return
        anchors[anchor] = node


def _documents(text: str, source: str, limits: Limits) -> Iterator[YamlDocument]:
    check_text(text, source, limits)
    loader = _Loader(text)
    try:
        event = loader.get_event()
        if not isinstance(event, StreamStartEvent):
            raise LoadError(source, "invalid YAML: no stream start")
        while not loader.check_event(StreamEndEvent):
            start = loader.get_event()
            assert isinstance(start, DocumentStartEvent)
            node = _Composer(loader, source, limits).compose()
            end = loader.get_event()
            assert isinstance(end, DocumentEndEvent)
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            last = node.end_mark.line + (1 if node.end_mark.column else 0)
            yield YamlDocument(node, data, node.start_mark.line, last)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise LoadError(source, f"invalid YAML: {problem}", line) from exc
    except RecursionError as exc:  # pragma: no cover - the depth bound comes first
        raise LoadError(source, "invalid YAML: nesting is too deep") from exc
    finally:
        loader.dispose()


def load_yaml_documents(
    text: str | bytes, source: str, limits: Limits = DEFAULT_LIMITS
) -> list[YamlDocument]:
    """Every non-empty document of `text`, bounded; raises `LoadError` with `source` and line."""
    if isinstance(text, bytes):
        text = decode_text(text, source, limits)
    return list(_documents(text, source, limits))


def load_yaml(text: str | bytes, source: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """`yaml.safe_load`, bounded: the single document's value (`None` when empty)."""
    documents = load_yaml_documents(text, source, limits)
    if len(documents) > 1:
        raise LoadError(source, "expected a single YAML document, found "
                                f"{len(documents)}", documents[1].line)
    return documents[0].data if documents else None


# --- JSON ----------------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def load_json_bounded(
    text: str | bytes, source: str, limits: Limits = DEFAULT_LIMITS, *,
    max_bytes: int | None = None,
) -> Any:
    """`json.loads`, bounded: size (`max_bytes`, default `Limits.yaml_bytes`), nesting depth
    (`Limits.yaml_depth`), no duplicate keys, no NaN or Infinity. Raises `LoadError`."""
    limit = limits.yaml_bytes if max_bytes is None else max_bytes
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise LoadError(source, f"input is too large: {size} bytes, the limit is {limit} bytes")
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise LoadError(source, f"invalid UTF-8 at offset {exc.start}", line) from exc
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(_blank, text)):
        if match.group() in "[{":
            depth += 1
            if depth > limits.yaml_depth:
                raise LoadError(source, f"invalid JSON: nesting is deeper than the limit of "
                                        f"{limits.yaml_depth} levels",
                                _line_at(text, match.start()))
        else:
            depth -= 1

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r} in an object")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise LoadError(source, f"invalid JSON: {exc.msg} (column {exc.colno})",
                        exc.lineno) from exc
    except (ValueError, RecursionError) as exc:
        raise LoadError(source, f"invalid JSON: {exc}") from exc


def _blank(match: re.Match[str]) -> str:
    """A JSON string with its content removed but its newlines kept (for line numbers)."""
    return '"' + "\n" * match.group().count("\n") + '"'
