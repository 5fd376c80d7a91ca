"""Secret values that cannot leak by accident.

A :class:`Secret` prints as ``<secret>`` in ``repr``/``str``/f-strings, so a secret that reaches a log
line, an error message, a page or a debug dump shows up as that marker instead of its value. Code
that really needs the value calls :meth:`Secret.reveal`, and every revealed value is held by
:data:`REDACTOR` while the secret exists; the logging filter and the ``/probe?debug=true`` output
run it over their text as a last line of defence. The redactor forgets values no longer current
(bounded; see :class:`Redactor`).

Config accepts three spellings (see ``config.py``): ``${ENV_VAR}``, ``{file: PATH}`` (re-read when
the file changes, so a seller's ERP can rotate a token in place) and ``{value: LITERAL}``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REDACTED = "<redacted>"


class Redactor:
    """Replaces every current secret value in a text by ``<redacted>``, and forgets old ones.

    A value is *current* while some owner holds it (:meth:`hold`): a :class:`Secret` (until it is
    garbage-collected, e.g. after a reload replaced it), a token file's path, the engine's token
    cache entry for one account. When an owner's value changes (a rotated token, a re-minted
    15-minute Walmart token) or the owner goes away, the old value moves to a small grace set of
    :data:`GRACE` recent values, so a log line written just after a rotation is still redacted,
    and then it is forgotten: the set no longer grows with every token ever minted. Values
    registered without an owner (:meth:`register`) live in the same bounded grace set.

    With many current values (thousands of accounts) a text is scanned once, looking up each
    position's last :data:`KEY` characters in an index kept up to date as values come and go,
    instead of once per value. Values shorter than 4 characters are never registered: replacing
    them would mangle ordinary text and they are not meaningful secrets anyway.
    """

    #: recently replaced, released or ownerless values kept (least recently registered go first)
    GRACE = 256
    #: above this many values a text is scanned once with the index instead of once per value
    INDEX_ABOVE = 64
    #: values at least this long are indexed by their last KEY characters (a token's random end:
    #: tokens of one issuer share long prefixes, such as a JWT header or ``Atza|``)
    KEY = 8
    _MIN = 4

    def __init__(self) -> None:
        self._held: dict[Hashable, str] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        #: value → holders + (1 if in the grace set); a value is redacted while this is > 0
        self._refs: dict[str, int] = {}
        self._index: dict[str, tuple[str, ...]] = {}
        self._short: set[str] = set()
        self._lock = threading.Lock()
        #: every value longest first, rebuilt lazily while there are few (the per-value loop)
        self._few: tuple[str, ...] | None = ()

    def hold(self, owner: Hashable, value: str) -> None:
        """``owner``'s current value is ``value`` (its previous one goes to the grace set)."""
        if self._held.get(owner) == value:  # the hot path: a secret revealed again, unchanged
            return
        with self._lock:
            self._release(owner)
            if len(value) >= self._MIN:
                self._held[owner] = value
                self._ref(value, +1)

    def release(self, owner: Hashable) -> None:
        """``owner`` holds nothing any more (its value goes to the grace set)."""
        if owner in self._held:
            with self._lock:
                self._release(owner)

    def register(self, value: str) -> None:
        """A value with no owner to say when it stops being current: kept in the grace set."""
        if len(value) < self._MIN:
            return
        with self._lock:
            self._remember(value)

    def __len__(self) -> int:
        """How many distinct values are redacted now (current plus grace)."""
        return len(self._refs)

    def _release(self, owner: Hashable) -> None:
        old = self._held.pop(owner, None)
        if old is not None:
            self._remember(old)
            self._ref(old, -1)

    def _remember(self, value: str) -> None:
        if value in self._recent:
            self._recent.move_to_end(value)
            return
        self._recent[value] = None
        self._ref(value, +1)
        while len(self._recent) > self.GRACE:
            forgotten, _ = self._recent.popitem(last=False)
            self._ref(forgotten, -1)

    def _ref(self, value: str, change: int) -> None:
        count = self._refs.get(value, 0) + change
        if count > 0:
            if value not in self._refs:
                self._add(value)
            self._refs[value] = count
        elif value in self._refs:
            del self._refs[value]
            self._remove(value)

    def _add(self, value: str) -> None:
        self._few = None
        if len(value) < self.KEY:
            self._short.add(value)
            return
        key = value[-self.KEY:]
        self._index[key] = tuple(sorted((*self._index.get(key, ()), value), key=len, reverse=True))

    def _remove(self, value: str) -> None:
        self._few = None
        if len(value) < self.KEY:
            self._short.discard(value)
            return
        key = value[-self.KEY:]
        left = tuple(other for other in self._index.get(key, ()) if other != value)
        if left:
            self._index[key] = left
        else:
            self._index.pop(key, None)

    def _loop_values(self) -> tuple[str, ...]:
        """What is checked one value at a time, longest first: everything while there are few
        values, else only the values too short for the index."""
        few = self._few
        if few is None:
            with self._lock:
                many = len(self._refs) > self.INDEX_ABOVE
                few = self._few = tuple(sorted(self._short if many else self._refs, key=len, reverse=True))
        return few

    def redact(self, text: str) -> str:
        loop = self._loop_values()
        if len(self._refs) > self.INDEX_ABOVE:
            text = _redact_indexed(text, self._index, self.KEY)
        for value in loop:
            if value in text:
                text = text.replace(value, REDACTED)
        return redact_named(text)


