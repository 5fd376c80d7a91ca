"""Secret values that cannot leak by accident.

A :class:`Secret` prints as ``<secret>`` in ``repr``/``str``/f-strings, so a secret that reaches a log
line, an error message, a page or a debug dump shows up as that marker instead of its value. Code
that really needs the value calls :meth:`Secret.reveal`, and every revealed value is registered with
:data:`REDACTOR`, which the logging filter and the ``/probe?debug=true`` output run over their text as
a last line of defence.

Config accepts three spellings (see ``config.py``): ``${ENV_VAR}``, ``{file: PATH}`` (re-read when
the file changes, so a seller's ERP can rotate a token in place) and ``{value: LITERAL}``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

REDACTED = "<redacted>"


class Redactor:
    """Replaces every known secret value in a text by ``<redacted>``.

    Values shorter than 4 characters are not registered: replacing them would mangle ordinary text
    and they are not meaningful secrets anyway.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if len(value) >= 4:
            with self._lock:
                self._values.add(value)

    def redact(self, text: str) -> str:
        if not self._values:
            return text
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


#: process-wide: a secret revealed anywhere is redacted everywhere
REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    """Logging filter that renders the message and removes every known secret from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = REDACTOR.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # tracebacks can quote values too: render them now, redacted
            formatter = logging.Formatter()
            record.exc_text = REDACTOR.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


class SecretUnavailable(Exception):
    """The secret's source cannot be read now (env var unset, file missing)."""


@dataclass(eq=False)
class Secret:
    """A credential value plus where it comes from; never printable."""

    source: str  # "env" | "file" | "value"
    ref: str  # variable name, file path, or the literal value for "value"
    _cache: tuple[float, str] | None = field(default=None, repr=False)

    @classmethod
    def literal(cls, value: str) -> Secret:
        return cls("value", value)

    def describe(self) -> str:
        """Where the secret comes from, safe to print (never the value)."""
        if self.source == "env":
            return f"${{{self.ref}}}"
        if self.source == "file":
            return f"file {self.ref}"
        return "literal value"

    def check_available(self) -> str | None:
        """Why the secret cannot be read now, or None: used to validate config up front."""
        try:
            self.reveal()
        except SecretUnavailable as exc:
            return str(exc)
        return None

    def reveal(self) -> str:
        """The value. File secrets are re-read when their mtime changes (rotation in place)."""
        if self.source == "value":
            value = self.ref
        elif self.source == "env":
            value = os.environ.get(self.ref, "")
            if not value:
                raise SecretUnavailable(f"environment variable {self.ref} is not set or empty")
        else:
            value = self._read_file()
        REDACTOR.register(value)
        return value

    def _read_file(self) -> str:
        path = Path(self.ref)
        try:
            mtime = path.stat().st_mtime
            if self._cache is not None and self._cache[0] == mtime:
                return self._cache[1]
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretUnavailable(f"cannot read secret file {self.ref}: {exc.strerror}") from None
        if not value:
            raise SecretUnavailable(f"secret file {self.ref} is empty")
        self._cache = (mtime, value)
        return value

    def __repr__(self) -> str:
        return f"Secret({self.describe()})" if self.source != "value" else "Secret(<secret>)"

    def __str__(self) -> str:
        return "<secret>"

    def __format__(self, spec: str) -> str:
        return "<secret>"


def parse_secret(raw: object) -> Secret:
    """Config spelling → Secret. Error texts never quote the value (it may be the secret)."""
    if isinstance(raw, Secret):
        return raw
    if isinstance(raw, str):
        if raw.startswith("${") and raw.endswith("}") and len(raw) > 3:
            name = raw[2:-1]
            if not name.replace("_", "").isalnum():
                raise ValueError(f"expected ${{ENV_VAR}} with a valid variable name, got '{raw}'")
            return Secret("env", name)
        raise ValueError(
            "expected ${ENV_VAR}, {file: PATH} or {value: LITERAL}, got a plain string "
            "(write secrets as a reference, or as {value: ...} to mark a literal as secret)")
    if isinstance(raw, dict) and len(raw) == 1:
        ((key, value),) = raw.items()
        if key in ("file", "value") and isinstance(value, str) and value:
            return Secret(key, value)
    raise ValueError(f"expected ${{ENV_VAR}}, {{file: PATH}} or {{value: LITERAL}}, got {type(raw).__name__}")


def _secret_core_schema(cls: type, source: object, handler: object) -> object:
    from pydantic_core import core_schema

    return core_schema.no_info_plain_validator_function(
        parse_secret,
        serialization=core_schema.plain_serializer_function_ser_schema(lambda s: str(s)),
    )


def _secret_json_schema(cls: type, core: object, handler: object) -> dict[str, object]:
    return {
        "description": "A secret: ${ENV_VAR}, {file: PATH} or {value: LITERAL}",
        "anyOf": [
            {"type": "string", "pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"},
            {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"],
             "additionalProperties": False},
            {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"],
             "additionalProperties": False},
        ],
    }


Secret.__get_pydantic_core_schema__ = classmethod(_secret_core_schema)  # type: ignore[attr-defined]
Secret.__get_pydantic_json_schema__ = classmethod(_secret_json_schema)  # type: ignore[attr-defined]
