"""The generic check's request cache: reused while its params live, forgotten with them, and never
churned (a full cache admits no more: clearing it made thousands of requests a second long-lived
garbage at 50,000 checks)."""

from __future__ import annotations

import gc

import pytest
from adapter_harness import context_builder, drive_probe, json_response

from marketplace_exporter.adapters import http
from marketplace_exporter.adapters.http import HttpCheck, HttpParams
from marketplace_exporter.model import RequestSpec


def sent(p: HttpParams) -> RequestSpec:
    ctx = context_builder(alias="self", site="global", operation="request", credentials=lambda: None,
                          params=lambda: p)()
    (request,), _ = drive_probe(HttpCheck(), ctx, json_response(200, b""))
    return request


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    http._REQUESTS.clear()


def test_a_request_is_built_once_per_params_and_forgotten_with_them() -> None:
    p = HttpParams.model_validate({"url": "https://erp.example.com/health?x=1"})
    first = sent(p)
    assert sent(p) is first and first.query == (("x", "1"),)
    del p
    gc.collect()
    assert http._REQUESTS == {}


def test_a_full_cache_admits_no_more_and_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_CACHED_REQUESTS", 2)
    kept = [HttpParams.model_validate({"url": f"https://erp.example.com/{i}"}) for i in range(3)]
    requests = [sent(p) for p in kept]
    assert len(http._REQUESTS) == 2
    assert sent(kept[0]) is requests[0]  # cached ones stay
    again = sent(kept[2])
    assert again is not requests[2] and again == requests[2]  # built again, the same request
