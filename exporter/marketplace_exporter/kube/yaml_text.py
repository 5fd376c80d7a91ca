"""Deterministic YAML for the generated manifests: keys in the order the builders wrote them,
multi-line strings (PromQL, dashboard JSON, config files) as literal blocks, no line folding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as ``|`` blocks and indents lists under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000,
                     default_flow_style=False)


def dump_all(documents: Sequence[Any], header: str) -> str:
    """``header`` lines as comments, then the documents separated by ``---``."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comments + "---\n".join(dump(document) for document in documents)


class Loader(yaml.SafeLoader):
    """SafeLoader that reads a bare ``=`` (kustomize writes AlertmanagerConfig's ``matchType: =``
    unquoted; the CRD's enum lists it so) as the string it is: PyYAML takes it for YAML 1.1's
    ``!!value`` tag, which SafeLoader refuses."""


Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
