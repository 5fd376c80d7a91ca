"""YAML + pydantic loading with one error format, for every config file we read (the exporter's
config, its accounts files, the bridge's ``bridge.yml``).

Every error is one line ``FILE:LINE: key.path[0].sub: what was expected, got what was found``, e.g.
``demo.yml:14: accounts[0].site: expected one of 'AE', 'AU', ..., got 'USA'``. Values under keys a
caller names as secret are never quoted, and a mapping or list is described, not dumped.

A config file is input from whoever can write it (an ERP generating accounts files, a colleague's
merge request), so reading one is bounded (:mod:`.yaml_limits`): its size, its nesting and what its
aliases expand to. A 342-byte "billion laughs" file once took 3.1 GB and 32 s to fail; it is now a
located error before anything is built from it. Values YAML cannot build (``2026-11-31`` read as a
date, an integer over 4,300 digits) are located errors too, never a traceback.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from marketplace_exporter.config.yaml_events import NotPlain, plain_data
from marketplace_exporter.config.yaml_limits import (
    MAX_FILE_BYTES,
    BoundedLoader,
    KeyPath,
    YamlRefused,
    build,
    check_node_tree,
    check_size,
)


class ConfigError(Exception):
    """The config cannot be used; ``errors`` lists every problem found, each fully located."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


class LineMap:
    """Key path → line number of one YAML document (1 for anything not found)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: dict[KeyPath, int] = {}
        #: duplicate keys found while walking (YAML would silently keep only the last one)
        self.errors: list[str] = []
        #: the text to locate keys in when first asked (:meth:`later`)
        self._text: str | None = None

    @classmethod
    def of(cls, name: str, root: yaml.Node | None) -> LineMap:
        found = cls(name)
        if root is not None:
            found._walk(root, ())
        return found

    @classmethod
    def later(cls, name: str, text: str) -> LineMap:
        """A map of a plain document (no duplicate keys) that parses ``text`` again for line numbers
        only when an error asks for one: a valid file of 50,000 checks never pays for them."""
        found = cls(name)
        found._text = text
        return found

    def _walk(self, node: yaml.Node, path: KeyPath) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.errors.append(f"{self.name}:{key_node.start_mark.line + 1}: {dotted(path + (key,))}: "
                                       "duplicate key (YAML would silently keep only the last one)")
                seen.add(key)
                self._walk(value_node, path + (key,))
                self.lines[path + (key,)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, path + (index,))

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, else of its nearest located parent."""
        if self._text is not None:
            text, self._text = self._text, None
            try:
                root, _ = _parse_yaml(text)
            except yaml.YAMLError:  # parsed once already: cannot happen, and 1 is a safe answer
                root = None
            if root is not None:
                self._walk(root, ())
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: KeyPath, message: str) -> str:
        """``FILE:LINE: key.path: message``."""
        return f"{self.name}:{self.line(path)}: {dotted(path)}: {message}"


def read_document(name: str, text: str | None = None) -> tuple[Any, LineMap]:
    """Read (unless ``text`` is given) and parse a YAML file: its data and its :class:`LineMap`.

    A plain document is built from the parser's events (yaml_events.py: no node tree, a fraction of
    the memory and time at 50,000 checks) and located only if an error needs a line; anything else
    (anchors, tags, duplicate keys, a syntax error) takes :func:`read_yaml`'s path."""
    if text is None:
        text = read_text(name)
    if len(text) <= MAX_FILE_BYTES:  # an oversized text is refused by read_yaml's bounds
        try:
            return plain_data(text), LineMap.later(name, text)
        except NotPlain:
            pass
    root, data = read_yaml(name, text)
    return data, LineMap.of(name, root)


def read_yaml(name: str, text: str | None = None) -> tuple[yaml.Node | None, Any]:
    """Read (unless ``text`` is given) and parse a YAML file: the node tree for line numbers and the
    data. Unreadable or oversized files, YAML syntax errors, alias bombs and values YAML cannot
    build become a :class:`ConfigError` naming the file, line and key."""
    if text is None:
        text = read_text(name)
    try:
        check_size(text)
        return _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_problem(name, exc)]) from None
    except YamlRefused as exc:
        where = f"{name}:{exc.line}: {dotted(exc.path)}" if exc.line else name
        raise ConfigError([f"{where}: {exc.message}"]) from None
    except RecursionError:  # only without libyaml, which caps nesting at 1,000 levels itself
        raise ConfigError([f"{name}: nested too deeply to read"]) from None


