"""The CLI and the docs name things the same way, in both languages.

- Every ``marketplace-exporter …`` command the docs show (fenced blocks and inline code of every
  Markdown file, English and Chinese, and of the dashboards' panel descriptions; the CI recipes
  under docs/ci/ and the composite action) names a real subcommand, and every ``--flag`` after it
  is a flag of that subcommand.
- Every help text of every subcommand names only real things: ``docs/…`` files that exist, metric
  names from the catalogue, and ``--flags`` of that command.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketplace_exporter import catalogue, cli

ROOT = Path(__file__).resolve().parents[2]
PROG = "marketplace-exporter"

_FENCE = re.compile(r"^(```+|~~~+).*?$(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
#: the command line after the program name, up to what ends a shell word list
_INVOCATION = re.compile(PROG + r"((?:[ \t]+[^\s`|;&)'\"]+)+)")
_FLAG = re.compile(r"^\[?(--[a-z][\w.-]*[\w])")
_DOC_PATH = re.compile(r"\bdocs/[\w./-]+\.(?:md|sh|yml|yaml)\b")
_METRIC = re.compile(r"\bmarketplace_[a-z_]+\b")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def resolve(words: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], argparse.ArgumentParser]:
    """The subcommand path the leading ``words`` name, and its parser."""
    path = []
    while words and words[0] in _subcommands(parser):
        path.append(words[0])
        parser = _subcommands(parser)[words.pop(0)]
    return path, parser


def problems_in(text: str, parser: argparse.ArgumentParser, strict_commands: bool) -> Iterator[str]:
    """What is wrong with each invocation in ``text``; ``strict_commands``: an unknown first word is
    an error (it is code), else prose such as "marketplace-exporter is licensed" is skipped."""
    top = set(parser._option_string_actions)
    for match in _INVOCATION.finditer(text.replace("\\\n", " ")):
        words = match.group(1).split()
        path, sub = resolve(words, parser)
        shown = f"{PROG}{match.group(1)}"[:90]
        if not path:
            if strict_commands and words and not words[0].startswith(("-", "<", "[", "COMMAND")):
                yield f"unknown command {words[0]!r} in {shown!r}"
            continue
        if _subcommands(sub):  # a group named alone ("the `deploy` commands") is fine
            if strict_commands and words:
                yield f"{' '.join(path)} needs one of {sorted(_subcommands(sub))} in {shown!r}"
            continue
        flags = set(sub._option_string_actions) | top
        for word in words:
            flag = _FLAG.match(word)
            if flag and flag.group(1) not in flags and not word.rstrip("]").endswith(".*"):
                yield f"{' '.join(path)} has no flag {flag.group(1)} ({shown!r})"


def _code_of_markdown(text: str) -> str:
    blocks = [m.group(2) for m in _FENCE.finditer(text)]
    prose = _FENCE.sub("", text)
    return "\n".join(blocks + _INLINE.findall(prose))


def _documents() -> list[Path]:
    """Markdown (and the dashboards' sources, whose descriptions are Markdown), then CI recipes."""
    markdown = [p for p in ROOT.rglob("*.md") if not {".venv", "node_modules", ".git"} & set(p.parts)]
    markdown += list((ROOT / "dashboards").glob("*.dashboard.py"))
    scripts = [p for p in (ROOT / "docs" / "ci").iterdir() if p.is_file()]
    return sorted(markdown) + sorted(scripts) + [ROOT / ".github" / "actions" / "deploy-gate" / "action.yml"]


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_command_and_flag_exists(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    markdown = path.suffix == ".md" or path.name.endswith(".dashboard.py")
    found = list(problems_in(_code_of_markdown(text) if markdown else text, cli._parser(), strict_commands=markdown))
    assert not found, f"{path.relative_to(ROOT)}: " + "; ".join(found)


def _every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for name, sub in _subcommands(parser).items():
        yield from _every_parser(sub, (*path, name))


def _texts(parser: argparse.ArgumentParser) -> Iterator[str]:
    yield parser.description or ""
    yield parser.epilog or ""
    for action in parser._actions:
        yield action.help or ""
        if isinstance(action, argparse._SubParsersAction):
            yield from (choice.help or "" for choice in action._choices_actions)
    for group in parser._action_groups:
        yield group.description or ""


def test_help_texts_name_existing_docs_metrics_and_flags() -> None:
    metrics = {spec.name for spec in catalogue.ALL}
    found = []
    top = cli._parser()
    for path, parser in _every_parser(top):
        where = " ".join((PROG, *path))
        flags = set(parser._option_string_actions) | set(top._option_string_actions)
        for text in _texts(parser):
            found += [f"{where}: {doc} does not exist" for doc in _DOC_PATH.findall(text) if not (ROOT / doc).exists()]
            found += [f"{where}: {name} is not a catalogue metric" for name in _METRIC.findall(text)
                      if name not in metrics]
            found += [f"{where}: mentions {flag}, which it does not have"
                      for flag in re.findall(r"(?<![\w-])(--[a-z][\w.-]*[\w])", text)
                      if flag not in flags and not path == ()]
    assert not found, "\n".join(found)


def test_the_rule_catches_an_unknown_command_or_flag() -> None:
    parser = cli._parser()
    text = (f"{PROG} run --config.file=my.yml --web.listen-addr=:9761\n{PROG} deploy --service x\n"
            f"{PROG} rulez generate\n{PROG} check-config my.yml\n")
    assert list(problems_in(text, parser, strict_commands=True)) == [
        f"run has no flag --web.listen-addr ('{PROG} run --config.file=my.yml --web.listen-addr=:9761')",
        f"deploy needs one of ['mark'] in '{PROG} deploy --service x'",
        f"unknown command 'rulez' in '{PROG} rulez generate'",
    ]
    assert list(problems_in(f"{PROG} is licensed under Apache-2.0", parser, strict_commands=False)) == []
