"""Plain YAML documents built straight from the parser's events, without a node tree.

PyYAML builds a document in two steps: the composer turns the whole text into a tree of nodes
(each with two position marks), then the constructor turns that tree into dicts, lists and
scalars. For a config of 50,000 checks (4 MB of YAML) the tree took ~160 MB and ~3 s; the data
built from it reuses the nodes' strings, so the survivors sat scattered among the freed nodes and
the process kept ~200 MB it no longer used (the allocator returns only wholly empty arenas).

Most config files and accounts files are *plain*: mappings with scalar keys, sequences and
scalars, no anchors or aliases, no explicit tags other than YAML's own scalar types, no merge keys
and no duplicate keys. :func:`plain_data` builds such a document from the event stream directly:
each event is freed as soon as it is read, scalars are resolved and built by the same resolver and
constructors the loader uses (so ``yes``, ``1e3``, ``2026-01-01``, ``~`` mean what they mean
there), and nothing but the data is left. Anything else raises :class:`NotPlain`, and the caller
takes PyYAML's own path (which also locates duplicate keys and values YAML cannot build).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml import events

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_STR = _CORE + "str"
_COLLECTION_TAGS = (None, "!", _CORE + "map", _CORE + "seq")
#: deeper documents take the full path (and its limits): no config needs more than a dozen levels
MAX_DEPTH = 32


class NotPlain(Exception):
    """The document needs PyYAML's full path (anchors, tags, merge or duplicate keys, an error)."""


def plain_data(text: str) -> Any:
    """The document in ``text`` built from events; :class:`NotPlain` when it is not plain, or when
    anything (a syntax error included) needs the full path to be reported with its line."""
    loader = _LOADER(text)
    try:
        return _build(loader)
    except NotPlain:
        raise
    except Exception as exc:  # the full path parses again and reports it with its position
        raise NotPlain(str(exc)) from None
    finally:
        loader.dispose()


def _build(loader: Any) -> Any:
    get_event = loader.get_event
    resolve = loader.resolve
    constructors = loader.yaml_constructors
    scalar_node = yaml.ScalarNode
    no_key = _NO_KEY
    if type(get_event()) is not events.StreamStartEvent:
        raise NotPlain("no stream start")
    first = get_event()
    if type(first) is events.StreamEndEvent:
        return None  # an empty file
    if type(first) is not events.DocumentStartEvent:
        raise NotPlain("no document")
    stack: list[tuple[Any, Any]] = []
    container: Any = None  # the dict or list being filled (None: at the root)
    key: Any = no_key  # in a mapping: the key whose value comes next
    root: Any = None
    while True:
        event = get_event()
        kind = type(event)
        if kind is events.ScalarEvent:
            if event.anchor is not None:
                raise NotPlain("anchor")
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(scalar_node, event.value, event.implicit)
            elif not tag.startswith(_CORE):
                raise NotPlain("local tag")
            value = event.value if tag == _STR else constructors[tag](loader, scalar_node(tag, event.value))
            if type(container) is dict:
                if key is no_key:
                    if tag == _CORE + "merge" or value in container:
                        raise NotPlain("merge or duplicate key")
                    key = value
                    continue
                container[key] = value
                key = no_key
            elif container is not None:
                container.append(value)
            else:
                root = value
        elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
            if event.anchor is not None or event.tag not in _COLLECTION_TAGS:
                raise NotPlain("anchor or tag")
            new: Any = {} if kind is events.MappingStartEvent else []
            if type(container) is dict:
                if key is no_key:
                    raise NotPlain("a collection as a key")
                container[key] = new
                key = no_key
            elif container is not None:
                container.append(new)
            else:
                root = new
            stack.append((container, key))
            if len(stack) > MAX_DEPTH:
                raise NotPlain("deeply nested")
            container, key = new, no_key
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            container, key = stack.pop()
        elif kind is events.DocumentEndEvent:
            break
        else:  # an alias
            raise NotPlain(kind.__name__)
    if type(get_event()) is not events.StreamEndEvent:
        raise NotPlain("more than one document")
    return root


_NO_KEY = object()

__all__ = ["NotPlain", "plain_data"]
