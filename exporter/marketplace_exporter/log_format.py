"""Log lines the way Prometheus and Alertmanager write them: logfmt by default, JSON on request.

    ts=2026-12-06T05:40:00.123Z level=info caller=app.py:85 logger=marketplace_exporter.server.app msg=...
    {"ts": "2026-12-06T05:40:00.123Z", "level": "info", "caller": "app.py:85", "logger": "...", "msg": ...}

One record is always one line, whatever the message holds: a multi-line message (a config error
listing every problem) and a traceback (``err=``) are escaped, so a log shipper (Loki, Fluent Bit,
Vector) that splits on newlines keeps a record whole and its logfmt/JSON parser reads it back.
The secret redactor runs before these formatters (a filter on the handler): they format what it
left, and the traceback text it rendered (``record.exc_text``).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime

from marketplace_exporter.secrets import REDACTOR

#: go-kit's level names (Prometheus, Alertmanager); Python's WARNING is ``warn`` there
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
                logging.CRITICAL: "error"}

#: what ``--log.level`` accepts (``warning`` too: the flag accepted it before it followed Prometheus)
LEVELS = ("debug", "info", "warn", "warning", "error")
FORMATS = ("logfmt", "json")


def python_level(level: str) -> int:
    return logging.WARNING if level in ("warn", "warning") else logging.getLevelNamesMapping()[level.upper()]


def _fields(record: logging.LogRecord) -> list[tuple[str, str]]:
    ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"
    fields = [("ts", ts), ("level", _LEVEL_NAMES.get(record.levelno, record.levelname.lower())),
              ("caller", f"{record.filename}:{record.lineno}"), ("logger", record.name),
              ("msg", record.getMessage())]
    error = record.exc_text
    if not error and record.exc_info and record.exc_info[1] is not None:
        # a handler without the redacting filter (tests): render it here
        error = logging.Formatter().formatException(record.exc_info)
    if error:
        fields.append(("err", error))
    if record.stack_info:  # the redacting filter leaves stack_info alone
        fields.append(("stack", REDACTOR.redact(record.stack_info)))
    return fields


def _logfmt_value(value: str) -> str:
    """A bare value when that reads back unchanged, else a double-quoted one with ``\\``, ``"`` and
    control characters escaped (newlines as ``\\n``: the record stays on one line)."""
    if value and all(ch > " " and ch not in '"=\\' and ch.isprintable() for ch in value):
        return value
    # json.dumps quotes and escapes exactly what logfmt parsers (go-logfmt) unescape
    return json.dumps(value, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # ensure_ascii=False: Chinese text stays readable; JSON escapes newlines anyway
        return json.dumps(dict(_fields(record)), ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "logfmt":
        return LogfmtFormatter()
    raise ValueError(f"unknown log format {log_format!r}: expected one of {', '.join(FORMATS)}")


def add_log_flags(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """``--log.level`` and ``--log.format``. On the top-level parser they carry the defaults; on
    every subcommand they default to "not given" so ``marketplace-exporter --log.level=debug run``
    and ``marketplace-exporter run --log.level=debug`` both work (the later one wins)."""
    parser.add_argument("--log.level", dest="log_level", choices=LEVELS,
                        default="info" if top_level else argparse.SUPPRESS,
                        help="only log messages of this level or more severe (default info)")
    parser.add_argument("--log.format", dest="log_format", choices=FORMATS,
                        default="logfmt" if top_level else argparse.SUPPRESS,
                        help="logfmt (default, like Prometheus and Alertmanager) or json (one object per line)")


def add_log_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """The log flags on ``parser`` and on every subcommand below it (nested ones too)."""
    add_log_flags(parser, top_level=True)
    _add_to_subcommands(parser)


def _add_to_subcommands(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                add_log_flags(sub)
                _add_to_subcommands(sub)


__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "LogfmtFormatter", "add_log_flags", "add_log_flags_everywhere",
           "formatter", "python_level"]
