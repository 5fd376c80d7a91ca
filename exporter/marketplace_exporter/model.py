"""Plain values passed between adapters and the engine: requests to send, responses received,
and what a probe found out. No I/O, no clocks: adapters stay pure and tests feed them literals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.secrets import REDACTED, REDACTOR


@dataclass(slots=True, unsafe_hash=True)
class RequestSpec:
    """One HTTP request an adapter wants sent. ``url`` has no query string; ``query`` holds it.
    Made per probe, hence not frozen (a frozen dataclass pays ``object.__setattr__`` per field:
    1.09 against ~0.3 µs here); nobody changes one, and it still hashes and compares by value."""

    method: str
    url: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    step: Step = Step.CALL
    #: names of query parameters and headers whose values are secret (tokens, signatures):
    #: the debug output prints them as <redacted>
    sensitive: frozenset[str] = frozenset()


@dataclass(slots=True, unsafe_hash=True)
class HttpResponse:
    """What came back. Header names are lower-cased by the engine. A body over the engine's byte
    limit never reaches an adapter: the engine classifies it as ``invalid_response`` itself.
    Not frozen for the same reason as :class:`RequestSpec`; nobody changes one."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class RateLimitObservation:
    """Headroom for one rate limit, with where it comes from. Each field only when known: a ratio
    needs both the remaining count and the limit, so Walmart's bare token count gives ``remaining``
    and ``reset_at`` but no ratio unless the limit is known."""

    remaining_ratio: float | None
    source: RateLimitSource
    #: the rate in requests per second if the platform stated it (SP-API x-amzn-RateLimit-Limit)
    limit_per_second: float | None = None
    #: requests left in the current window (eBay ``remaining``, Walmart ``x-current-token-count``)
    remaining: float | None = None
    #: the window's size in requests (eBay ``limit``)
    limit: float | None = None
    #: Unix time the window resets or the next token arrives (eBay ``reset``, Walmart next-replenish)
    reset_at: float | None = None


@dataclass(frozen=True)
class CredentialObservation:
    """A credential's expiry as Unix time."""

    credential: Credential
    expires_at: float


class ProbeOutcome(NamedTuple):
    """What an answer says: the one result type of every adapter, for a whole probe and for one
    production call alike (``Adapter.classify``). ``reason`` None means success.

    ``code`` is the platform's own error code (raw; the engine and the traffic classifier fold codes
    outside ``known_codes`` into ``other``). ``text`` is the raw human detail; read :attr:`message`,
    which redacts and bounds it. The split is what keeps production traffic cheap: a classifier
    decides the labels and keeps the words, and only a probe (status page, logs) pays for turning
    them into a safe one-line message. A tuple, because one is made per failed production call on
    the caller's path and a tuple is the cheapest immutable object (a frozen dataclass costs
    several times as much to make)."""

    success: bool
    reason: Reason | None = None
    code: str | None = None
    #: raw detail, possibly hostile (a body excerpt): never shown as is, see :attr:`message`
    text: str = ""
    http_status: int | None = None
    retry_after_seconds: float | None = None
    rate_limit: RateLimitObservation | None = None
    credentials: tuple[CredentialObservation, ...] = ()
    values: tuple[tuple[str, float], ...] = ()

    @property
    def message(self) -> str:
        """A short text for humans (status page, logs): one line, bounded, every known secret
        redacted, whatever the platform put in its body."""
        return short(self.text) if self.text else ""

    def __repr__(self) -> str:  # the raw text stays out of reprs (logs, assertion output)
        return (f"ProbeOutcome(success={self.success}, reason={self.reason}, code={self.code!r}, "
                f"message={self.message!r}, http_status={self.http_status}, "
                f"retry_after_seconds={self.retry_after_seconds}, rate_limit={self.rate_limit}, "
                f"credentials={self.credentials}, values={self.values})")

    @classmethod
    def ok(cls, http_status: int | None, message: str = "", *, values: tuple[tuple[str, float], ...] = (),
           credentials: tuple[CredentialObservation, ...] = (),
           rate_limit: RateLimitObservation | None = None) -> ProbeOutcome:
        return cls(True, None, None, message, http_status, None, rate_limit, credentials, values)

    @classmethod
    def failed(cls, reason: Reason, message: str, *, code: str | None = None, http_status: int | None = None,
               retry_after_seconds: float | None = None, rate_limit: RateLimitObservation | None = None,
               credentials: tuple[CredentialObservation, ...] = (),
               values: tuple[tuple[str, float], ...] = ()) -> ProbeOutcome:
        return cls(False, reason, code, message, http_status, retry_after_seconds, rate_limit, credentials,
                   values)

    def with_credentials(self, first: tuple[CredentialObservation, ...]) -> ProbeOutcome:
        """This outcome with ``first`` (e.g. configured deadlines) before what the answer showed."""
        return self.amended(credentials=first + self.credentials) if first else self

    def amended(self, *, values: tuple[tuple[str, float], ...] | None = None,
                rate_limit: RateLimitObservation | None = None,
                credentials: tuple[CredentialObservation, ...] | None = None,
                retry_after_seconds: float | None = None) -> ProbeOutcome:
        """This outcome with the given fields replaced (None: kept)."""
        return ProbeOutcome(self.success, self.reason, self.code, self.text, self.http_status,
                            self.retry_after_seconds if retry_after_seconds is None else retry_after_seconds,
                            self.rate_limit if rate_limit is None else rate_limit,
                            self.credentials if credentials is None else credentials,
                            self.values if values is None else values)


