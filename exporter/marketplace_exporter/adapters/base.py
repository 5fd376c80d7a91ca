"""The one adapter shape: a small declarative base every marketplace subclasses, and one result type.

An adapter is pure (sans-I/O). It *declares* what it is (class attributes: name, typed Credentials
and Params models, sites, operations, known codes, API hosts, a route table) and implements two
methods:

* :meth:`Marketplace.steps`, the probe flow: a generator that *yields* each :class:`RequestSpec` it
  wants sent, *receives* the :class:`HttpResponse` and *returns* a :class:`ProbeOutcome`. A token
  exchange then the API call is simply two yields (:func:`~.tokens.cached_token`). The engine drives
  it and owns the HTTP client, the clock, timeouts, budgets and metrics: a transport failure never
  reaches the adapter.
* :meth:`Marketplace.judge`, what an answer to one operation says when it is a failure (None: the
  answer says success). The probe flow and production traffic (:meth:`Marketplace.classify`, run
  inside the seller's HTTP client with a per-call budget) both call it, so a production 403 and a
  probe 403 get the same ``reason`` and ``code``.

Everything else is shared here: unknown operations, the typed hand-off of credentials and params
(the base checks them once against the adapter's own models, so ``steps`` receives a
``ProbeContext[ShopeeCredentials, NoParams]`` that mypy checks), unavailable secrets, a step that
ends the probe early (:class:`ProbeFailed`), configured deadlines (:meth:`Marketplace.deadlines`),
route matching and the unread-body rule. ``docs/adding-a-marketplace.md`` is the recipe.

Tests drive an adapter with literals::

    steps = Shopee().probe(ctx)
    request = next(steps)                      # what it would send
    try:
        steps.send(HttpResponse(403, {}, b'{"error": "..."}'))
    except StopIteration as done:
        outcome = done.value                   # ProbeOutcome(success=False, reason=Reason.AUTH, ...)
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from marketplace_exporter.adapters.routes import OTHER_OPERATION, RouteMatch, Routes, match_path, route_operations
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import (
    SUCCESS,
    CredentialObservation,
    HttpResponse,
    Operation,
    ProbeFailed,
    ProbeOutcome,
    RequestSpec,
    TokenCache,
)
from marketplace_exporter.secrets import SecretUnavailable

ProbeSteps = Generator[RequestSpec, HttpResponse, ProbeOutcome]
#: a config problem of one account: (key path under ``accounts[i]``, message)
AccountProblem = tuple[tuple[str | int, ...], str]


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(StrictModel):
    """Checks of most operations take no parameters."""


C = TypeVar("C")
P = TypeVar("P")


@dataclass(slots=True)
class ProbeContext(Generic[C, P]):
    """Everything an adapter may know when it builds a probe (no clock: ``now`` is given).
    Built once per probe on the hot path, hence slots and not frozen (frozen __init__ is slower);
    adapters treat it as read-only. ``credentials``/``params`` are the adapter's own models."""

    alias: str
    site: str
    #: base-URL override (sandbox, simulator); None = the platform's production host for the site
    base_url: str | None
    #: token-endpoint override; None = the platform's own
    auth_url: str | None
    sandbox: bool
    credentials: C
    operation: str
    params: P
    now: float
    tokens: TokenCache


