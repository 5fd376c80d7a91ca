"""The one small interface every marketplace adapter implements.

An adapter is pure: :meth:`Adapter.probe` is a generator that *yields* the :class:`RequestSpec` it
wants sent, *receives* the :class:`HttpResponse`, and finally *returns* a :class:`ProbeOutcome`.
Multi-step flows (LWA token exchange, then the API call) are simply two yields. The engine drives
the generator: it owns the HTTP client, the clock, timeouts, timing, budgets and metrics. A
transport failure (timeout, refused, reset) never reaches the adapter: the engine closes the
generator and classifies the failure itself.

Tests drive an adapter with literals::

    steps = adapter.probe(ctx)
    request = next(steps)                      # what it would send
    try:
        steps.send(HttpResponse(403, {}, b'{"errors": [...]}'))
    except StopIteration as done:
        outcome = done.value                   # ProbeOutcome(success=False, reason=Reason.AUTH, ...)

Adding a marketplace = one new module with a class implementing this protocol, one line in
``adapters/__init__.py``, and its routes in the simulator.

Production traffic (``marketplace_exporter.traffic``) reuses the same classification: the seller's
own client reports each finished call, :meth:`Adapter.match` names its operation from host and path,
and :meth:`Adapter.classify` reads status, headers and body with the code the probe flow itself
calls, so a production 403 and a probe 403 get the same ``reason`` and ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import (
    HttpResponse,
    Operation,
    ProbeOutcome,
    RateLimitObservation,
    RequestSpec,
    TokenCache,
)

ProbeSteps = Generator[RequestSpec, HttpResponse, ProbeOutcome]


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(StrictModel):
    """Checks of most operations take no parameters."""


@dataclass(slots=True)
class ProbeContext:
    """Everything an adapter may know when it builds a probe (no clock: ``now`` is given).
    Built once per probe on the hot path, hence slots and not frozen (frozen __init__ is slower);
    adapters treat it as read-only."""

    alias: str
    site: str
    #: base-URL override (sandbox, simulator); None = the platform's production host for the site
    base_url: str | None
    #: token-endpoint override; None = the platform's own
    auth_url: str | None
    sandbox: bool
    credentials: Any  # the adapter's own ``Credentials`` model instance
    operation: str
    params: Any  # the adapter's ``Params`` model instance for this check
    now: float
    tokens: TokenCache


class Classification(NamedTuple):
    """What one answer says, whichever call it answers: ``reason`` None means success. ``code`` is
    the platform's raw code (callers fold codes outside ``known_codes`` into ``other``). A tuple:
    one is made per production call, on the caller's path."""

    reason: Reason | None
    code: str | None = None
    rate_limit: RateLimitObservation | None = None

    @classmethod
    def of(cls, failure: ProbeOutcome | None,
           rate_limit: RateLimitObservation | None = None) -> Classification:
        """From the failed outcome an adapter's classifier returned (None: the answer is a success)."""
        if failure is None:
            return cls(None, None, rate_limit)
        return cls(failure.reason, failure.code, rate_limit or failure.rate_limit)

    @classmethod
    def of_verdict(cls, verdict: Verdict | None,
                   rate_limit: RateLimitObservation | None = None) -> Classification:
        """From an adapter's error verdict (None: the answer is a success); no message is built."""
        if verdict is None:
            return SUCCESS if rate_limit is None else cls(None, None, rate_limit)
        return cls(verdict.reason, verdict.code, rate_limit)


#: a success without a platform code or headroom (shared: classification is on the hot path)
SUCCESS = Classification(None)


class Verdict(NamedTuple):
    """What an error answer means, in two parts with two costs.

    ``reason`` and ``code`` are the labels: decided first, and all that production traffic needs
    (it runs inside the seller's HTTP client, where every microsecond is theirs). ``outcome``
    builds the probe's full :class:`ProbeOutcome`, with the human message (redacted, bounded) and
    when to retry: only a probe calls it. Both come from the same decision in the same function,
    so a production answer and a probe answer cannot be labelled differently. A tuple, because one
    is made per failed call on the caller's path and a tuple is the cheapest immutable object."""

    reason: Reason
    code: str | None
    outcome: Callable[[], ProbeOutcome]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The operation a production call performs (one of the adapter's ``api_operations``) and the
    site when the host alone tells it (Lazada's country gateways); None: the caller's own setting."""

    operation: str
    site: str | None = None


class Adapter(Protocol):
    """One marketplace. Class attributes describe it; ``probe`` runs one check."""

    #: the ``marketplace`` label value and config key
    name: ClassVar[str]
    #: what the adapter can probe, keyed by ``checks[].operation``
    operations: ClassVar[Mapping[str, Operation]]
    #: the platform's own error codes exported as ``code`` label values; others become ``other``
    known_codes: ClassVar[frozenset[str]]
    #: site values accepted in config (``account.site``), e.g. Amazon country codes
    sites: ClassVar[frozenset[str]]
    #: pydantic model of the account's ``credentials`` block (secrets typed as ``Secret``)
    Credentials: ClassVar[type[StrictModel]]
    #: pydantic model of a check's ``params`` block
    Params: ClassVar[type[StrictModel]]

    #: operation label values production traffic may carry (:meth:`match`'s results plus ``other``)
    api_operations: ClassVar[frozenset[str]]

    def probe(self, ctx: ProbeContext) -> ProbeSteps:
        """Yield requests, receive responses, return the classified outcome."""
        ...

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        """The operation of a call to ``host`` + ``path`` (query string read in process, never
        reported); None when the host is not this platform's. ``host`` None means the caller mapped
        a base URL (simulator, proxy) to this marketplace: match the path alone."""
        ...

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> Classification:
        """What an answer to ``operation`` says: the probe flow's own classifier, minus the checks a
        probe makes of its own success payload. ``headers`` lower-cased; ``body`` None when it was
        not read (streamed or large): then only the status and headers decide."""
        ...


_DECODER = json.JSONDecoder()
#: what ``json.loads`` accepts around a document
_JSON_WHITESPACE = " \t\n\r"


def json_or_none(body: bytes) -> Mapping[str, Any] | None:
    """Parse a JSON object body; None for anything else (hostile or broken bodies included).

    The usual body (starts with ``{``, so UTF-8 by ``json.loads``' own detection) skips the
    encoding sniffing and whitespace regexes of ``json.loads``: same result, a third of the time
    (this runs on every production call the traffic hooks see)."""
    try:
        if body[:1] == b"{" and body[1:2] != b"\x00":
            text = body.decode("utf-8", "surrogatepass")  # what json.loads decodes UTF-8 with
            value, end = _DECODER.raw_decode(text)
            if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
                return None  # "Extra data" for json.loads
        else:
            value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None

