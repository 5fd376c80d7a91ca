"""One label-value rule everywhere a name becomes a label, matched as a whole: a trailing newline
(which ``re.match`` with ``$`` lets through) would split a label or forge a line in an export."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from marketplace_exporter.config_types import LabelValue
from marketplace_exporter.deploys.model import MarkerInvalid, parse_marker
from marketplace_exporter.labels import is_label_value, label_value
from marketplace_exporter.traffic.classify import label
from marketplace_exporter.traffic.wire import TrafficBatch

GOOD = ["us-main", "a", "shop_1.prod-2", "x" * 63]
BAD = ["prod\n", "prod\r\n", "", "-lead", "has space", "x" * 64, "中文", "a\nb"]


@pytest.mark.parametrize("value", GOOD)
def test_good_names_pass_everywhere(value: str) -> None:
    assert is_label_value(value) and label_value(value, "alias") == value
    assert TypeAdapter(LabelValue).validate_python(value) == value
    assert label(value, "account") == value


@pytest.mark.parametrize("value", BAD)
def test_bad_names_fail_everywhere_trailing_newline_included(value: str) -> None:
    assert not is_label_value(value)
    with pytest.raises(ValueError, match="alias: expected letters"):
        label_value(value, "alias")
    with pytest.raises(ValidationError):
        TypeAdapter(LabelValue).validate_python(value)
    with pytest.raises(ValueError):
        label(value, "account")
    with pytest.raises(ValidationError):
        TrafficBatch.model_validate({"service": value})
    if value:
        with pytest.raises(MarkerInvalid) as caught:
            parse_marker({"service": value, "environment": "prod", "version": "v1"}, now=1.8e9)
        assert caught.value.field == "service"