def read_text(name: str, what: str = "config file") -> str:
    """The file's text, or a :class:`ConfigError` saying why it cannot be read. Reads at most
    :data:`MAX_FILE_BYTES` + 1 bytes, so ``/dev/zero`` or a runaway generated file is refused
    rather than read into memory."""
    chunks: list[bytes] = []
    size = 0
    try:
        with Path(name).open("rb") as handle:
            # chunked, not read(MAX + 1): that would allocate the whole cap for every small file
            while size <= MAX_FILE_BYTES and (chunk := handle.read(1 << 20)):
                chunks.append(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read {what}: {exc.strerror}"]) from None
    if size > MAX_FILE_BYTES:
        raise ConfigError([f"{name}: {what} larger than {MAX_FILE_BYTES >> 20} MiB; split it (accounts_files "
                           "can name a directory of files)"])
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: not UTF-8 text (byte {exc.start})"]) from None


def yaml_problem(name: str, exc: yaml.YAMLError) -> str:
    """A YAML syntax error as one located line."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{name}:{mark.line + 1}" if mark else name
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: invalid YAML: {problem}"


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """One pass (libyaml when available): the node tree for line numbers and the data built from
    that same tree. Parsing twice in pure Python cost ~1.7 ms per check, blocking reloads. The
    tree is checked against the limits before anything is built from it."""
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        check_node_tree(node, aliased="*" in text)
        return node, build(loader, node)
    finally:
        loader.dispose()


def require_mapping(name: str, raw: Any) -> dict[str, Any]:
    """The document's root as a mapping (an empty file is an empty mapping)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{name}:1: (root): expected a mapping of keys, got {type(raw).__name__}"])
    return raw


def dotted(path: KeyPath) -> str:
    """``("accounts", 0, "site")`` → ``accounts[0].site``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def pydantic_errors(exc: ValidationError, lines: LineMap, *, secret_keys: Collection[str] = (),
                    unknown_key: str = "unknown key", prefix: KeyPath = (),
                    strip_tag: Collection[str] = ()) -> list[str]:
    """Each pydantic error as a located line. ``secret_keys``: values under these keys are never
    quoted; ``prefix``: where the validated object sits in the file; ``strip_tag``: discriminator
    values pydantic puts into the path (``accounts.0.amazon_sp.site``) that a reader never wrote."""
    messages = []
    for err in exc.errors(include_url=False):
        path = prefix + _without_tags(tuple(err["loc"]), strip_tag)
        secret = any(part in secret_keys for part in path if isinstance(part, str))
        kind = err["type"]
        if kind == "extra_forbidden":
            text = unknown_key
        elif kind == "missing":
            text = "missing required key"
        elif kind == "union_tag_invalid":
            text = f"{expected(err['msg'])}, got {short(err.get('ctx', {}).get('tag'))}"
        else:
            text = expected(err["msg"])
            if kind != "value_error":
                text += f", got {found(err.get('input'), secret)}"
        messages.append(lines.error(path, text))
    return messages


def _without_tags(loc: KeyPath, tags: Collection[str]) -> KeyPath:
    """Drop a union's tag where pydantic put it: first, or right after a list index."""
    return tuple(part for index, part in enumerate(loc)
                 if not (part in tags and (index == 0 or isinstance(loc[index - 1], int))))


def expected(msg: str) -> str:
    """pydantic's message rephrased as what was expected."""
    msg = msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return "expected " + msg.removeprefix("Input should be ")
    if msg.startswith("Input tag ") and "does not match any of the expected tags" in msg:
        return "expected marketplace " + msg.split("expected tags: ", 1)[-1]
    if msg.startswith("String should match pattern"):
        return "expected " + msg.replace("String should match pattern", "a string matching")
    return msg if msg[1:2].isupper() else msg[:1].lower() + msg[1:]


def found(value: Any, secret: bool) -> str:
    """What was found, without ever quoting a possible secret or a whole mapping."""
    if secret:
        return f"a {type(value).__name__} (value not shown)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return short(value)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["MAX_FILE_BYTES", "ConfigError", "KeyPath", "LineMap", "dotted", "expected", "found", "pydantic_errors",
           "read_document", "read_text", "read_yaml", "require_mapping", "short", "yaml_problem"]
