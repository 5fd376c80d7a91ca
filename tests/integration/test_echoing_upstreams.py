"""An upstream that echoes the request into its error body cannot make the exporter show a
credential: not on the status page, in ``/api/v1/checks``, in ``/metrics`` or in the log.

Issue 14: with the echo, the status page showed ``Bearer …``, a minted ``Atza|…`` token and the
Shopee access token. The simulator's ``echo_headers`` fault quotes every header, the query and the
body back under every envelope key adapters read; it is put on every marketplace of the demo
config (simulator and exporter in-process, probes every 400 ms) and everything the exporter shows
is searched for every configured secret, the minted-token prefixes, any unredacted Bearer and any
credential-named field (``sign=``, ``access_token=``...) with its value: the page is redacted as
debug traces are (regression: the signatures were shown)."""

from __future__ import annotations

import html
import logging
import re

import pytest
from conftest import demo_secret_values
from stacklib import Stack, stack_fixture, value  # noqa: F401  (stack_fixture: the `stack` fixture)

from marketplace_exporter.adapters import ADAPTERS

#: minted by the simulator on every exchange (Amazon LWA access tokens)
MINTED_PREFIXES = ("Atza|",)
#: "Bearer" followed by anything but the redaction marker, and credential-named fields with a
#: value: what a debug trace prints as <redacted> by name (a signature, a token the exporter never
#: held) must not be readable on a page either. A message cut to its length limit right after a
#: name ends "name: …" (``\u2026`` in JSON): no value is shown, so that is not a leak
UNREDACTED = re.compile(r"(?i)(?:bearer\s+|\b(?:sign|access_token|api-key|x-amz-access-token|"
                        r"wm_sec\.access_token|authorization)\s*[=:]\s*)"
                        r"(?!(?:bearer\s+)?<redacted>|…|\\u2026)\S+")


def _leaks(text: str) -> list[str]:
    found = [secret for secret in (*demo_secret_values(), *MINTED_PREFIXES) if secret in text]
    return found + UNREDACTED.findall(text)


async def test_echoed_requests_never_show_a_credential(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="marketplace_exporter")
    await stack.wait_for(lambda s: value(s, "marketplace_probe_success", account="sg-main") == 1.0)
    for marketplace in sorted(ADAPTERS):
        if marketplace != "tls":
            await stack.fault(marketplace=marketplace, fault="echo_headers")
    # every account's checks fail on the echo (their last result is what the pages show)
    await stack.wait_for(lambda s: all(value(s, "marketplace_probe_success", **labels) == 0.0 for labels in (
        {"marketplace": "amazon_sp", "account": "us-main"}, {"marketplace": "shopee", "account": "sg-main"},
        {"marketplace": "ozon", "account": "ru-main", "check": "roles"})))
    shown = {}
    for path in ("/?per_page=1000", "/api/v1/checks?per_page=1000", "/metrics"):
        async with stack.session.get(f"{stack.exporter}{path}") as response:
            shown[path] = html.unescape(await response.text())  # the page escapes <redacted>
    shown["log"] = caplog.text
    assert "request was:" in shown["/api/v1/checks?per_page=1000"]  # the echo did reach the messages
    assert "<redacted>" in shown["/?per_page=1000"]
    leaks = {where: _leaks(text) for where, text in shown.items() if _leaks(text)}
    assert not leaks, leaks
