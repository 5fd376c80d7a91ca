"""Generic HTTP check: one request to any URL (the seller's ERP health, order-sync freshness).

Configured as one ``http_checks[]`` entry; the keys besides name/interval/timeout/tags/site/account
are :class:`HttpParams`. The probe sends one request and classifies it: the status first, then the
JSON assertions, then the extractions (numbers exported as ``marketplace_probe_value{name}``).

"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from marketplace_exporter import __version__
from marketplace_exporter.adapters.base import (
    Marketplace,
    ProbeContext,
    ProbeSteps,
    StrictModel,
    json_document,
    reason_for_status,
)
from marketplace_exporter.adapters.common import finite_number, retry_after_seconds, short
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.header_values import value_problem
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import Secret, SecretUnavailable, parse_secret

USER_AGENT = f"marketplace-exporter/{__version__}"

# --- a tiny JSONPath subset: $  .key  ['key']  [index] ----------------------------------------

_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_BRACKET = re.compile(r"\[(?:(-?\d{1,9})|'([^']*)'|\"([^\"]*)\")\]")
_MISSING: Any = object()


class JsonPathError(ValueError):
    """A JSON path outside the supported subset; the text says where."""


@lru_cache(maxsize=512)
def parse_json_path(path: str) -> tuple[str | int, ...]:
    """``$.orders[0].updated_at`` → ("orders", 0, "updated_at"). No wildcards, filters or slices:
    a check asserts one value, and a small grammar gives exact error messages."""
    if not path.startswith("$"):
        raise JsonPathError(f"JSON path {path!r} must start with '$'")
    steps: list[str | int] = []
    i = 1
    while i < len(path):
        if path[i] == ".":
            match = _KEY.match(path, i + 1)
            if match is None:
                raise JsonPathError(f"JSON path {path!r}: expected a key after '.' at position {i}"
                                    " (use ['key'] for other characters)")
            steps.append(match.group())
        else:
            match = _BRACKET.match(path, i)
            if match is None:
                raise JsonPathError(f"JSON path {path!r}: unexpected {path[i]!r} at position {i};"
                                    " expected .key, ['key'] or [index]")
            index, single, double = match.groups()
            steps.append(int(index) if index is not None else (single if single is not None else double))
        i = match.end()
    return tuple(steps)


def resolve(document: Any, steps: tuple[str | int, ...]) -> Any:
    """The value at ``steps``, or ``_MISSING`` if any step does not exist (never raises)."""
    for step in steps:
        if isinstance(step, str):
            if not isinstance(document, dict) or step not in document:
                return _MISSING
        elif not isinstance(document, list) or not -len(document) <= step < len(document):
            return _MISSING
        document = document[step]
    return document


def json_equal(got: Any, want: Any) -> bool:
    """JSON equality: true is not 1, 1 equals 1.0, containers compare element-wise."""
    if isinstance(got, bool) or isinstance(want, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got == want
    if isinstance(got, int | float) and isinstance(want, int | float):
        return got == want
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(map(json_equal, got, want))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(json_equal(got[k], want[k]) for k in got)
    return type(got) is type(want) and bool(got == want)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = "<unprintable>"
    return short(text, 60)


# --- config models ----------------------------------------------------------------------------


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: what str.isspace() calls whitespace (the same set, found without a Python loop per character)
_SPACE = re.compile(r"\s")
#: header and query names whose values are secret even when written as plain strings
_ALWAYS_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key",
                               "access_token", "token", "api_key", "apikey", "sign", "signature",
                               "password", "secret", "client_secret", "refresh_token"})


class JsonExpectation(StrictModel):
    """``{path: "$.status", equals: "ok"}`` or ``{path: "$.errors[0]", exists: false}``."""

    path: str
    equals: Any = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> JsonExpectation:
        parse_json_path(self.path)
        if ("equals" in self.model_fields_set) == (self.exists is not None):
            raise ValueError(f"expect_json {self.path}: give exactly one of 'equals' or 'exists'")
        return self


class Extraction(StrictModel):
    """A number to export: a JSON value or a header, as is or as seconds since a timestamp."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)
    json_path: str | None = None
    header: str | None = None
    kind: Literal["value", "seconds_since"] = "value"

    @model_validator(mode="after")
    def _one_source(self) -> Extraction:
        if (self.json_path is None) == (self.header is None):
            raise ValueError(f"extract {self.name}: give exactly one of 'json_path' or 'header'")
        if self.json_path is not None:
            parse_json_path(self.json_path)
        if self.header is not None and not _HEADER_NAME.fullmatch(self.header):
            raise ValueError(f"extract {self.name}: {self.header!r} is not a valid header name")
        return self


