"""Secrets stay out of what an upstream can make the exporter show, and a malformed secret is a
config error, not a probe crash (issue 14, items 3 and 4). Each test fails on the code before it:
named in its docstring."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest
from aiohttp import web

from marketplace_exporter.adapters.base import NoParams, ProbeContext, ProbeSteps
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.cli import main
from marketplace_exporter.config import CheckSpec, ConfigError, load_config
from marketplace_exporter.engine.debuglog import DebugLog
from marketplace_exporter.engine.runner import ProbeRunner
from marketplace_exporter.engine.transport import new_session
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import REDACTOR, Redactor, redact_named

ACCOUNT = """\
accounts:
  - marketplace: amazon_sp
    alias: us-main
    site: US
    base_url: {base_url}
    auth_url: {auth_url}
    credentials: {{client_id: a, client_secret: {secret}, refresh_token: {{value: "Atzr|s3cret-refresh"}}}}
    checks: [{{operation: marketplace_participations}}]
"""
HTTP_CHECK = """\
http_checks:
  - name: erp
    url: https://erp.example.com/health
    headers: {{Authorization: "${{{env}}}", X-Plain: {plain}}}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config("f.yml", text=text)
    return raised.value.errors


def test_user_and_password_in_an_account_url_are_refused_without_quoting_them() -> None:
    """Regression: base_url/auth_url accepted ``user:password@`` and ``/probe?debug=true`` printed it."""
    errors = _errors(ACCOUNT.format(base_url="https://bob:hunter2pw@sellingpartnerapi-na.amazon.com",
                                    auth_url='"https://lwa:s3cretpw@api.amazon.com/auth/o2/token"',
                                    secret="{value: s3cret-lwa}"))
    assert errors == [
        "f.yml:5: accounts[0].base_url: expected a URL without user:password@ (credentials go under "
        "credentials:, as secrets)",
        "f.yml:6: accounts[0].auth_url: expected a URL without user:password@ (credentials go under "
        "credentials:, as secrets)"]
    assert "hunter2pw" not in str(errors) and "s3cretpw" not in str(errors)
    trace = DebugLog(True)
    trace.request(RequestSpec("GET", "https://bob:hunter2pw@host.example/x"))
    assert trace.lines == ["> [call] GET https://<redacted>@host.example/x"]  # and never printed anyway


