"""OTLP/JSON bodies no SDK should send: refused whole with a clear reason, or read span by span."""

from __future__ import annotations

import json
import re

import pytest
from otlp_requests import INTERNAL, SERVER, export_request, json_body, span

from marketplace_exporter.traffic.otlp_decode import BadRequest, ResourceSpans
from marketplace_exporter.traffic.otlp_json import decode_carefully, decode_json, decode_typed

LABELS = ("seller.account", "seller.site")
SHOPEE = "https://partner.shopeemobile.com/api/v2/order/get_order_list"
STABLE_ATTRIBUTES = {"http.request.method": "GET", "url.full": SHOPEE + "?partner_id=1", "server.port": 443,
                     "http.response.status_code": 429, "user_agent.original": "python-requests/2.32.3"}
OLD_ATTRIBUTES = {"http.method": "GET", "http.url": SHOPEE, "net.peer.name": "partner.shopeemobile.com",
                  "http.status_code": 503}


def body_with(extra: str = '"x"', url: str = json.dumps(SHOPEE)) -> bytes:
    """One Shopee client span; ``extra`` is the raw JSON of an attribute the receiver never reads."""
    return ('{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": '
            '"erp"}}]}, "scopeSpans": [{"spans": [{"kind": 3, "startTimeUnixNano": "1", "endTimeUnixNano": "2", '
            '"attributes": [{"key": "url.full", "value": {"stringValue": ' + url + '}}, '
            '{"key": "http.response.status_code", "value": {"intValue": "200"}}, '
            '{"key": "app.note", "value": {"stringValue": ' + extra + '}}]}]}]}]}').encode()


def read(body: bytes) -> list[ResourceSpans]:
    return list(decode_json(body, LABELS))


def with_start_time(raw: bytes) -> bytes:
    """A span whose start time (a field the receiver reads) is the raw JSON ``raw``."""
    return b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": 3, "startTimeUnixNano": ' + raw + b'}]}]}]}'