#: a success without a platform code, detail or headroom (shared: classification is on the hot path)
SUCCESS = ProbeOutcome(True)


class Minted(NamedTuple):
    """An access token the exporter minted (non-rotating grants only) and when it expires."""

    token: str
    expires_at: float


class ProbeFailed(Exception):
    """Ends a probe early with ``outcome`` (a dead token exchange, an unusable credential): raised by
    step helpers so the adapter's flow reads straight; the adapter base returns the outcome."""

    def __init__(self, outcome: ProbeOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


_WHITESPACE = re.compile(r"\s+")
#: larger than any token we reveal, so a secret is redacted before the text is cut
_REDACT_WINDOW = 8192


def short(text: str, limit: int = 160) -> str:
    """A one-line, redacted, bounded text (bodies can be hostile, and can quote a secret)."""
    text = REDACTOR.redact(text[:_REDACT_WINDOW])
    if text.isprintable():
        # printable text has no whitespace but the ASCII space: when it has no runs of spaces and
        # no edges to strip, the normalisation below would change nothing
        if "  " not in text and text[:1] != " " and text[-1:] != " ":
            return _cut(text, limit)
    else:
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _WHITESPACE.sub(" ", text).strip()
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, ending in "…" when cut; a cut never leaves half a
    ``<redacted>`` marker (``<redac…`` reads like a value that escaped redaction)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    start = head.rfind("<", max(0, len(head) - len(REDACTED) + 1))
    if start != -1 and REDACTED.startswith(head[start:]):
        head = head[:start]
    return head + "…"


@dataclass(frozen=True)
class Operation:
    """A probe operation an adapter offers (``checks[].operation`` in config).

    ``rate_per_second``/``burst`` are the platform's *documented* limits, with the source in
    ``limit_source``; None where the fact sheet has no number (UNCONFIRMED): then no budget is
    enforced unless config sets one, and nothing is modelled.
    """

    name: str
    description: str
    rate_per_second: float | None = None
    burst: int | None = None
    #: where the numbers come from (fact-sheet source tag), shown in docs
    limit_source: str = ""
    #: sandbox hosts may document other limits (SP-API sandbox: 5 rps / burst 15 for every call)
    sandbox_rate_per_second: float | None = None
    sandbox_burst: int | None = None
    default_interval_seconds: float = 60.0

    def limits(self, sandbox: bool) -> tuple[float, int] | None:
        """(rate per second, burst) documented for this host kind, or None if undocumented."""
        if sandbox and self.sandbox_rate_per_second is not None and self.sandbox_burst is not None:
            return self.sandbox_rate_per_second, self.sandbox_burst
        if self.rate_per_second is not None and self.burst is not None:
            return self.rate_per_second, self.burst
        return None


@dataclass
class TokenCache:
    """Access tokens the engine minted from non-rotating refresh tokens, per account.

    Owned by the engine and passed to adapters; adapters read and fill it with ``now`` they are
    given, so no clock is read inside.
    """

    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def get(self, key: str, now: float, margin: float = 60.0) -> tuple[str, float] | None:
        """(token, expires_at) if the token is still valid ``margin`` seconds from ``now``."""
        entry = self._tokens.get(key)
        if entry is None or entry[1] - margin <= now:
            return None
        return entry

    def put(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)
        REDACTOR.hold(("minted", key), token)  # redacted while cached; the one it replaces is forgotten

    def drop(self, key: str) -> None:
        self._tokens.pop(key, None)
        REDACTOR.release(("minted", key))