def test_a_secret_with_a_line_break_fails_the_config_check_not_the_probe(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: a header secret with a newline passed check-config and every probe then failed
    as ``internal`` with a traceback (aiohttp refuses the header)."""
    monkeypatch.setenv("ERP_TOKEN", "Bearer tok-secret-1\n")
    monkeypatch.setenv("LWA_SECRET", "lwa-secret-2\r\nX-Injected: 1")
    text = HTTP_CHECK.format(env="ERP_TOKEN", plain='"fine\\u0007bell"') + ACCOUNT.format(
        base_url="https://sellingpartnerapi-na.amazon.com", auth_url="https://api.amazon.com/auth/o2/token",
        secret='"${LWA_SECRET}"')
    problem = ("the secret's value contains a line break or another control character, which no HTTP "
               "header can carry (a trailing newline in the environment variable or file?)")
    errors = _errors(text)
    assert errors == [
        "f.yml:2: http_checks[0]: header 'X-Plain' value must not contain line breaks or other control "
        "characters",
        f"f.yml:11: accounts[0].credentials.client_secret: {problem}"]
    config = tmp_path / "c.yml"
    config.write_text(HTTP_CHECK.format(env="ERP_TOKEN", plain="fine"))
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"c.yml:4: http_checks[0].headers.Authorization: {problem}" in err
    assert "tok-secret-1" not in err and "lwa-secret-2" not in err


class HeaderAdapter:
    """Sends one request with the header ``X-Token: <params-free literal with a line break>``."""

    name: ClassVar[str] = "fake"
    operations: ClassVar[dict[str, Operation]] = {"call": Operation("call", "x")}
    known_codes: ClassVar[frozenset[str]] = frozenset()
    sites: ClassVar[frozenset[str]] = frozenset({"XX"})
    Credentials = NoParams
    Params = NoParams

    def probe(self, ctx: ProbeContext[NoParams, NoParams]) -> ProbeSteps:
        response: HttpResponse = yield RequestSpec("GET", f"{ctx.base_url}/x", headers=(("x-token", "a\nb"),))
        return ProbeOutcome.ok(response.status)


async def test_a_token_rewritten_with_a_line_break_is_an_auth_failure_without_a_traceback(
        aiohttp_server: object, caplog: pytest.LogCaptureFixture) -> None:
    """Regression: aiohttp's ValueError escaped the transport: ``internal`` plus a logged traceback."""
    app = web.Application()
    app.router.add_get("/x", lambda request: web.Response(text="sent"))
    server = await aiohttp_server(app)  # type: ignore[operator]
    adapter = HeaderAdapter()
    spec = CheckSpec(marketplace="fake", site="XX", account="a1", name="call", adapter=adapter,  # type: ignore[arg-type]
                     operation=adapter.operations["call"], interval=60, timeout=2, jitter=0, quota_budget=0.5,
                     tags=(), base_url=f"http://127.0.0.1:{server.port}", auth_url=None,  # type: ignore[attr-defined]
                     sandbox=False, credentials=None, params=NoParams(), fingerprint="x")
    async with new_session(limit=2) as session:
        record = await ProbeRunner(session, max_body_bytes=1 << 20, concurrency_per_host=2).run(spec)
    assert record.outcome.reason is Reason.AUTH
    assert record.outcome.message.startswith("request not sent: header 'x-token' contains a line break")
    assert "Traceback" not in caplog.text and not any(r.levelno >= logging.ERROR for r in caplog.records)


ECHO = ("HTTP 400: request was: GET /api/v2/shop/get_shop_info?partner_id=1&timestamp=2&access_token="
        "plain-access-0001&shop_id=3&sign=5f2b9a7c headers: Authorization: Bearer echoed-bearer-0002; "
        "X-Api-Key: plain-key-0003; body: {\"refresh_token\": \"echoed-refresh-0004\"}")


def test_credentials_an_upstream_echoes_are_redacted_by_name_like_debug_traces() -> None:
    """Regression: values the redactor never saw (a signature, a plain-string header, a token of
    another system) reached the status page verbatim from an echoing error body."""
    text = redact_named(ECHO)
    for leaked in ("plain-access-0001", "5f2b9a7c", "echoed-bearer-0002", "plain-key-0003", "echoed-refresh-0004"):
        assert leaked not in text
    assert "partner_id=1&timestamp=2&access_token=<redacted>&shop_id=3&sign=<redacted>" in text
    assert ProbeOutcome.failed(Reason.CLIENT_ERROR, ECHO).message == REDACTOR.redact(ECHO)[:159] + "…"
    # ordinary words keep their meaning
    for plain in ("Wrong sign.", "The access token you provided has expired.", "sign_method=sha256"):
        assert redact_named(plain) == plain


class TokenEchoAdapter:
    """A minted token (held by the redactor while cached) that the upstream echoes in a 401."""

    name: ClassVar[str] = "fake"
    operations: ClassVar[dict[str, Operation]] = {"call": Operation("call", "x")}
    known_codes: ClassVar[frozenset[str]] = frozenset()
    sites: ClassVar[frozenset[str]] = frozenset({"XX"})
    Credentials = NoParams
    Params = NoParams
    TOKEN: ClassVar[str] = "Atza|minted-token-for-the-echo-0005"

    def probe(self, ctx: ProbeContext[NoParams, NoParams]) -> ProbeSteps:
        ctx.tokens.put("a1", self.TOKEN, ctx.now + 3600)
        response: HttpResponse = yield RequestSpec("GET", f"{ctx.base_url}/x", step=Step.CALL)
        ctx.tokens.drop("a1")  # a 401: the token is dropped, the redactor keeps it in its grace set only
        return ProbeOutcome.failed(Reason.AUTH, f"HTTP {response.status}: {response.body.decode()}")


@pytest.fixture
async def echo_server(aiohttp_server: object) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/x", lambda request: web.Response(status=401, text=f"bad token {TokenEchoAdapter.TOKEN}"))
    server = await aiohttp_server(app)  # type: ignore[operator]
    yield f"http://127.0.0.1:{server.port}"


async def test_a_recorded_message_stays_redacted_after_the_redactor_forgets_the_token(echo_server: str) -> None:
    """Regression: messages were redacted when shown, against the redactor's state then: once a
    dropped token left the 256-value grace set, the status page showed it from the stored record."""
    adapter = TokenEchoAdapter()
    spec = CheckSpec(marketplace="fake", site="XX", account="a1", name="call", adapter=adapter,  # type: ignore[arg-type]
                     operation=adapter.operations["call"], interval=60, timeout=2, jitter=0, quota_budget=0.5,
                     tags=(), base_url=echo_server, auth_url=None, sandbox=False, credentials=None,
                     params=NoParams(), fingerprint="x")
    async with new_session(limit=2) as session:
        record = await ProbeRunner(session, max_body_bytes=1 << 20, concurrency_per_host=2).run(spec)
    for n in range(Redactor.GRACE + 1):  # 257 other values pass through the grace set
        REDACTOR.register(f"another-rotated-value-{n:04d}")
    assert REDACTOR.redact(adapter.TOKEN) == adapter.TOKEN  # sanity: forgotten by now...
    assert record.outcome.message == "HTTP 401: bad token <redacted>"  # ...but the record was redacted
