"""OTLP/JSON bodies no SDK should send: refused whole with a clear reason, or read span by span."""

from __future__ import annotations

import json

import pytest

from marketplace_exporter.traffic.otlp_decode import BadRequest, ResourceSpans, decode_json

LABELS = ("seller.account", "seller.site")
SHOPEE = "https://partner.shopeemobile.com/api/v2/order/get_order_list"


def body_with(extra: str = '"x"', url: str = json.dumps(SHOPEE)) -> bytes:
    """One Shopee client span; ``extra`` is the raw JSON of an attribute the receiver never reads."""
    return ('{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": '
            '"erp"}}]}, "scopeSpans": [{"spans": [{"kind": 3, "startTimeUnixNano": "1", "endTimeUnixNano": "2", '
            '"attributes": [{"key": "url.full", "value": {"stringValue": ' + url + '}}, '
            '{"key": "http.response.status_code", "value": {"intValue": "200"}}, '
            '{"key": "app.note", "value": {"stringValue": ' + extra + '}}]}]}]}]}').encode()


def read(body: bytes) -> list[ResourceSpans]:
    return list(decode_json(body, LABELS))


@pytest.mark.parametrize(("body", "message"), [
    pytest.param(b'{"resourceSpans": [], "x": ' + b"9" * 5000 + b"}",
                 "body is not usable JSON: a number is out of range: line 1 column 28 (char 27)", id="5000-digits"),
    pytest.param(b'{"resourceSpans": [], "x": 1e999}',
                 "body is not usable JSON: a number is out of range: line 1 column 28 (char 27)", id="1e999"),
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
