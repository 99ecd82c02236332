"""YAML that nobody vetted, read within bounds: study files, submitted studies, logged studies.

PyYAML's safe loader runs no code, but it expands aliases (a 2.8 KB "billion laughs" document
becomes gigabytes once its values are rendered) and lets a duplicate key silently replace the
first. `load` refuses both before any value is built: the document's size, its node count after
alias expansion (counted on the composed graph, which shares aliased nodes, so nothing is
expanded to count it) and recursive aliases; and a key given twice in one mapping is an error
naming both lines. The node tree comes back with the data, for the line numbers of later errors.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20
"""A study file is a few KiB; a megabyte is far past any real one."""
MAX_NODES = 100_000
"""Nodes of the document once every alias is expanded."""


class YamlRefused(ValueError):
    """A document refused for its shape, not its syntax: `line` (1-based) says where, `fix`
    what to write instead."""

    def __init__(self, message: str, line: int | None = None, *, fix: str) -> None:
        self.message, self.line, self.fix = message, line, fix
        super().__init__(message)


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue  # merge keys may be overridden, that is what they are for
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise YamlRefused(
                    f"the key {key_node.value[:60]!r} is given twice in one mapping (first at "
                    f"line {seen[key_node.value]}); YAML would keep the last one silently",
                    line,
                    fix="write each key once: keep the value you mean and delete the other",
                )
            seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded, counted without expanding; a
    recursive alias raises YamlRefused."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                return sizes[key]
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlRefused(
                "an alias refers to a node that contains it",
                _line(node),
                fix="anchor (&name) a finished value and alias (*name) it elsewhere, not inside",
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def load(text: str) -> tuple[yaml.Node | None, Any]:
    """(node tree, data) of one YAML document, within bounds.

    Raises `yaml.YAMLError` for a syntax error (with its marks, as PyYAML reports it) and
    `YamlRefused` for a document too large, too large once its aliases are expanded, with a
    recursive alias, or with a key given twice in one mapping.
    """
    if len(text) > MAX_BYTES:
        raise YamlRefused(
            f"the document has {len(text):,} characters; at most {MAX_BYTES:,} are read",
            1,
            fix="a study is a few KiB: keep data in data files and comments short",
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        size = expanded_size(node)
        if size > MAX_NODES:
            raise YamlRefused(
                f"the document expands to more than {MAX_NODES:,} values through its aliases "
                "(&anchor / *alias)",
                _line(node),
                fix="write the values out, or alias whole sections, not lists of aliases",
            )
        return node, loader.construct_document(node)
    finally:
        loader.dispose()