class Adapter(Protocol):
    """What the engine, the config loader and the traffic classifier see of an adapter (every
    :class:`Marketplace` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def operations(self) -> Mapping[str, Operation]: ...

    @property
    def known_codes(self) -> frozenset[str]: ...

    @property
    def sites(self) -> frozenset[str]: ...

    @property
    def api_operations(self) -> frozenset[str]: ...

    @property
    def Credentials(self) -> type[Any]: ...  # noqa: N802 - the model's name, as config reads it

    @property
    def Params(self) -> type[Any]: ...  # noqa: N802

    def probe(self, ctx: ProbeContext[Any, Any]) -> ProbeSteps: ...

    def account_problems(self, site: str, credentials: Any, operations: Sequence[str]) -> list[AccountProblem]: ...

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None: ...

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> ProbeOutcome: ...


class Marketplace(Generic[C, P]):
    """Base of every adapter: declare the class attributes, implement ``steps`` and ``judge``.

    The attributes are plain declarations read by config (sites, operations, the Credentials and
    Params models), by the traffic classifier (hosts, routes, known codes) and by the docs; nothing
    is registered by side effect (the registry is ``adapters/__init__.py``)."""

    #: the ``marketplace`` label value and config key
    name: ClassVar[str]
    #: pydantic model of the account's ``credentials`` block (secrets typed as ``Secret``)
    Credentials: type[C]
    #: pydantic model of a check's ``params`` block
    Params: type[P]
    #: site values accepted in config (``account.site``), e.g. Amazon country codes
    sites: ClassVar[frozenset[str]]
    #: what the adapter can probe, keyed by ``checks[].operation``
    operations: ClassVar[Mapping[str, Operation]]
    #: the platform's own error codes exported as ``code`` label values; others become ``other``
    known_codes: ClassVar[frozenset[str]] = frozenset()
    #: hosts production calls to this platform go to (traffic); empty: no production traffic
    hosts: ClassVar[frozenset[str]] = frozenset()
    #: (path pattern, operation) pairs naming production calls (:func:`~.routes.routes`)
    routes: ClassVar[Routes] = ()
    #: operation label values production traffic may carry: the route table's, unless declared
    api_operations: ClassVar[frozenset[str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "api_operations" not in cls.__dict__:
            cls.api_operations = route_operations(cls.routes)

    #: True when :meth:`steps` never raises ``ProbeFailed``/``SecretUnavailable`` and already asks
    #: :meth:`retry_after` (or the same Retry-After reading) for a throttled outcome: :meth:`probe`
    #: then hands out the steps themselves, one generator per probe fewer (the generic HTTP check)
    plain_steps: ClassVar[bool] = False

    # --- to implement ------------------------------------------------------------------------------

    def steps(self, ctx: ProbeContext[C, P]) -> ProbeSteps:
        """The probe flow: yield requests, receive responses, return the outcome. May raise
        :class:`ProbeFailed` (ends the probe with its outcome) or ``SecretUnavailable`` (auth)."""
        raise NotImplementedError

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """What an answer to ``operation`` says when it is a failure; None when it says success.
        ``body`` is the response parsed as a JSON object (None for anything else). Runs on the
        seller's call path for production traffic: decide the labels, keep the raw words in
        ``text`` (never build the message), parse nothing twice."""
        return None

    def retry_after(self, response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
        """When a throttled probe may try again (seconds from ``now``): the standard Retry-After
        header unless the platform says it another way (a ban duration in the message, a reset
        header). Asked by :meth:`probe` only, for a throttled outcome without a time of its own: the
        seller's calls never pay for it."""
        return retry_after_seconds(response.header("retry-after"), now)

    def account_problems(self, site: str, credentials: C, operations: Sequence[str]) -> list[AccountProblem]:
        """What config must refuse although each field is valid on its own: a site the platform
        cannot serve this way, an operation its region lacks, a header a market requires. Each
        problem names the key under the account (``("checks", 0, "operation")``) and says why."""
        return []

    def deadlines(self, credentials: C) -> tuple[CredentialObservation, ...]:
        """Expiry dates known without a call (configured dates, a token file's): added to every
        outcome of a probe, failed or not. May raise ``SecretUnavailable``."""
        held = getattr(credentials, "held_token", None)
        return held().expiries if callable(held) else ()

    # --- shared --------------------------------------------------------------------------------

    def probe(self, ctx: ProbeContext[Any, Any]) -> ProbeSteps:
        """One probe: the typed hand-off, then :meth:`steps`; a throttled outcome learns when to try
        again from the last answer; the configured deadlines are added. An adapter with
        :attr:`plain_steps` and no deadlines gets its steps handed out as they are."""
        credentials, params = ctx.credentials, ctx.params
        if ctx.operation not in self.operations:
            return _finished(ProbeOutcome.failed(Reason.INTERNAL, f"{self.name}: unknown operation {ctx.operation!r}"))
        if not isinstance(credentials, self.Credentials) or not isinstance(params, self.Params):
            return _finished(ProbeOutcome.failed(
                Reason.INTERNAL, f"{self.name}: credentials or params of another adapter "
                f"({type(credentials).__name__}, {type(params).__name__})"))
        typed = cast(ProbeContext[C, P], ctx)  # the checks above are the hand-off; no copy per probe
        try:
            configured = self.deadlines(credentials)
        except SecretUnavailable as exc:
            return _finished(ProbeOutcome.failed(Reason.AUTH, f"credential unavailable: {exc}"))
        if self.plain_steps and not configured:
            return self.steps(typed)  # nothing to add: no generator around them per probe
        return self._wrapped_steps(typed, configured)

    def _wrapped_steps(self, ctx: ProbeContext[C, P], configured: tuple[CredentialObservation, ...]) -> ProbeSteps:
        """:meth:`steps` with what :meth:`probe` adds: ``ProbeFailed``/``SecretUnavailable`` as
        outcomes, Retry-After for a throttled outcome without a time, the configured deadlines."""
        steps, response = self.steps(ctx), None
        outcome: ProbeOutcome
        try:
            request = next(steps)
            while True:
                response = yield request
                request = steps.send(response)
        except StopIteration as done:
            outcome = done.value
        except ProbeFailed as failed:
            outcome = failed.outcome
        except SecretUnavailable as exc:
            outcome = ProbeOutcome.failed(Reason.AUTH, f"credential unavailable: {exc}")
        finally:
            steps.close()
        if outcome.reason is Reason.THROTTLED and outcome.retry_after_seconds is None and response is not None:
            retry = self.retry_after(response, outcome, ctx.now)
            if retry is not None:
                outcome = outcome.amended(retry_after_seconds=retry)
        return outcome.with_credentials(configured)

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        """The operation of a production call to ``host`` + ``path``; None when the host is not this
        platform's. ``host`` None: the caller mapped a base URL (simulator, proxy) to this platform,
        so the path alone decides. The query string is read in process, never reported."""
        if not self.routes or (host is not None and host not in self.hosts):
            return None
        return match_path(self.routes, path)

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> ProbeOutcome:
        """What a production answer says, by :meth:`judge`. ``headers`` lower-cased; ``body`` None
        when the caller did not read it (streamed or large): then the status alone decides."""
        if body is None:
            return status_only(status)
        return self.judge(operation, HttpResponse(status, headers, body), json_or_none(body), now) or SUCCESS


