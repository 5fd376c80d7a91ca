"""Logs in logfmt by default (like Prometheus and Alertmanager) or JSON lines: one record per line
whatever the message holds, readable back by a logfmt/JSON parser, and never a secret in either."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from marketplace_exporter import cli
from marketplace_exporter.secrets import REDACTED, REDACTOR
from marketplace_exporter.serving import setup_logging

SECRET = "shpk-9f8e7d6c5b4a-very-secret"
MULTILINE = 'config reload failed:\n  config.yml:3: accounts[0].base_url: "bad" = wrong\n  second line\ttab'

#: logfmt as go-logfmt reads it: key=bare or key="quoted with \\ escapes", separated by one space
_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"=]*)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        match = _PAIR.match(line, pos)
        assert match is not None, f"not logfmt at {pos}: {line[pos:pos + 40]!r}"
        key, raw = match.groups()
        fields[key] = json.loads(raw) if raw.startswith('"') else raw
        pos = match.end()
    return fields


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the process's stderr would get (the root logger's handlers restored afterwards)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    REDACTOR.hold("test_log_format", SECRET)
    try:
        yield io.StringIO()
    finally:
        REDACTOR.release("test_log_format")
        root.handlers[:] = saved
        root.setLevel(level)


def setup(stream: io.StringIO, level: str, *log_format: str) -> None:
    """setup_logging as the CLI calls it, its stderr handler pointed at ``stream``."""
    setup_logging(level, *log_format)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def _log_everything() -> None:
    log = logging.getLogger("marketplace_exporter.test")
    log.info("token exchange with %s done", SECRET)
    log.warning(MULTILINE)
    log.debug("only at debug")
    try:
        raise RuntimeError(f"upstream echoed Authorization: Bearer {SECRET}\nsecond line")
    except RuntimeError:
        log.exception("probe crashed for 店铺 %s", "深圳")


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_every_record_is_one_parseable_line_without_the_secret(captured: io.StringIO, log_format: str) -> None:
    setup(captured, "info", log_format)
    _log_everything()
    out = captured.getvalue()
    assert SECRET not in out
    lines = out.splitlines()
    assert len(lines) == 3  # info, warning, exception; no debug
    records = [json.loads(line) if log_format == "json" else parse_logfmt(line) for line in lines]
    assert [r["level"] for r in records] == ["info", "warn", "error"]
    assert records[0]["msg"] == f"token exchange with {REDACTED} done"
    assert records[1]["msg"] == MULTILINE  # newlines, quotes, '=' and tabs survive the round trip
    assert records[2]["msg"] == "probe crashed for 店铺 深圳"
    assert records[2]["err"].startswith("Traceback (most recent call last):\n")
    assert f"Bearer {REDACTED}\nsecond line" in records[2]["err"]
    for record in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
        assert record["caller"].startswith("test_log_format.py:")
        assert record["logger"] == "marketplace_exporter.test"


def test_logfmt_is_the_default_and_keys_come_in_prometheus_order(captured: io.StringIO) -> None:
    setup(captured, "debug")
    logging.getLogger("marketplace_exporter.test").debug("ready")
    line = captured.getvalue().rstrip("\n")
    assert re.fullmatch(r"ts=\S+ level=debug caller=test_log_format\.py:\d+ logger=marketplace_exporter\.test "
                        r"msg=ready", line)


@pytest.mark.parametrize("argv", [
    ["--log.level=debug", "--log.format=json", "run", "--config.file=x.yml"],
    ["run", "--config.file=x.yml", "--log.level=debug", "--log.format=json"],
    ["check-config", "x.yml", "--log.level=debug", "--log.format=json"],
    ["bridge", "--config.file=b.yml", "--log.level=debug", "--log.format=json"],
    ["alerts", "history", "--log.level=debug", "--log.format=json"],
    ["deploys", "list", "--log.level=debug", "--log.format=json"],
    ["demo", "--log.level=debug", "--log.format=json"],
])
def test_log_flags_are_accepted_before_and_after_every_subcommand(argv: list[str]) -> None:
    args = cli._parser().parse_args(argv)
    assert (args.log_level, args.log_format) == ("debug", "json")


def test_a_subcommand_without_log_flags_keeps_the_top_level_ones() -> None:
    args = cli._parser().parse_args(["--log.level=warn", "check-config", "x.yml"])
    assert (args.log_level, args.log_format) == ("warn", "logfmt")