#: credentials recognisable by their NAME whatever their value, as debug traces redact them: a
#: per-request signature, a header written as a plain string, a token the exporter never saw (an
#: upstream echoing the request into its error body showed them on the status page, issue 14).
#: ``name=value``, ``name: value``, ``"name": "value"``; ``Bearer``/``Basic`` credentials too.
_SECRET_NAMES = (r"x-amz-access-token|wm_sec\.access_token|access[_-]token|refresh[_-]token|id_token|"
                 r"client[_-]secret|app[_-]secret|partner[_-]key|x-api-key|api[_-]?key|password|passwd|"
                 r"secret|signature|sign|token|proxy-authorization|authorization|set-cookie|cookie")
_NAMED_SECRET = re.compile(
    rf"""(?i)(?<![\w.-])((?:{_SECRET_NAMES})"?\s*[=:]\s*"?)(?:(?:bearer|basic|token)\s+)?"""
    rf"""(?!(?:(?:bearer|basic|token)\s+)?{re.escape(REDACTED)})[^\s&;,"'<>]+""")
_SCHEME_CREDENTIAL = re.compile(rf"(?i)\b(bearer|basic)\s+(?!{re.escape(REDACTED)})[A-Za-z0-9._~+/=|:-]{{6,}}")


def redact_named(text: str) -> str:
    """``text`` with the values of credential-named fields and Bearer/Basic credentials replaced."""
    if "=" in text or ":" in text:
        text = _NAMED_SECRET.sub(lambda found: f"{found.group(1)}{REDACTED}", text)
    if "earer" in text or "asic" in text:
        text = _SCHEME_CREDENTIAL.sub(lambda found: f"{found.group(1)} {REDACTED}", text)
    return text


def _redact_indexed(text: str, index: dict[str, tuple[str, ...]], width: int) -> str:
    """One pass over ``text`` finding every indexed value (by the characters it ends with); the
    union of what they cover is replaced, so overlapping secrets leave no part of either."""
    spans: list[tuple[int, int]] = []
    for end in range(width, len(text) + 1):
        candidates = index.get(text[end - width:end])
        if candidates is not None:
            spans += ((end - len(value), end) for value in candidates
                      if len(value) <= end and text.startswith(value, end - len(value)))
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    last = 0
    start, stop = spans[0]
    for begin, end in spans[1:]:
        if begin <= stop:
            stop = max(stop, end)
            continue
        out += (text[last:start], REDACTED)
        last, start, stop = stop, begin, end
    out += (text[last:start], REDACTED, text[stop:])
    return "".join(out)


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


#: False inside :func:`syntax_only`
_SECRETS_CHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar("secrets_checked", default=True)


def secrets_checked() -> bool:
    """Whether config validation reads secrets and the files a config names (token files, CA
    bundles): always, except in ``check-config --syntax-only``."""
    return _SECRETS_CHECKED.get()


@contextlib.contextmanager
def syntax_only() -> Iterator[None]:
    """Validate structure, types and references only: environment variables may be unset and
    secret, token and CA files missing (a CI lint of the config a deployment will fill in)."""
    token = _SECRETS_CHECKED.set(False)
    try:
        yield
    finally:
        _SECRETS_CHECKED.reset(token)


class SecretUnavailable(Exception):
    """The secret's source cannot be read now (env var unset, file missing)."""


@dataclass(eq=False)
class Secret:
    """A credential value plus where it comes from; never printable."""

    source: str  # "env" | "file" | "value"
    ref: str  # variable name, file path, or the literal value for "value"
    _cache: tuple[float, str] | None = field(default=None, repr=False)
    #: a weak reference to this object whose callback releases its value from the redactor
    _owner: weakref.ref[Secret] | None = field(default=None, repr=False, compare=False)

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
        """Why the secret cannot be read now, or None: used to validate config up front (never
        read under :func:`syntax_only`: CI lints a config whose secrets exist only in production)."""
        if not secrets_checked():
            return None
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
        owner = ("secret", id(self))
        if self._owner is None or self._owner() is not self:  # first reveal (a copy gets its own)
            # the value stays redacted while this Secret exists, and is forgotten after it goes
            self._owner = weakref.ref(self, _releaser(owner))
        REDACTOR.hold(owner, value)
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


def _releaser(owner: Hashable) -> Callable[[weakref.ref[Secret]], None]:
    """The weak reference's callback: the Secret is gone, so is its claim on its value."""
    def release(_: weakref.ref[Secret]) -> None:
        REDACTOR.release(owner)
    return release


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
