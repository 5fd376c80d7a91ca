"""Requests no client should send, against the exporter's real write APIs (deploy markers, the
verify gate, traffic reports) over real HTTP on 127.0.0.1: each is a 400 with a JSON reason and
nothing written, never a 500 with a traceback. Each case reproduces a failure of f014b6e (issue 14,
"inputs that must give a clear error")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import raw_http_request

from marketplace_exporter.deploys.api import DEPLOY_LOG
from marketplace_exporter.server import ConfigSource, create_app

TOKEN = "hostile-requests-token-91c2"
#: a route on each API that reads the Authorization header and then a JSON body
WRITE_ROUTES = ["/api/v1/deploys", "/api/v1/traffic", "/api/v1/verify"]
MARKER = {"service": "listing-sync", "environment": "production", "version": "v2.3.0"}


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> TestClient[Any, Any]:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    monkeypatch.setenv("MARKETPLACE_EXPORTER_TRAFFIC_TOKEN", TOKEN)
    path = tmp_path / "exporter.yml"
    path.write_text("{}\n")
    source = ConfigSource(str(path))
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(source, source.load(), storage_path=str(tmp_path / "data")))
    return client


@pytest.mark.parametrize("route", WRITE_ROUTES)
async def test_an_authorization_header_that_is_not_utf8_is_400(client: TestClient[Any, Any], route: str) -> None:
    """f014b6e: 500 and a UnicodeEncodeError traceback (the header reached ``str.encode``)."""
    assert client.port is not None
    head = (f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer ").encode() + b"\xff\xfe\x80" + b"\r\n"
    status, body = await raw_http_request(client.port, head, json.dumps(MARKER).encode())
    assert (status, json.loads(body)) == (400, {"error": "the Authorization header is not UTF-8 text"})


HOSTILE_BODIES = [
    pytest.param(b'{"service": "listing-sync", "dropped": ' + b"9" * 5000 + b"}",
                 "body is not usable JSON: Exceeds the limit (4300 digits) for integer string conversion: "
                 "value has 5000 digits",
                 id="integer-over-4300-digits"),
    pytest.param(b'{"service": "listing-sync", "dropped": NaN}', "body is not usable JSON: NaN is not a JSON number",
                 id="nan"),
    pytest.param(b'{"service": "listing-sync", "duration": 1e999}',
                 "body is not usable JSON: 1e999 is out of range for a number", id="infinite-float"),
    pytest.param(b'{"service": "listing-sync", "environment": "production", "version": "v1", "notes": "\\udcff"}',
                 "body is not usable JSON: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
                 id="lone-surrogate"),
    pytest.param(b'{"service": "listing-sync", "environment": "production", "version": "v1", "actor": "\\uDCFF"}',
                 "body is not usable JSON: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
                 id="lone-surrogate-upper-case"),
]


@pytest.mark.parametrize("route", WRITE_ROUTES)
@pytest.mark.parametrize(("body", "error"), HOSTILE_BODIES)
async def test_json_python_would_choke_on_is_400(client: TestClient[Any, Any], route: str, body: bytes,
                                                 error: str) -> None:
    """f014b6e: an integer over 4,300 digits raised a bare ValueError (500 + traceback); NaN and
    1e999 passed into floats; a lone surrogate in a marker's notes failed in SQLite's encoder."""
    response = await client.post(route, data=body, headers={"Authorization": f"Bearer {TOKEN}",
                                                            "Content-Type": "application/json"})
    if route == "/api/v1/verify" and len(body) > 4096:  # the gate's 4 KiB cap answers first
        assert response.status == 413
        return
    assert response.status == 400
    assert await response.json() == {"error": error}


async def test_a_paired_surrogate_escape_is_text_and_recorded(client: TestClient[Any, Any]) -> None:
    """The surrogate check refuses only lone halves: an escaped emoji (a pair) is ordinary text."""
    body = json.dumps({**MARKER, "notes": "上线 🚀"}, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude80" in body
    response = await client.post("/api/v1/deploys", data=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 201
    stored = client.app[DEPLOY_LOG].latest("listing-sync", "production")
    assert stored is not None and stored.notes == "上线 🚀"


@pytest.mark.parametrize("query", ["limit=%C2%B2", "before=%D9%A1", f"limit={'9' * 5000}"])
async def test_digits_that_are_not_ascii_or_too_long_are_400(client: TestClient[Any, Any], query: str) -> None:
    """f014b6e: ``str.isdigit()`` accepts '²' (int() then raised: 500) and read Arabic-Indic digits;
    5,000 digits raised int()'s 4,300-digit ValueError."""
    response = await client.get(f"/api/v1/deploys?{query}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 400
    assert (await response.json())["field"] == query.split("=")[0]


async def test_otlp_answers_400_to_the_same_inputs(client: TestClient[Any, Any]) -> None:
    """OTLP/HTTP (``/v1/traces``, merged after f014b6e) shares the traffic token check: a non-UTF-8
    header is a 400 there too, and so is a JSON integer over 4,300 digits in a field it reads (one
    in a field it never reads is skipped unconverted, as the field is: tests/unit/test_traffic_otlp_json.py)."""
    assert client.port is not None
    head = (b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer ") + b"\xff\xfe" + b"\r\n"
    status, body = await raw_http_request(client.port, head, b'{"resourceSpans": []}')
    assert status == 400 and "not UTF-8 text" in body
    giant = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": 3, "endTimeUnixNano": ' + b"9" * 5000 + b"}]}]}]}"
    response = await client.post("/v1/traces", data=giant, headers={"Authorization": f"Bearer {TOKEN}",
                                                                    "Content-Type": "application/json"})
    assert response.status == 400


@pytest.mark.parametrize("digits", ["²", "١٢"])
async def test_otlp_numbers_that_are_not_ascii_digits_are_a_rejected_span_not_a_500(
        client: TestClient[Any, Any], digits: str) -> None:
    """``str.isdigit()`` accepts '²' (int() refuses it: a ValueError out of the decoder) and reads
    '١٢' (Arabic-Indic) as 12."""
    span = {"traceId": "0" * 32, "spanId": "0" * 16, "name": "GET", "kind": 3,
            "startTimeUnixNano": digits, "endTimeUnixNano": "2",
            "attributes": [{"key": "url.full", "value": {"stringValue": "https://partner.shopeemobile.com/x"}},
                           {"key": "http.response.status_code", "value": {"stringValue": digits}}]}
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "erp"}}]},
                               "scopeSpans": [{"spans": [span]}]}]}
    response = await client.post("/v1/traces", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    assert (await response.json())["partialSuccess"]["rejectedSpans"] in (1, "1")
