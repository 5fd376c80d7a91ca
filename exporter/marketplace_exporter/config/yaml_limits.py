"""The bounds every YAML file we read is held to, checked on the node tree before any data is built.

A config file is input from whoever can write it: a colleague's merge request, an ERP that generates
an accounts file per seller, a bridge.yml in a shared repository. YAML lets a few hundred bytes
describe billions of values (anchors and aliases, "billion laughs"): on f014b6e a 342-byte file took
3.1 GB and 32 s to fail in ``check-config``, and on reload it blocked ``/-/healthy`` for 5.3 s. So:

* **Size**: a file (or text) over :data:`MAX_FILE_BYTES` is refused unread.
* **Nesting**: deeper than :data:`MAX_DEPTH` is refused (no config of ours nests past ~10; Python's
  builders recurse and would otherwise die with a ``RecursionError``).
* **Aliases**: what aliases add when expanded may at most equal what the file itself writes, or
  :data:`ALIAS_ALLOWANCE` nodes in a small file (the ratio rule of Go's yaml.v3, simplified). Anchors
  for shared defaults (``<<: *defaults`` in every account) stay well inside it; a bomb is refused
  after one linear pass over the written nodes. An alias to an enclosing node (``&a [*a]``) is
  refused: nothing we read is recursive.
* **Values**: a value YAML resolves to a date or an integer but cannot build (``2026-11-31``,
  ``2027-13-01``, an integer over Python's 4,300-digit limit) is a located error, not a traceback.

Errors are :class:`YamlRefused` (line and key path of the culprit); :mod:`.yaml_loading` turns them
into the one ``FILE:LINE: key: ...`` format.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

KeyPath = tuple[str | int, ...]

#: the largest config, accounts or bridge file read (50,000 checks written out take ~10 MB)
MAX_FILE_BYTES = 32 << 20
#: deepest nesting of mappings and lists
MAX_DEPTH = 64
#: nodes that aliases may add to a small file; larger files may add as many as they write
ALIAS_ALLOWANCE = 100_000


class YamlRefused(Exception):
    """The file breaks a bound or holds an unbuildable value; ``line`` 0: the whole file."""

    def __init__(self, message: str, line: int = 0, path: KeyPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path


def check_size(text: str) -> None:
    """Refuse a text over :data:`MAX_FILE_BYTES` (characters: a caller-built text, e.g. the demo's)."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlRefused(f"larger than {MAX_FILE_BYTES >> 20} MiB; split it (accounts_files can name a "
                          "directory of files)")


def check_node_tree(root: yaml.Node, *, aliased: bool = True) -> None:
    """Refuse a tree nested too deeply, with a recursive alias, or whose aliases expand it past
    the allowance. Linear in the written nodes: an aliased node's expanded size is computed once.
    ``aliased=False`` (the text has no ``*``, so no alias) checks the nesting only when it could
    matter, keeping the pass off the 50,000-account load."""
    if not aliased:
        return
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, path: KeyPath, depth: int) -> int:
        key = id(node)
        if key in sizes:  # an alias (or a merge) of a node already measured
            return sizes[key]
        if key in open_nodes:
            raise YamlRefused("an alias refers to a node that contains it (a recursive structure); "
                              "no config value is recursive", _line(node), path)
        if depth > MAX_DEPTH:
            raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep", _line(node), path)
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node, path, depth + 1)
                total += size(value_node, path + (str(key_node.value),), depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                total += size(item, path + (index,), depth + 1)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    expanded = size(root, (), 0)
    written = len(sizes)
    allowed = written + max(ALIAS_ALLOWANCE, written)
    if expanded > allowed:
        line, path = _largest_entry(root, sizes, allowed)
        raise YamlRefused(f"aliases expand the file to {expanded:,} values from the {written:,} it writes; at most "
                          f"{allowed:,} are accepted (a YAML alias bomb?)", line, path)


def _largest_entry(root: yaml.Node, sizes: dict[int, int], allowed: int) -> tuple[int, KeyPath]:
    """Where to point the reader: the top-level entry whose expansion is over the limit."""
    children: list[tuple[KeyPath, yaml.Node]] = []
    if isinstance(root, yaml.MappingNode):
        children = [((str(k.value),), v) for k, v in root.value]
    elif isinstance(root, yaml.SequenceNode):
        children = [((index,), item) for index, item in enumerate(root.value)]
    path, node = max(children, key=lambda child: sizes.get(id(child[1]), 0), default=((), root))
    if sizes.get(id(node), 0) * 2 < allowed:  # no single entry: the file as a whole
        return _line(root), ()
    return _line(node), path


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class UnbuildableValue(Exception):
    """Raised by :class:`BoundedLoader` with the node YAML resolved to a type it cannot build."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BoundedLoader(_BASE):  # type: ignore[misc]
    """libyaml's safe loader (pure Python without libyaml) whose date and integer builders say
    which value they could not build instead of raising a bare ``ValueError``."""


def _timestamp(loader: SafeConstructor, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        raise UnbuildableValue(node, f"expected a real date (YYYY-MM-DD, optionally a time), got "
                                     f"{node.value!r} ({exc})") from None


def _integer(loader: SafeConstructor, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        digits = sum(char.isdigit() for char in str(node.value))
        raise UnbuildableValue(node, f"expected an integer of at most {sys.get_int_max_str_digits()} digits, "
                                     f"got one of {digits} digits") from None


BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
BoundedLoader.add_constructor("tag:yaml.org,2002:int", _integer)


def build(loader: Any, root: yaml.Node) -> Any:
    """The data of a checked tree, with an unbuildable value located by line and key path."""
    try:
        return loader.construct_document(root)
    except UnbuildableValue as exc:
        raise YamlRefused(exc.message, _line(exc.node), path_to(root, exc.node)) from None


def path_to(root: yaml.Node, target: yaml.Node) -> KeyPath:
    """The key path from ``root`` to ``target`` (the first one, depth first; () if not found)."""
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend((value, path + (str(key.value),)) for key, value in reversed(node.value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (index,)) for index, item in reversed(list(enumerate(node.value))))
    return ()


__all__ = ["ALIAS_ALLOWANCE", "MAX_DEPTH", "MAX_FILE_BYTES", "BoundedLoader", "KeyPath", "YamlRefused", "build",
           "check_node_tree", "check_size", "path_to"]
