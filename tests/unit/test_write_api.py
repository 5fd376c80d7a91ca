"""The shared write-API plumbing over real HTTP: Bearer checks (constant-time compare, token read
per request, anonymous only when asked), size-capped JSON bodies, and errors as JSON. The loopback
policy is pinned with the deploy API (tests/unit/test_deploys_api.py), which serves it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from marketplace_exporter.api_defaults import DEFAULT_TOKEN_ENV
from marketplace_exporter.write_api import WriteAuth, json_error, read_json_body

ENV = "API_SUPPORT_TEST_TOKEN"
TOKEN = "s3cr3t-token-e4d2-42"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _app(*, allow_anonymous: bool = False, max_bytes: int = 1024) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        WriteAuth(ENV, "always" if allow_anonymous else "never", "test API", "test").check(request)
        body = await read_json_body(request, max_bytes)
        return web.json_response({"got": body})

    app = web.Application()
    app.router.add_post("/echo", echo)
    return app


@pytest.fixture
async def client(aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> TestClient[Any, Any]:
    monkeypatch.setenv(ENV, TOKEN)
    return await aiohttp_client(_app())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_right_token_passes_and_the_body_is_parsed(client: TestClient[Any, Any]) -> None:
    response = await client.post("/echo", json={"a": [1, "二"]}, headers=_bearer(TOKEN))
    assert response.status == 200
    assert await response.json() == {"got": {"a": [1, "二"]}}


@pytest.mark.parametrize(("authorization", "error"), [
    (None, "missing Bearer token"),
    ("Bearer", "missing Bearer token"),
    ("Token abc", "missing Bearer token"),
    ("Bearer nope", "invalid Bearer token"),
    ("bearer " + TOKEN[:-1], "invalid Bearer token"),
])
async def test_missing_or_wrong_tokens_get_401_with_a_challenge(client: TestClient[Any, Any],
                                                              authorization: str | None, error: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/echo", json={}, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="marketplace-exporter"')
    assert response.content_type == "application/json"
    assert (await response.json())["error"] == error


async def test_the_scheme_is_case_insensitive_and_the_token_is_read_per_request(
        client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await client.post("/echo", json={}, headers=_bearer(TOKEN))).status == 200
    lower = {"Authorization": _bearer(TOKEN)["Authorization"].replace("Bearer", "bearer")}
    assert (await client.post("/echo", json={}, headers=lower)).status == 200
    monkeypatch.setenv(ENV, "rotated-token")  # rotation needs no restart
    assert (await client.post("/echo", json={}, headers=_bearer(TOKEN))).status == 401
    assert (await client.post("/echo", json={}, headers=_bearer("rotated-token"))).status == 200


async def test_no_configured_token_is_a_503_naming_the_variable(aiohttp_client: ClientFactory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    client = await aiohttp_client(_app())
    response = await client.post("/echo", json={}, headers=_bearer("anything"))
    assert response.status == 503
    assert ENV in (await response.json())["error"]


async def test_anonymous_when_allowed_but_a_wrong_token_is_still_refused(aiohttp_client: ClientFactory,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)
    client = await aiohttp_client(_app(allow_anonymous=True))
    assert (await client.post("/echo", json={"x": 1})).status == 200
    assert (await client.post("/echo", json={}, headers=_bearer("wrong"))).status == 401
    monkeypatch.delenv(ENV)
    assert (await client.post("/echo", json={"x": 1})).status == 200


async def test_bodies_over_the_limit_are_413_whether_announced_or_chunked(client: TestClient[Any, Any]) -> None:
    announced = await client.post("/echo", data=b"[" + b"1," * 600 + b"1]", headers=_bearer(TOKEN))
    assert announced.status == 413
    assert "limit is 1024" in (await announced.json())["error"]

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 200  # no Content-Length: the reader must count
    chunked = await client.post("/echo", data=chunks(), headers=_bearer(TOKEN))
    assert chunked.status == 413
    assert "exceeds the limit of 1024" in (await chunked.json())["error"]


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"{'single': 'quotes'}"])
async def test_bodies_that_are_not_json_are_400(client: TestClient[Any, Any], raw: bytes) -> None:
    response = await client.post("/echo", data=raw, headers=_bearer(TOKEN))
    assert response.status == 400
    assert "not valid UTF-8 JSON" in (await response.json())["error"]


async def test_json_nested_too_deeply_is_400_not_a_crash(aiohttp_client: ClientFactory,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)
    client = await aiohttp_client(_app(max_bytes=64 * 1024))
    response = await client.post("/echo", data=b"[" * 60_000, headers=_bearer(TOKEN))
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]


async def test_no_error_ever_contains_the_token(client: TestClient[Any, Any]) -> None:
    for headers in ({}, _bearer("wrong"), _bearer(TOKEN[:-2])):
        text = await (await client.post("/echo", data=b"{", headers=headers)).text()
        assert TOKEN not in text


def test_json_error_carries_extra_fields() -> None:
    response = json_error(400, "required", field="version")
    assert response.status == 400 and response.text == '{"error": "required", "field": "version"}'
    assert DEFAULT_TOKEN_ENV == "MARKETPLACE_EXPORTER_DEPLOY_TOKEN"


async def test_a_trailing_newline_in_the_variable_is_not_part_of_the_token(
        aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN + "\n")  # e.g. ENV=$(cat token-file) or a Kubernetes secret
    client = await aiohttp_client(_app())
    assert (await client.post("/echo", json={}, headers=_bearer(TOKEN))).status == 200
