"""Read one YAML file safely into plain Python data, remembering where every node stood.

PyYAML's safe loader composes the node tree; this module constructs the data itself so that
it can (a) keep the line and column of every key and value, (b) report duplicate keys, which
PyYAML silently drops, (c) flag YAML 1.1 booleans written as yes/no/on/off, and (d) refuse alias
bombs and oversized files before they cost time or memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem

try:  # the C loader is much faster; fall back when PyYAML was built without libyaml
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 100_000
_YAML11_BOOL = re.compile(r"^(yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)$")
_TAG = "tag:yaml.org,2002:"

Path_ = tuple  # a path into the data: keys and list indices


@dataclass
class SourceDoc:
    """One parsed YAML file: its data and the position of every key and value in it."""

    path: Path
    display: str
    data: Any
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    yaml11_bools: set[Path_] = field(default_factory=set)
    quoted: set[Path_] = field(default_factory=set)  # single-line quoted scalars

    def text_position(self, path: Path_, line: int, column: int) -> tuple[int, int]:
        """Return the file position of (line, column) inside the scalar text at `path`."""
        start_line, start_col = self.position(path)
        if line == 1 and (path in self.value_marks):
            return start_line, start_col + (1 if path in self.quoted else 0) + column - 1
        return start_line, start_col

    def position(self, path: Path_ = (), key: bool = False) -> tuple[int, int]:
        """Return (line, column) of the node at `path`, or of its nearest ancestor."""
        path = tuple(path)
        while True:
            marks = self.key_marks if key else self.value_marks
            if path in marks:
                return marks[path]
            if key and path in self.value_marks:
                return self.value_marks[path]
            if not path:
                return (1, 1)
            path = path[:-1]
            key = True  # point at the key of the nearest parent that exists

    def problem(self, path: Path_, code: str, message: str, key: bool = False) -> Problem:
        """Return a Problem positioned at `path` (its key when `key` is true)."""
        line, column = self.position(path, key=key)
        if tuple(path) in self.yaml11_bools:
            message += (" (YAML reads an unquoted yes/no/on/off as a boolean: "
                        "write it in quotes if you mean the text)")
        return Problem(self.display, line, column, code, message)


class _TooLarge(Exception):
    pass


def read_yaml(path: Path, display: str) -> tuple[SourceDoc | None, list[Problem]]:
    """Parse `path`; return the document (or None) and the problems found while reading it."""
    def fail(code: str, message: str, line: int = 1, column: int = 1):
        return None, [Problem(display, line, column, code, message)]

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return fail("yaml-too-large", f"file is {size / 1048576:.1f} MB; a configuration "
                        f"file may be at most {MAX_FILE_BYTES // 1048576} MB")
        raw = path.read_bytes()
    except OSError as exc:
        return fail("file-unreadable", f"cannot read file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return fail("file-encoding", f"file is not UTF-8 (byte {exc.start})")
    return parse_yaml_text(text, path, display)


def parse_yaml_text(text: str, path: Path, display: str) -> tuple[SourceDoc | None, list[Problem]]:
    """Parse YAML text; see `read_yaml`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return None, [Problem(display, line, column, "yaml-syntax", f"YAML syntax: {message}")]
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return None, [Problem(display, 1, 1, "yaml-syntax", f"YAML syntax: {exc}")]
    finally:
        loader.dispose()

    doc = SourceDoc(path=path, display=display, data=None)
    if node is None:
        return doc, []
    builder = _Builder(doc, loader)
    try:
        doc.data = builder.build(node, ())
    except _TooLarge:
        return None, [Problem(display, 1, 1, "yaml-too-large",
                              f"document expands to more than {MAX_NODES} nodes "
                              "(aliases repeated too often)")]
    except RecursionError:
        return None, [Problem(display, 1, 1, "yaml-too-large", "document is nested too deeply")]
    return doc, builder.problems


class _Builder:
    """Construct plain data from a node tree, recording marks and problems."""

    def __init__(self, doc: SourceDoc, loader):
        self.doc = doc
        self.loader = loader
        self.problems: list[Problem] = []
        self.count = 0

    def build(self, node, path: Path_):
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge()
        self.doc.value_marks.setdefault(path, _mark(node))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in (_TAG + "map", _TAG + "seq"):
            self.problems.append(Problem(self.doc.display, *_mark(node), "yaml-tag",
                                         f"unsupported YAML tag '{node.tag}'"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node, path: Path_) -> dict:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged = self.build(value_node, path)
                for part in merged if isinstance(merged, list) else [merged]:
                    if isinstance(part, dict):
                        for k, v in part.items():
                            result.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.doc.display, *_mark(key_node), "yaml-key",
                                             "a mapping key must be a plain name"))
                continue
            key = str(key_node.value)
            if key in first_seen:
                self.problems.append(Problem(
                    self.doc.display, *_mark(key_node), "yaml-duplicate-key",
                    f"duplicate key '{key}' (first defined on line {first_seen[key]})"))
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.doc.key_marks[path + (key,)] = _mark(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result

    def _scalar(self, node, path: Path_):
        tag = node.tag
        if node.style in ("'", '"') and node.start_mark.line == node.end_mark.line:
            self.doc.quoted.add(path)
        if tag == _TAG + "timestamp":
            return node.value  # dates stay ISO text; the checker parses them per field type
        if tag == _TAG + "bool" and not node.style and _YAML11_BOOL.match(node.value):
            self.doc.yaml11_bools.add(path)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(Problem(self.doc.display, *_mark(node), "yaml-tag",
                                         f"unsupported YAML value: {getattr(exc, 'problem', exc)}"))
            return None


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
