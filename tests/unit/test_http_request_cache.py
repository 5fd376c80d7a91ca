"""The generic check's request cache: the same request for the same method, URL, body and headers,
kept as parts the garbage collector does not track, never churned (a full cache admits no more:
clearing it made thousands of requests a second long-lived garbage at 50,000 checks), and never
used for secret headers (a secret file may be rotated)."""

from __future__ import annotations

import gc

import pytest
from adapter_harness import context_builder, drive_probe, json_response

from marketplace_exporter.adapters import http
from marketplace_exporter.adapters.http import HttpCheck, HttpParams, build_request
from marketplace_exporter.model import RequestSpec


def sent(p: HttpParams) -> RequestSpec:
    ctx = context_builder(alias="self", site="global", operation="request", credentials=lambda: None,
                          params=lambda: p)()
    (request,), _ = drive_probe(HttpCheck(), ctx, json_response(200, b""))
    return request


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    http._REQUESTS.clear()


def test_a_cached_request_is_the_request_built_and_holds_nothing_the_collector_tracks() -> None:
    p = HttpParams.model_validate({"url": "https://erp.example.com/health?x=1", "method": "POST", "body": "{}",
                                   "headers": {"Accept": "application/json"}})
    first, again = sent(p), sent(p)
    assert first == again == build_request(p)
    assert sent(HttpParams.model_validate(p.model_dump())) == first  # another check, the same request
    assert len(http._REQUESTS) == 1
    for _ in range(3):  # a collection stops tracking a tuple whose items are untracked: nested, one level each
        gc.collect()
    assert not any(gc.is_tracked(part) for entry in http._REQUESTS.items() for part in entry)


def test_a_full_cache_admits_no_more_and_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_CACHED_REQUESTS", 2)
    checks = [HttpParams.model_validate({"url": f"https://erp.example.com/{i}"}) for i in range(3)]
    requests = [sent(p) for p in checks]
    assert len(http._REQUESTS) == 2
    assert [sent(p) for p in checks] == requests


def test_secret_headers_are_never_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_TOKEN", "s3cret-token")
    p = HttpParams.model_validate({"url": "https://erp.example.com/", "headers": {"Authorization": "${ERP_TOKEN}"}})
    assert ("authorization", "s3cret-token") in sent(p).headers
    assert http._REQUESTS == {}
