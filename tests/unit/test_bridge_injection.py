"""Alert data cannot mention people or inject markup in any robot's message (issue 14): the
rendered request bodies of DingTalk, WeCom and Feishu, in both languages, for hostile label values,
alert names and URLs; who alerts may mention; the mention cap. f014b6e put values in raw, so
``<at id=all></at>`` paged a whole Feishu group, ``<@all>`` a WeCom one, and any phone number in
``dingtalk_at_mobiles`` was @-mentioned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from marketplace_exporter.bridge.alertmanager import parse_notification
from marketplace_exporter.bridge.channels import channels
from marketplace_exporter.bridge.config import load_bridge_config
from marketplace_exporter.bridge.render import RenderOptions, render
from marketplace_exporter.config.yaml_loading import ConfigError

HOSTILE = "<at id=all></at> <@all> @13800000000 [x](http://evil/) <font color=red>"


def notification(labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
    alert = {"status": "firing", "labels": {"alertname": HOSTILE, "severity": HOSTILE, **labels},
             "annotations": {"summary": HOSTILE, "description": HOSTILE, **(annotations or {})},
             "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "javascript:alert(1)", "fingerprint": "f"}
    return parse_notification({"version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
                               "groupLabels": {"alertname": HOSTILE}, "commonLabels": {}, "commonAnnotations": {},
                               "externalURL": "http://am:9093/)<at id=all></at>", "alerts": [alert]})


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu", "webhook"])
def test_no_value_becomes_markup_or_a_mention_in_any_channel(kind: str, language: str) -> None:
    channel = channels()[kind]
    options = RenderOptions(channel=kind, language=language, timezone=ZoneInfo("UTC"),
                            mobiles_from=("dingtalk_at_mobiles",), user_ids_from=("at_user_ids",))
    message = render([notification({"account": HOSTILE, "dingtalk_at_mobiles": "13800000000",
                                     "at_user_ids": "all,ou_x"}, {"runbook_url": "http://wiki/)<@all>"})],
                     options, channel.budget)
    body = channel.build("http://robot.example/send?access_token=t", None, message, 0, "id").body.decode()
    for markup in ("<at", "<@", "<font color=red", "@13800000000", "[x](", "javascript:", "(http://am:9093/)"):
        assert markup not in json.loads(body).__repr__(), (markup, body)
    assert "＜at id=all＞" in message.title and "＜at id=all＞＜/at＞ ＜＠all＞ ＠13800000000 ［x］" in message.text
    assert message.mentions.mobiles == () and message.mentions.user_ids == () and not message.mentions.at_all


def test_alerts_mention_only_allowed_people_and_at_most_max_mentions() -> None:
    options = RenderOptions(channel="feishu", language="en", timezone=ZoneInfo("UTC"), user_ids=("ou_oncall",),
                            user_ids_from=("at_user_ids",), allowed_user_ids=("ou_a", "ou_b", "ou_c"),
                            max_mentions=3)
    message = render([notification({"at_user_ids": "ou_intruder, ou_a; ou_b,ou_c, ou_a"})], options,
                     channels()["feishu"].budget)
    assert message.mentions.user_ids == ("ou_oncall", "ou_a", "ou_b")
    assert message.mentions.more == 1
    assert message.text.endswith("\n<at id=ou_oncall></at> <at id=ou_a></at> <at id=ou_b></at> "
                                 "and 1 more not mentioned (at most 3 per message)\n")


@pytest.mark.parametrize(("mentions", "error"), [
    ("{user_ids: [all]}", "'all' is not a user id; set mentions.all: true to @ everyone"),
    ("{allowed_user_ids: [ALL]}", "'all' is not a user id"),
    ("{user_ids: ['<at id=x>']}", "expected a string matching"),
    ("{mobiles: ['138-call-me']}", "expected a string matching"),
    ("{max_mentions: 1000}", "expected less than or equal to 200"),
])
def test_configured_mentions_cannot_carry_markup_or_everyone(tmp_path: Path, mentions: str, error: str) -> None:
    text = ("auth: {anonymous: true}\nreceivers:\n  r: {channel: feishu, url: {value: 'http://127.0.0.1:9/h'}, "
            f"mentions: {mentions}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_bridge_config(tmp_path / "bridge.yml", text=text)
    assert error in str(caught.value)
