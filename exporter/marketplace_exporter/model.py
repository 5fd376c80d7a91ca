"""Plain values passed between adapters and the engine: requests to send, responses received,
and what a probe found out. No I/O, no clocks: adapters stay pure and tests feed them literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.secrets import REDACTOR


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request an adapter wants sent. ``url`` has no query string; ``query`` holds it."""

    method: str
    url: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    step: Step = Step.CALL
    #: names of query parameters and headers whose values are secret (tokens, signatures):
    #: the debug output prints them as <redacted>
    sensitive: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HttpResponse:
    """What came back. Header names are lower-cased by the engine. A body over the engine's byte
    limit never reaches an adapter: the engine classifies it as ``invalid_response`` itself."""

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


@dataclass(frozen=True)
class ProbeOutcome:
    """The classified result of one probe. ``code`` is the platform's own error code (raw; the
    engine folds unknown ones into ``other``); ``message`` is a short text for humans (status page)
    that must never contain a secret or a response body excerpt longer than a line."""

    success: bool
    reason: Reason | None = None
    code: str | None = None
    message: str = ""
    http_status: int | None = None
    retry_after_seconds: float | None = None
    rate_limit: RateLimitObservation | None = None
    credentials: tuple[CredentialObservation, ...] = ()
    values: tuple[tuple[str, float], ...] = ()

    @classmethod
    def ok(cls, http_status: int, **kwargs: object) -> ProbeOutcome:
        return cls(success=True, http_status=http_status, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def failed(cls, reason: Reason, message: str, **kwargs: object) -> ProbeOutcome:
        return cls(success=False, reason=reason, message=message, **kwargs)  # type: ignore[arg-type]


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
