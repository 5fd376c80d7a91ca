"""The Chinese documents say what their English originals say: README.zh-CN.md, and the Chinese
configuration reference and runbooks, keep every section, command block and table of the English
file, so a section or command added to one language only fails here and tells what to translate.

The rule, per pair of files (English first):

- **Headings**: the same number, in the same order, each at the same level. A heading's inline
  code (`` `accounts[]` ``, `` `amazon_sp` ``) is the same set in both; a heading that is one
  CamelCase name (an alert such as ``MarketplaceCheckFailing``, which runbook links point at) is
  the same text. Only README.zh-CN.md may end with one extra section, its glossary (术语表).
- **Fenced code blocks**: the same number, in the same sections, with the same info string and the
  same number of lines; every line is identical once its comment is removed (``#`` at the start
  or after whitespace, outside quotes, in sh/yaml/python blocks). Only comments are translated.
- **Tables**: the same number per section, each with the same number of rows, and the same inline
  code in the first cell of every row (the key, metric, endpoint or spelling the row is about).
- Each file links its counterpart at the top, and every relative link (with its ``#anchor``) in
  the six files reaches an existing file and heading (GitHub's anchor rule, or an ``<a id>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_runbook_links import github_anchor  # GitHub's heading ids (full-width punctuation dropped too)

ROOT = Path(__file__).resolve().parents[2]

PAIRS: tuple[tuple[str, str], ...] = (
    ("README.md", "README.zh-CN.md"),
    ("docs/configuration.md", "docs/configuration.zh-CN.md"),
    ("docs/runbooks.md", "docs/runbooks.zh-CN.md"),
)
#: the one section a Chinese file may add, at its end
GLOSSARY = "术语表"
#: code blocks whose ``#`` starts a comment
COMMENTED = {"sh", "bash", "shell", "console", "yaml", "yml", "python", "py", "toml", "dockerfile"}

_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`([^`]+)`")
#: a CamelCase name (two capitals or more, no spaces), e.g. an alert: kept as it is
_IDENTIFIER = re.compile(r"^(?=(?:[^A-Z]*[A-Z]){2})[A-Z][A-Za-z0-9_]*$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_ANCHOR_TAG = re.compile(r'<a id="([^"]+)"></a>')


@dataclass
class Block:
    kind: str  # "heading", "code" or "table"
    section: int  # index of the heading above it (-1 before the first)
    level: int = 0
    text: str = ""
    info: str = ""
    lines: list[str] = field(default_factory=list)


def outline(markdown: str) -> list[Block]:
    """Headings, fenced code blocks and tables, in order (a ``#`` line inside a fence is code)."""
    blocks: list[Block] = []
    section = -1
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            marker, body = fence.group(1), []
            i += 1
            while i < len(lines) and not lines[i].startswith(marker):
                body.append(lines[i])
                i += 1
            blocks.append(Block("code", section, info=fence.group(2).lower(), lines=body))
        elif heading := _HEADING.match(line):
            section += 1
            blocks.append(Block("heading", section, level=len(heading.group(1)), text=heading.group(2)))
        elif line.startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            rows = [line]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            blocks.append(Block("table", section, lines=rows))
            continue
        i += 1
    return blocks


def strip_comment(line: str) -> str:
    """The line without its ``#`` comment (outside quotes, at the start or after whitespace)."""
    quote = ""
    for pos, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (pos == 0 or line[pos - 1].isspace()):
            return line[:pos].rstrip()
    return line.rstrip()


def _code_spans(text: str) -> list[str]:
    return sorted(_CODE_SPAN.findall(text))


def _first_cell(row: str) -> str:
    return row.strip().strip("|").split("|")[0]


def differences(english: str, chinese: str, may_add_glossary: bool = False) -> list[str]:
    """Why ``chinese`` is not a faithful counterpart of ``english`` (empty when it is)."""
    en, zh = outline(english), outline(chinese)
    if may_add_glossary:
        headings = [b for b in zh if b.kind == "heading"]
        if headings and headings[-1].text == GLOSSARY:
            zh = [b for b in zh if b.section < headings[-1].section]
    problems: list[str] = []
    for kind in ("heading", "code", "table"):
        en_k, zh_k = [b for b in en if b.kind == kind], [b for b in zh if b.kind == kind]
        shifted = len(en_k) != len(zh_k)
        if shifted:
            problems.append(f"{len(en_k)} {kind}s in English, {len(zh_k)} in Chinese")
        for n, (e, z) in enumerate(zip(en_k, zh_k, strict=False), 1):
            found = _pair_differences(f"{kind} {n}", e, z)
            problems += found
            if found and shifted:  # the rest is shifted by the added or removed one: say where, once
                problems[-1] += f" (a {kind} is added or missing here or just before)"
                break
    return problems


def _pair_differences(where: str, e: Block, z: Block) -> list[str]:
    if e.kind == "heading":
        where += f" ({'#' * e.level} {e.text})"
        problems = []
        if e.level != z.level:
            problems.append(f"{where}: level {e.level} in English, {z.level} in Chinese ({z.text})")
        if _code_spans(e.text) != _code_spans(z.text):
            problems.append(f"{where}: inline code {_code_spans(e.text)} vs {_code_spans(z.text)} ({z.text})")
        if _IDENTIFIER.match(e.text) and e.text != z.text:
            problems.append(f"{where}: the Chinese heading must keep the name (anchor): {z.text}")
        return problems
    if e.section != z.section:
        return [f"{where}: in section {e.section} in English, {z.section} in Chinese"]
    return _code_differences(where, e, z) if e.kind == "code" else _table_differences(where, e, z)


def _code_differences(where: str, e: Block, z: Block) -> list[str]:
    if e.info != z.info:
        return [f"{where}: ```{e.info} in English, ```{z.info} in Chinese"]
    if len(e.lines) != len(z.lines):
        return [f"{where}: {len(e.lines)} lines in English, {len(z.lines)} in Chinese (first: {e.lines[:1]})"]
    clean = strip_comment if e.info in COMMENTED else str.rstrip
    return [f"{where} line {n}: {a!r} in English, {b!r} in Chinese (only comments may be translated)"
            for n, (a, b) in enumerate(zip(map(clean, e.lines), map(clean, z.lines), strict=True), 1) if a != b]


def _table_differences(where: str, e: Block, z: Block) -> list[str]:
    if len(e.lines) != len(z.lines):
        return [f"{where}: {len(e.lines)} rows in English, {len(z.lines)} in Chinese ({e.lines[0]})"]
    return [f"{where} row {n}: first cell {_first_cell(a)!r} vs {_first_cell(b)!r}"
            for n, (a, b) in enumerate(zip(e.lines, z.lines, strict=True), 1)
            if _code_spans(_first_cell(a)) != _code_spans(_first_cell(b))]


@pytest.mark.parametrize(("english", "chinese"), PAIRS, ids=[zh for _, zh in PAIRS])
def test_the_chinese_file_has_every_section_command_and_table_of_the_english(english: str, chinese: str) -> None:
    problems = differences((ROOT / english).read_text(encoding="utf-8"), (ROOT / chinese).read_text(encoding="utf-8"),
                           may_add_glossary=chinese == "README.zh-CN.md")
    assert not problems, f"{chinese} is out of step with {english}:\n" + "\n".join(problems)


@pytest.mark.parametrize(("english", "chinese"), PAIRS, ids=[zh for _, zh in PAIRS])
def test_each_file_links_its_counterpart_at_the_top(english: str, chinese: str) -> None:
    top_en = "\n".join((ROOT / english).read_text(encoding="utf-8").splitlines()[:4])
    top_zh = "\n".join((ROOT / chinese).read_text(encoding="utf-8").splitlines()[:4])
    assert f"English | [简体中文]({Path(chinese).name})" in top_en
    assert f"[English]({Path(english).name}) | 简体中文" in top_zh


def _anchors(path: Path) -> set[str]:
    blocks = outline(path.read_text(encoding="utf-8"))
    return ({github_anchor(b.text) for b in blocks if b.kind == "heading"}
            | set(_ANCHOR_TAG.findall(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("name", [name for pair in PAIRS for name in pair])
def test_every_relative_link_reaches_a_file_and_heading(name: str) -> None:
    path = ROOT / name
    broken = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{name}: " + "; ".join(broken)


# --- the rule really fails: deliberately broken copies ---------------------------------------------

ENGLISH = """# Tool

## Install

```sh
pip install tool   # the package
tool run --config.file=x.yml
```

| key | meaning |
|---|---|
| `interval` | how often |

## `defaults` for `amazon_sp`

### MarketplaceCheckFailing
"""

CHINESE = """# 工具

## 安装

```sh
pip install tool   # 安装软件包
tool run --config.file=x.yml
```

| 键 | 含义 |
|---|---|
| `interval` | 间隔 |

## `amazon_sp` 的 `defaults`

### MarketplaceCheckFailing

## 术语表
"""


def test_a_faithful_translation_passes_and_only_the_readme_may_add_a_glossary() -> None:
    assert differences(ENGLISH, CHINESE, may_add_glossary=True) == []
    assert differences(ENGLISH, CHINESE) == ["4 headings in English, 5 in Chinese"]


def test_a_section_added_to_one_language_only_fails() -> None:
    added = ENGLISH + "\n## Upgrading\n"
    assert "5 headings in English, 4 in Chinese" in differences(added, CHINESE, may_add_glossary=True)
    assert differences(ENGLISH, CHINESE.replace("## 安装", "### 安装"), may_add_glossary=True) == [
        "heading 2 (## Install): level 2 in English, 3 in Chinese (安装)"]


def test_a_command_added_changed_or_moved_in_one_language_only_fails() -> None:
    added = ENGLISH.replace("tool run --config.file=x.yml\n", "tool run --config.file=x.yml\ntool check\n")
    assert differences(added, CHINESE, may_add_glossary=True) == [
        "code 1: 3 lines in English, 2 in Chinese (first: ['pip install tool   # the package'])"]
    changed = CHINESE.replace("--config.file=x.yml", "--config=x.yml")
    assert differences(ENGLISH, changed, may_add_glossary=True) == [
        "code 1 line 2: 'tool run --config.file=x.yml' in English, 'tool run --config=x.yml' in Chinese "
        "(only comments may be translated)"]
    new_block = ENGLISH + "\n```sh\ntool upgrade\n```\n"
    assert "2 codes in English, 1 in Chinese" in differences(new_block, CHINESE, may_add_glossary=True)


def test_a_renamed_key_a_lost_table_row_or_a_translated_alert_heading_fails() -> None:
    assert differences(ENGLISH, CHINESE.replace("`amazon_sp` 的", "`ebay` 的"), may_add_glossary=True) == [
        "heading 3 (## `defaults` for `amazon_sp`): inline code ['amazon_sp', 'defaults'] vs "
        "['defaults', 'ebay'] (`ebay` 的 `defaults`)"]
    assert differences(ENGLISH, CHINESE.replace("| `interval` | 间隔 |\n", ""), may_add_glossary=True) == [
        "table 1: 2 rows in English, 1 in Chinese (| key | meaning |)"]
    assert differences(ENGLISH, CHINESE.replace("### MarketplaceCheckFailing", "### 检查项失败"),
                       may_add_glossary=True) == [
        "heading 4 (### MarketplaceCheckFailing): the Chinese heading must keep the name (anchor): 检查项失败"]


def test_comments_are_found_outside_quotes_only() -> None:
    assert strip_comment("curl -X DELETE http://h/__sim/faults      # back to healthy") == \
        "curl -X DELETE http://h/__sim/faults"
    assert strip_comment("echo 'a # b' # c") == "echo 'a # b'"
    assert strip_comment("http://am:9093/#/silences") == "http://am:9093/#/silences"
    assert strip_comment("# a whole-line comment") == ""


def test_the_real_readmes_fail_when_one_gains_a_command_or_loses_a_section() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert differences(english, chinese, may_add_glossary=True) == []
    first_command = next(b for b in outline(english) if b.kind == "code").lines[0]
    with_lint = english.replace(first_command, first_command + "\nmake lint", 1)
    assert any(p.startswith("code 1: ") for p in differences(with_lint, chinese, may_add_glossary=True))
    section = re.search(r"^## 性能\n.*?(?=^## )", chinese, flags=re.MULTILINE | re.DOTALL)
    assert section, "README.zh-CN.md has a 性能 section"
    shorter = chinese.replace(section.group(0), "")
    assert any("headings in English" in p for p in differences(english, shorter, may_add_glossary=True))


def test_the_anchor_rule_keeps_chinese_and_drops_full_width_punctuation() -> None:
    """As github-slugger: letters of any script stay, punctuation (，—：（）) goes, spaces → dashes."""
    assert github_anchor("`accounts_files` — 每个卖家一个文件，由 ERP 写入") == \
        "accounts_files--每个卖家一个文件由-erp-写入"
    assert github_anchor("`amazon_sp` 的 `credentials`") == "amazon_sp-的-credentials"