class HttpParams(StrictModel):
    """One generic check. Header values written ``${ENV}``/``{file: P}``/``{value: V}`` are secrets."""

    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, str | Secret] = Field(default_factory=dict)
    body: str | None = None
    #: empty = any 2xx
    expect_status: tuple[int, ...] = ()
    expect_json: tuple[JsonExpectation, ...] = ()
    extract: tuple[Extraction, ...] = ()

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or _SPACE.search(url):
            raise ValueError("url must be an absolute http:// or https:// URL without spaces")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry user:password; use an Authorization header with a "
                             "${ENV} or {file: ...} secret")
        return url

    @field_validator("headers", mode="before")
    @classmethod
    def _secret_headers(cls, raw: object) -> object:
        if not isinstance(raw, Mapping):
            return raw
        return {name: parse_secret(value) if _is_secret_spelling(value) else value
                for name, value in raw.items()}

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, statuses: tuple[int, ...]) -> tuple[int, ...]:
        bad = [s for s in statuses if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"expect_status values must be HTTP statuses 100-599, got {bad}")
        return statuses

    @model_validator(mode="after")
    def _consistent(self) -> HttpParams:
        seen: set[str] = set()
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name) or name.lower() in seen:
                raise ValueError(f"header {name!r} is not a valid header name or is given twice")
            seen.add(name.lower())
            if isinstance(value, str) and value_problem(value) is not None:
                raise ValueError(f"header {name!r} value must not contain line breaks or other control characters")
        if self.body is not None and self.method != "POST":
            raise ValueError("body is only allowed with method POST")
        wants_json = self.expect_json or any(e.json_path for e in self.extract)
        if self.method == "HEAD" and wants_json:
            raise ValueError("method HEAD returns no body: expect_json and json_path extractions "
                             "need GET or POST")
        names = [e.name for e in self.extract]
        if len(names) != len(set(names)):
            raise ValueError("extract names must be unique within a check")
        return self


def _is_secret_spelling(value: object) -> bool:
    if isinstance(value, str):
        return value.startswith("${") and value.endswith("}")
    return isinstance(value, dict)


# --- the adapter ------------------------------------------------------------------------------


class HttpCheck(Marketplace[None, HttpParams]):
    """Any URL, classified by status, JSON assertions and extractions. Not a marketplace: no
    account (credentials None, secrets are header values), no platform codes, no production traffic."""

    name = "http"
    #: steps catch an unavailable header secret themselves and read() asks Retry-After for a 429
    plain_steps = True
    Credentials = type(None)
    Params = HttpParams
    #: empty: a generic check is not tied to a marketplace site (site is a free label here)
    sites = frozenset()
    operations = {
        # no platform, so no documented limit: the interval in config is the only budget
        "request": Operation("request", "One HTTP request to the configured URL",
                             default_interval_seconds=60.0),
    }

    def steps(self, ctx: ProbeContext[None, HttpParams]) -> ProbeSteps:
        params = ctx.params
        # no secret headers: the request never changes (secret files may be rotated, so requests
        # carrying secrets are rebuilt every time)
        configured = params.headers
        key = None if configured and any(isinstance(value, Secret) for value in configured.values()) else (
            params.method, params.url, params.body, tuple(configured.items()))
        parts = _REQUESTS.get(key) if key is not None else None
        if parts is not None:
            method, url, query, headers, body = parts
            # no secret header: only the names always treated as secret (one shared frozenset)
            request = RequestSpec(method, url, query, headers, body, Step.CALL, _ALWAYS_SENSITIVE)
        else:
            built = build_request(params)
            if isinstance(built, ProbeOutcome):
                return built
            request = built
            if key is not None and len(_REQUESTS) < MAX_CACHED_REQUESTS:
                _REQUESTS[key] = (request.method, request.url, request.query, request.headers, request.body)
        response = yield request
        return read(params, response, ctx.now)


#: (method, url, body, headers) → the request's parts, for checks without secret headers: a request
#: depends on nothing else, and rebuilding one (URL split, query parsed) cost ~3x making it from its
#: parts. Parts are strings, bytes and tuples of them, which the garbage collector stops tracking:
#: cached RequestSpecs were thousands of objects in its oldest generation, walked by every full
#: collection with the event loop stalled (50,000 checks). Full, it admits no more (clearing it
#: made it churn at 50,000 checks); the checks beyond it build their request per probe.
_REQUESTS: dict[tuple[str, str, str | None, tuple[tuple[str, str | Secret], ...]],
                tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], bytes | None]] = {}