@pytest.mark.parametrize(("body", "message"), [
    pytest.param(with_start_time(b"9" * 5000),
                 "body is not usable JSON: a number is out of range: line 1 column 80 (char 79)", id="5000-digits"),
    pytest.param(with_start_time(b"1e999"),
                 "body is not usable JSON: a number is out of range: line 1 column 80 (char 79)", id="1e999"),
    pytest.param(b'{"resourceSpans": [], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                 "body is not usable JSON: nested deeper than 1024 levels", id="deep"),
    pytest.param(body_with("NaN"), "body is not valid UTF-8 JSON: unexpected character", id="nan"),
    pytest.param(body_with("Infinity"), "body is not valid UTF-8 JSON: unexpected character", id="infinity"),
    pytest.param(body_with('"cafe"').replace(b"cafe", b"caf\xe9"),
                 "body is not valid UTF-8 JSON: str is not valid UTF-8", id="not-utf8"),
    pytest.param(b"\xef\xbb\xbf{}", "body is not valid UTF-8 JSON: UTF-8 byte order mark", id="bom"),
    pytest.param(body_with('"\\udcff", "n": NaN'), "body is not usable JSON: NaN is not a JSON number",
                 id="lone-surrogate-and-nan"),
    pytest.param(b'{"resourceSpans": [], "x": "\\ud800", "y": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                 "body is not usable JSON: nested too deeply", id="lone-surrogate-and-deep"),
])
def test_bodies_that_are_not_usable_json_are_refused_with_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        read(body)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("number", [b"9" * 5000, b"1e999", b"-1e999"])
def test_a_number_out_of_range_in_a_field_never_read_is_skipped_like_the_field(number: bytes) -> None:
    """An SDK-shaped request is read through the typed slice, which checks unread fields for JSON
    syntax, escapes and UTF-8 only (as it skips their values): the request's spans count."""
    body = body_with().replace(b'"resourceSpans": [', b'"x": {"y": [' + number + b']}, "resourceSpans": [')
    [resource] = read(body)
    [span] = resource.spans
    assert span is not None and span.attributes == {"url": SHOPEE, "status": 200}


@pytest.mark.parametrize("escape", ["\\udcff", "\\uD83D", "\\ud83d\\u0041", "x\\ud83d"])
def test_a_lone_surrogate_in_an_attribute_costs_nothing(escape: str) -> None:
    """Node's JSON.stringify writes one for a string cut inside a pair; orjson refuses it, the
    standard library reads it, and losing the whole batch for one attribute would be wrong."""
    [resource] = read(body_with(f'"{escape}"'))
    [span] = resource.spans
    assert span is not None and span.attributes == {"url": SHOPEE, "status": 200}
    [resource] = read(body_with(url=f'"{SHOPEE}{escape}"'))
    assert resource.spans[0] is not None and str(resource.spans[0].attributes["url"]).startswith(SHOPEE)


def test_integers_past_64_bits_are_not_a_status_or_a_time() -> None:
    """orjson reads them as floats: a status or time that no SDK sends, rejected per span."""
    body = body_with().replace(b'"200"', b"18446744073709551616").replace(b'"2"', b"99999999999999999999999")
    [resource] = read(body)
    [span] = resource.spans
    assert span is not None and span.attributes["status"] == -1 and span.end_ns is None


@pytest.mark.parametrize("junk", ['7', '{"key": 7, "value": {}}', '{"key": ["url.full"]}', '{"value": {}}',
                                  '"url.full"', '{"key": {"a": 1}, "value": 1}'])
def test_attribute_entries_that_are_not_key_value_objects_are_skipped(junk: str) -> None:
    """The one-pass walk trusts an SDK's shape; a list with anything else in it is walked again
    carefully and still yields the usable attributes around the junk."""
    body = body_with().replace(b'[{"key": "url.full"', b'[' + junk.encode() + b', {"key": "url.full"')
    [resource] = read(body)
    [span] = resource.spans
    assert span is not None and span.attributes == {"url": SHOPEE, "status": 200}


@pytest.mark.parametrize("attributes", ['{"url.full": "x"}', '"url.full"', "null", "5"])
def test_attributes_that_are_not_a_list_read_as_none(attributes: str) -> None:
    body = body_with().replace(b'"attributes": [{"key": "url.full"', b'"attributes": ' + attributes.encode()
                               + b', "x": [{"key": "url.full"')
    [resource] = read(body)
    assert resource.resource == {"service.name": "erp"}
    [span] = resource.spans
    assert span is not None and span.attributes == {}


CODED = {"marketplace.error_code": "error_rate_limit", "seller.account": "sg-2", "http.response.status_code": 200}
SPANS = [span(STABLE_ATTRIBUTES), span(STABLE_ATTRIBUTES | CODED),
         span(OLD_ATTRIBUTES, error=True), span({"server.address": "partner.shopeemobile.com", "server.port": 8443,
                                                 "url.path": "/api/v2/shop/get_shop_info", "error.type": "timeout"}),
         span({"url.full": SHOPEE, "http.response.header.x-current-token-count": ["17", "18"],
               "http.response.status_code": "429", "app.flag": True, "app.ratio": 0.5}),
         span(STABLE_ATTRIBUTES, kind=SERVER), span({}, kind=INTERNAL)]


@pytest.mark.parametrize("enum_names", [False, True], ids=["enum-numbers", "enum-names"])
def test_sdk_shaped_requests_are_read_typed_and_the_same_as_carefully(enum_names: bool) -> None:
    """The typed reader is the fast path: it must take what SDKs send, and give what the careful
    reader gives (the one that checks each node as it reads it)."""
    request = export_request(({"service.name": "erp", "seller.account": "sg-main", "process.pid": 42}, SPANS),
                             ({"service.name": "other"}, SPANS[:2]))
    body = json_body(request, enum_names=enum_names)
    typed = decode_typed(body, LABELS)
    assert typed is not None, "an SDK-shaped body must fit the typed slice"
    assert typed == list(decode_carefully(body, LABELS))
    assert [len(resource.spans) for resource in typed] == [len(SPANS), 2]


@pytest.mark.parametrize("change", [
    (b'"kind": 3', b'"kind": true'), (b'"kind": 3', b'"kind": null'), (b'"kind": 3', b'"kind": 3.0'),
    (b'"kind": 3', b'"kind": "SPAN_KIND_NOPE"'), (b'"kind": 3', b'"kind": 18446744073709551615'),
    (b'"startTimeUnixNano": "1"', b'"startTimeUnixNano": 9223372036854775808'),
    (b'"startTimeUnixNano": "1"', b'"startTimeUnixNano": "x1"'),
    (b'{"intValue": "200"}', b'{"intValue": null, "stringValue": "200"}'),
    (b'{"intValue": "200"}', b'{"intValue": 200, "intValue": "x"}'),
    (b'{"stringValue": "x"}', b'{"stringValue": "caf\xc3\xa9 \\u00e9"}'),
    (b'{"stringValue": "x"}', b'{"boolValue": true}'),
    (b'{"key": "app.note", "value": {"stringValue": "x"}}', b'{"key": "app.note"}'),
    (b'"spans": [', b'"spans": [7, '),
    (b'"resourceSpans": [', b'"x": "\xff", "resourceSpans": ['),
], ids=lambda change: change[1].decode("utf-8", "replace"))
def test_odd_requests_give_what_the_careful_reader_gives(change: tuple[bytes, bytes]) -> None:
    """Whatever the typed slice does not take (a null, a bool for a number, an integer past 64 bits,
    a span that is not an object, bad UTF-8 anywhere...) is read carefully: the same spans as
    before the typed reader existed. Where both take it, both agree."""
    body = body_with().replace(*change)
    assert body != body_with()
    typed = decode_typed(body, LABELS)
    try:
        careful = list(decode_carefully(body, LABELS))
    except BadRequest as refused:
        assert typed is None
        with pytest.raises(BadRequest, match=re.escape(str(refused))):
            read(body)
        return
    assert read(body) == careful
    assert typed is None or typed == careful