def _finished(outcome: ProbeOutcome) -> ProbeSteps:
    """Steps that send nothing: the probe ends with ``outcome`` at the first ``next``."""
    yield from ()
    return outcome


def reason_for_status(status: int) -> Reason | None:
    """The reason an unwanted HTTP status stands for; None for 1xx/2xx/3xx (caller decides)."""
    if 500 <= status <= 599:
        return Reason.SERVER_ERROR
    if status == 429:
        return Reason.THROTTLED
    if status == 401:
        return Reason.AUTH
    if status == 403:
        return Reason.PERMISSION
    if 400 <= status <= 499:
        return Reason.CLIENT_ERROR
    return None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from ``now`` (delta-seconds or HTTP-date); None if absent/garbage.
    Not capped here: the engine applies the one cap, ``defaults.max_retry_after``."""
    if not value:
        return None
    value = value.strip()[:64]
    if value.isascii() and value.isdigit():
        return float(int(value[:12]))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


_BY_STATUS: dict[int, ProbeOutcome] = {}


def status_only(status: int) -> ProbeOutcome:
    """An answer whose body was not read: the HTTP status alone decides (1xx-3xx: success).
    One shared outcome per status: this runs on the seller's call path."""
    known = _BY_STATUS.get(status)
    if known is None:
        reason = reason_for_status(status)
        known = SUCCESS if reason is None else ProbeOutcome(False, reason, http_status=status)
        if len(_BY_STATUS) < 1024:
            _BY_STATUS[status] = known
    return known


_DECODER = json.JSONDecoder()
#: what ``json.loads`` accepts around a document
_JSON_WHITESPACE = " \t\n\r"
#: first bytes that make ``json.loads`` decode a body as UTF-8 (when the second byte is not NUL)
_JSON_OPENERS = (b"{", b"[")


def json_document(body: bytes) -> Any:
    """``json.loads(body)``: the same document or the same error class (ValueError,
    UnicodeDecodeError, RecursionError), faster for the usual body.

    A body starting with ``{`` or ``[`` (so UTF-8 by ``json.loads``' own detection) skips the
    encoding sniffing and whitespace regexes of ``json.loads``: a third of the time (this runs on
    every probe of a JSON API and every production call the traffic hooks see)."""
    if body[:1] in _JSON_OPENERS and body[1:2] != b"\x00":
        text = body.decode("utf-8", "surrogatepass")  # what json.loads decodes UTF-8 with
        value, end = _DECODER.raw_decode(text)
        if end != len(text) and (rest := text[end:].lstrip(_JSON_WHITESPACE)):
            raise json.JSONDecodeError("Extra data", text, len(text) - len(rest))  # as json.loads
        return value
    return json.loads(body)


def json_or_none(body: bytes) -> Mapping[str, Any] | None:
    """Parse a JSON object body; None for anything else (hostile or broken bodies included)."""
    try:
        value = json_document(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


__all__ = ["OTHER_OPERATION", "AccountProblem", "Adapter", "Marketplace", "NoParams", "ProbeContext", "ProbeFailed",
           "ProbeSteps", "RouteMatch", "StrictModel", "json_document", "json_or_none", "reason_for_status",
           "retry_after_seconds", "status_only"]
