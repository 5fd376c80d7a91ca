"""The shared adapter shape (``Marketplace``): what every adapter gets without writing it. The typed
hand-off of credentials and params, unknown operations, unavailable secrets, steps that end a probe
early, configured deadlines, host and route matching, the unread-body rule, one parse per read
body, and token answers read as the probe's token step reads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from adapter_harness import NOW, context_builder, drive_probe

from marketplace_exporter.adapters.base import (
    Marketplace,
    NoParams,
    ProbeContext,
    ProbeSteps,
    RouteMatch,
    StrictModel,
    status_only,
)
from marketplace_exporter.adapters.routes import match_hosts, route_operations, routes
from marketplace_exporter.adapters.tokens import cached_token, read_oauth_token, token_answer
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    SUCCESS,
    CredentialObservation,
    HttpResponse,
    Minted,
    Operation,
    ProbeFailed,
    ProbeOutcome,
    RequestSpec,
)
from marketplace_exporter.secrets import REDACTED, REDACTOR, Secret

TABLE = routes(("/v1/orders", "orders.list"), ("/v1/orders/[0-9]+", "orders.get"))
HOSTS = frozenset({"api.example-market.com"})


class ExampleCredentials(StrictModel):
    token: Secret
    renew_by: float | None = None


class ExampleMarket(Marketplace[ExampleCredentials, NoParams]):
    """The smallest real adapter: one call with the configured token, failing on ``"error"``."""

    name = "example"
    Credentials = ExampleCredentials
    Params = NoParams
    sites = frozenset({"XX"})
    operations = {"orders": Operation("orders", "GET /v1/orders")}
    hosts = HOSTS
    routes = TABLE

    def __init__(self) -> None:
        self.judged: list[tuple[str, HttpResponse, Mapping[str, Any] | None, float]] = []

    def deadlines(self, credentials: ExampleCredentials) -> tuple[CredentialObservation, ...]:
        renew_by = credentials.renew_by
        return () if renew_by is None else (CredentialObservation(Credential.AUTHORIZATION, renew_by),)

    def steps(self, ctx: ProbeContext[ExampleCredentials, NoParams]) -> ProbeSteps:
        if ctx.site != "XX":
            raise ProbeFailed(ProbeOutcome.failed(Reason.CLIENT_ERROR, "no such site"))
        response = yield RequestSpec("GET", "https://api.example-market.com/v1/orders",
                                     headers=(("authorization", ctx.credentials.token.reveal()),))
        failure = self.judge(ctx.operation, response, {}, ctx.now)
        return failure or ProbeOutcome.ok(response.status, "orders listed")

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        self.judged.append((operation, response, body, now))
        if body is not None and body.get("error"):
            return ProbeOutcome.failed(Reason.AUTH, f"error {body['error']}", code=str(body["error"]))
        return None


make_ctx = context_builder(alias="main", site="XX", operation="orders",
                           credentials=lambda: ExampleCredentials(token=Secret.literal("tok-secret-1")))


def test_the_base_declares_traffic_operations_from_the_route_table() -> None:
    assert ExampleMarket.api_operations == route_operations(TABLE) == {"orders.list", "orders.get"}


def test_match_refuses_other_hosts_and_routes_known_ones() -> None:
    market = ExampleMarket()
    assert market.match("api.other.com", "/v1/orders") is None
    assert market.match("api.example-market.com", "/v1/orders/42") == RouteMatch("orders.get")
    assert market.match("api.example-market.com", "/v2/x") == RouteMatch("other")
    # None: a base URL the caller mapped to this platform (simulator, proxy): the path alone decides
    assert market.match(None, "/sim/v1/orders") == RouteMatch("orders.list")
    assert match_hosts(HOSTS, TABLE, "api.other.com", "/v1/orders") is None


def test_classify_leaves_an_unread_body_to_the_status() -> None:
    market = ExampleMarket()
    throttled = market.classify("orders.list", 429, {}, None, 5.0)
    assert (throttled.success, throttled.reason, throttled.code) == (False, Reason.THROTTLED, None)
    assert market.classify("orders.list", 200, {}, None, 5.0) is SUCCESS
    assert status_only(302) is SUCCESS
    assert market.judged == []  # never called without a body


def test_classify_parses_a_read_body_once_and_asks_the_adapter() -> None:
    market = ExampleMarket()
    headers = {"x-request-id": "r1"}
    failed = market.classify("orders.get", 200, headers, b'{"error": "bad_token"}', 5.0)
    assert (failed.reason, failed.code) == (Reason.AUTH, "bad_token")
    assert market.classify("orders.get", 200, headers, b"not json", 6.0) is SUCCESS
    (operation, first, parsed, now), (_, second, unparsed, later) = market.judged
    assert (operation, first.status, first.headers, parsed, now) == ("orders.get", 200, headers,
                                                                     {"error": "bad_token"}, 5.0)
    assert (second.body, unparsed, later) == (b"not json", None, 6.0)


def test_probe_hands_the_adapter_its_own_typed_credentials_and_adds_configured_deadlines() -> None:
    ctx = make_ctx(credentials=ExampleCredentials(token=Secret.literal("tok-secret-1"), renew_by=NOW + 99))
    sent, outcome = drive_probe(ExampleMarket(), ctx, HttpResponse(200, {}, b"{}"))
    assert sent[0].headers == (("authorization", "tok-secret-1"),)
    assert outcome.success and outcome.message == "orders listed"
    assert outcome.credentials == (CredentialObservation(Credential.AUTHORIZATION, NOW + 99),)


@pytest.mark.parametrize(("overrides", "reason", "text"), [
    ({"operation": "refunds"}, Reason.INTERNAL, "unknown operation 'refunds'"),
    ({"credentials": NoParams()}, Reason.INTERNAL, "credentials or params of another adapter"),
    ({"params": ExampleCredentials(token=Secret.literal("x1234"))}, Reason.INTERNAL, "of another adapter"),
    ({"credentials": ExampleCredentials(token=Secret("env", "EXAMPLE_UNSET_TOKEN_VAR"), renew_by=NOW)},
     Reason.AUTH, "credential unavailable"),
    ({"site": "YY"}, Reason.CLIENT_ERROR, "no such site"),
])
def test_probe_ends_early_with_a_clear_outcome(overrides: dict[str, Any], reason: Reason, text: str) -> None:
    sent, outcome = drive_probe(ExampleMarket(), make_ctx(**overrides))
    assert sent == [] and not outcome.success
    assert outcome.reason is reason and text in outcome.message


def test_a_failed_outcome_keeps_the_configured_deadlines() -> None:
    ctx = make_ctx(credentials=ExampleCredentials(token=Secret.literal("tok-secret-1"), renew_by=NOW + 5), site="YY")
    _, outcome = drive_probe(ExampleMarket(), ctx)
    assert outcome.reason is Reason.CLIENT_ERROR
    assert outcome.credentials == (CredentialObservation(Credential.AUTHORIZATION, NOW + 5),)


def test_message_is_rendered_only_when_read_redacted_and_one_line() -> None:
    REDACTOR.register("sekrit-token-value")
    outcome = ProbeOutcome.failed(Reason.AUTH, "bad   token\nsekrit-token-value " + "x" * 400)
    assert "sekrit" in outcome.text  # the raw words are kept as they came ...
    assert outcome.message.startswith(f"bad token {REDACTED} x")  # ... and rendered safe when read
    assert len(outcome.message) <= 160 and "\n" not in outcome.message
    assert "sekrit" not in repr(outcome)


def good_token(response: HttpResponse, now: float) -> Minted:
    return read_oauth_token(response, {"access_token": "minted-token-abc", "expires_in": 60}
                            if response.status == 200 else None, now, what="token", max_expires_in=3600)


def test_cached_token_mints_once_registers_the_token_and_reuses_it_until_the_margin() -> None:
    ctx = make_ctx()
    step = cached_token(ctx, "k", 10.0, lambda: RequestSpec("POST", "https://t/token", step=Step.TOKEN), good_token)
    assert next(step).url == "https://t/token"
    with pytest.raises(StopIteration) as done:
        step.send(HttpResponse(200, {}, b""))
    assert done.value.value == Minted("minted-token-abc", NOW + 60)
    assert REDACTOR.redact("x minted-token-abc") == f"x {REDACTED}"
    again = cached_token(ctx, "k", 10.0, lambda: RequestSpec("POST", "https://t/token"), good_token)
    with pytest.raises(StopIteration) as cached:
        next(again)
    assert cached.value.value == Minted("minted-token-abc", NOW + 60)
    ctx.now = NOW + 51  # inside the margin: mint again
    assert next(cached_token(ctx, "k", 10.0, lambda: RequestSpec("POST", "https://t/token"), good_token))


def test_token_answer_reads_a_token_answer_as_the_token_step_does() -> None:
    assert token_answer(good_token, HttpResponse(200, {}, b""), NOW) is SUCCESS
    failed = token_answer(good_token, HttpResponse(500, {}, b""), NOW)
    assert (failed.reason, failed.http_status) == (Reason.INVALID_RESPONSE, 500)


def test_read_oauth_token_refuses_unusable_answers() -> None:
    for body in ({"access_token": "a b", "expires_in": 60}, {"access_token": "ok", "expires_in": 0},
                 {"access_token": "ok", "expires_in": 10**9}, {"expires_in": 60}):
        with pytest.raises(ProbeFailed) as failed:
            read_oauth_token(HttpResponse(200, {}, b""), body, NOW, what="token", max_expires_in=3600)
        assert failed.value.outcome.reason is Reason.INVALID_RESPONSE

