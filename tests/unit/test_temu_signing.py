"""Temu's MD5 request signature against Temu's own worked example [J1 dg/13], plus the serialisation
rules of Temu's Python example [J1 dg/17] that the worked example exercises only in part."""

from __future__ import annotations

import hashlib
import json

from marketplace_exporter.adapters.temu_signing import base_string, request_body, sign, value_text

# Temu's published worked example (developer guide "Signature method for API request"; the list form,
# not the page-wrapped one-line rendering with three stray spaces). The digest was recomputed
# independently with `openssl dgst -md5` over EXPECTED_BASE.
SECRET = "c7e0a1a63542be4de3cb5488f9fba8149e8fc290"
PARAMS: dict[str, object] = {
    "type": "bg.logistics.shipment.confirm",
    "app_key": "f9d5cc9313893a20d5aa85c654e8f503",
    "timestamp": 1711009072,
    "data_type": "JSON",
    "access_token": "2nifvmpyymvypwmcms5ct4uqqudrwgpmzbcnmkt1jzjkuaf3x56iixym",
    "sendType": 0,
    "sendRequestList": [{
        "orderSendInfoList": [{"quantity": 1, "orderSn": "211-21905473070712792",
                               "parentOrderSn": "PO-211-21905452099192792", "goodsId": 601099548666279,
                               "skuId": 17592352673534}],
        "carrierId": "699272611", "trackingNumber": "270324232756"}],
}
EXPECTED_BASE = (
    SECRET
    + "access_token2nifvmpyymvypwmcms5ct4uqqudrwgpmzbcnmkt1jzjkuaf3x56iixym"
    + "app_keyf9d5cc9313893a20d5aa85c654e8f503"
    + "data_typeJSON"
    + 'sendRequestList[{"orderSendInfoList":[{"quantity":1,"orderSn":"211-21905473070712792",'
      '"parentOrderSn":"PO-211-21905452099192792","goodsId":601099548666279,"skuId":17592352673534}],'
      '"carrierId":"699272611","trackingNumber":"270324232756"}]'
    + "sendType0"
    + "timestamp1711009072"
    + "typebg.logistics.shipment.confirm"
    + SECRET
)


def test_the_official_worked_example() -> None:
    assert base_string(SECRET, PARAMS) == EXPECTED_BASE
    assert sign(SECRET, PARAMS) == "4CCF219942D4180C6DDA3CE36C1B838F"


def test_sign_is_excluded_and_keys_sort_ascii_ascending() -> None:
    assert sign(SECRET, {**PARAMS, "sign": "anything"}) == "4CCF219942D4180C6DDA3CE36C1B838F"
    # ASCII order: upper case before lower case, '_' (0x5F) between them
    assert base_string("s", {"b": "1", "B": "2", "a_b": "3", "aB": "4"}) == "sB2aB4a_b3b1s"


def test_values_serialise_as_temus_python_example() -> None:
    assert value_text("plain") == "plain"
    assert value_text('say "hi"') == 'say \\"hi\\"'  # JSON-escaped inside, outer quotes removed
    assert value_text("店铺") == "店铺"  # ensure_ascii=False: signed as UTF-8, not \\u escapes
    assert value_text(0) == "0" and value_text(True) == "true" and value_text(None) == "null"
    assert value_text({"b": 1, "a": [1, "x"]}) == '{"b":1,"a":[1,"x"]}'  # nested order kept as given


def test_the_body_sent_is_what_was_signed() -> None:
    body = request_body(SECRET, PARAMS)
    sent = json.loads(body)
    assert sent["sign"] == "4CCF219942D4180C6DDA3CE36C1B838F"
    assert {key: value for key, value in sent.items() if key != "sign"} == PARAMS
    # the nested value as it appears in the body is the exact text that was signed
    assert value_text(PARAMS["sendRequestList"]).encode() in body
    digest = hashlib.md5(EXPECTED_BASE.encode()).hexdigest().upper()
    assert digest == sent["sign"]