MAX_CACHED_REQUESTS = 4096


def build_request(params: HttpParams) -> RequestSpec | ProbeOutcome:
    """The request for a check (secret header values revealed), or the failure if one is unavailable."""
    headers: list[tuple[str, str]] = []
    sensitive = set(_ALWAYS_SENSITIVE)
    try:
        for name, value in params.headers.items():
            if isinstance(value, Secret):
                value = value.reveal()
                sensitive.add(name.lower())
            headers.append((name.lower(), value))
    except SecretUnavailable as exc:
        return ProbeOutcome.failed(Reason.AUTH, short(f"header secret unavailable: {exc}"))
    if not any(name == "user-agent" for name, _ in headers):
        headers.append(("user-agent", USER_AGENT))
    parts = urlsplit(params.url)
    return RequestSpec(
        method=params.method,
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        headers=tuple(headers),
        body=params.body.encode() if params.body is not None else None,
        step=Step.CALL,
        sensitive=frozenset(sensitive),
    )


def read(params: HttpParams, response: HttpResponse, now: float) -> ProbeOutcome:
    """Status, then JSON assertions, then extractions: the first failure decides."""
    status = response.status
    wanted = status in params.expect_status if params.expect_status else 200 <= status <= 299
    if not wanted:
        # an unwanted 4xx/5xx keeps its meaning; an unwanted 1xx/2xx/3xx broke an expectation
        reason = reason_for_status(status) or Reason.ASSERTION_FAILED
        expected = ",".join(map(str, params.expect_status)) or "2xx"
        throttled = reason is Reason.THROTTLED
        retry = retry_after_seconds(response.header("retry-after"), now) if throttled else None
        return ProbeOutcome.failed(reason, f"HTTP {status}, expected {expected}", http_status=status,
                                   retry_after_seconds=retry)
    document: Any = _MISSING
    if params.expect_json or any(e.json_path for e in params.extract):
        try:
            document = json_document(response.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "body is not JSON", http_status=status)
    for expectation in params.expect_json:
        got = resolve(document, parse_json_path(expectation.path))
        if expectation.exists is not None:
            if (got is not _MISSING) != expectation.exists:
                want = "present" if expectation.exists else "absent"
                return ProbeOutcome.failed(Reason.ASSERTION_FAILED,
                                           f"{expectation.path}: expected {want}, got {_show(got)}",
                                           http_status=status)
        elif got is _MISSING or not json_equal(got, expectation.equals):
            return ProbeOutcome.failed(Reason.ASSERTION_FAILED,
                                       f"{expectation.path}: expected {_show(expectation.equals)}, "
                                       f"got {_show(got)}", http_status=status)
    values: list[tuple[str, float]] = []
    for extraction in params.extract:
        if extraction.json_path is not None:
            source, raw = extraction.json_path, resolve(document, parse_json_path(extraction.json_path))
        else:
            header = response.header(extraction.header or "")
            source, raw = f"header {extraction.header}", _MISSING if header is None else header
        number = _extract(raw, extraction.kind, now)
        if number is None:
            what = "a number" if extraction.kind == "value" else "a timestamp"
            text = f"extract {extraction.name}: {source} is not {what} (got {_show(raw)})"
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE, text, http_status=status)
        values.append((extraction.name, number))
    if values:
        return ProbeOutcome.ok(status, values=tuple(values))
    ok = _OK.get(status)
    if ok is None:
        ok = _OK[status] = ProbeOutcome.ok(status)  # wanted statuses: a handful, bounded by 100-599
    return ok


#: the plain success per HTTP status (an outcome is immutable, so every probe can share it)
_OK: dict[int, ProbeOutcome] = {}


#: Unix seconds beyond this are not seconds (milliseconds, most likely): refuse to guess
_MAX_UNIX_SECONDS = 1e11


def _extract(raw: Any, kind: str, now: float) -> float | None:
    if raw is _MISSING or raw is None:
        return None
    if kind == "value":
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        return finite_number(raw) if not isinstance(raw, str) else _numeric_string(raw)
    moment = finite_number(raw) if not isinstance(raw, str) else _numeric_string(raw)
    if moment is None and isinstance(raw, str):
        moment = _parse_timestamp(raw)
    if moment is None or not 0 <= moment < _MAX_UNIX_SECONDS:
        return None
    return now - moment


def _numeric_string(text: str) -> float | None:
    text = text.strip()
    if not text or len(text) > 40:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_timestamp(text: str) -> float | None:
    """ISO-8601 (naive = UTC) or an HTTP-date such as a Last-Modified header."""
    text = text.strip()[:64]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, ValueError, OSError):
        return None
