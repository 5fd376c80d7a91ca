"""bridge.yml: the shipped example loads; every mistake is reported located, secrets never quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketplace_exporter.bridge.config import load_bridge_config
from marketplace_exporter.config.load import ConfigError

REPO = Path(__file__).resolve().parents[2]
SECRET_VALUE = "https://oapi.dingtalk.com/robot/send?access_token=topsecret-token-123"


def load(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "bridge.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_bridge_config(path)
    return info.value.errors


def test_the_shipped_example_loads_with_its_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BRIDGE_TOKEN", "DINGTALK_WEBHOOK_URL", "DINGTALK_SECRET", "WECOM_WEBHOOK_URL",
                 "FEISHU_WEBHOOK_URL", "FEISHU_SECRET"):
        monkeypatch.setenv(name, f"value-of-{name}")
    config = load_bridge_config(REPO / "deploy" / "bridge.yml")
    assert sorted(config.receivers) == ["oncall", "platform", "team-aliexpress", "team-amazon", "team-americas",
                                        "team-sea"]
    ding = config.receivers["oncall"]
    assert (ding.channel, ding.language, ding.timezone.key, ding.per_minute) == ("dingtalk", "zh", "Asia/Shanghai", 20)
    feishu = config.receivers["team-americas"]
    assert (feishu.language, feishu.timezone.key, feishu.per_minute, feishu.per_second) == (
        "en", "America/Los_Angeles", 100, 5)
    assert config.retry.security_attempts == 3


def test_the_shipped_example_names_unset_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DINGTALK_SECRET", raising=False)
    with pytest.raises(ConfigError) as info:
        load_bridge_config(REPO / "deploy" / "bridge.yml")
    assert any("receivers.oncall.secret: environment variable DINGTALK_SECRET is not set" in e
               for e in info.value.errors)


def test_errors_are_located_by_line_and_key_path(tmp_path: Path) -> None:
    errors = load("""\
receivers:
  ops:
    channel: slack
    url: {value: x}
  other:
    channel: wecom
    url: {value: y}
    colour: red
""", tmp_path)
    path = tmp_path / "bridge.yml"
    assert (f"{path}:3: receivers.ops.channel: expected 'dingtalk', 'wecom', 'feishu' or 'webhook', "
            "got 'slack'") in errors
    assert f"{path}:8: receivers.other.colour: unknown key" in errors


def test_semantic_errors_are_all_reported_together(tmp_path: Path) -> None:
    errors = load("""\
fallback_receiver: nobody
defaults:
  timezone: Mars/Olympus
receivers:
  ops:
    channel: wecom
    url: {value: x}
    secret: {value: y}
  ding:
    channel: dingtalk
    url: ${SURELY_UNSET_BRIDGE_VAR}
    grafana_url: grafana:3000
""", tmp_path)
    text = "\n".join(errors)
    assert ":1: fallback_receiver: expected one of the receivers (ding, ops), got 'nobody'" in text
    assert ":3: defaults.timezone: expected an IANA time zone such as Asia/Shanghai, got 'Mars/Olympus'" in text
    assert ":8: receivers.ops.secret: wecom robots have no signing secret; remove the key" in text
    assert ":11: receivers.ding.url: environment variable SURELY_UNSET_BRIDGE_VAR is not set or empty" in text
    assert ":12: receivers.ding.grafana_url: expected an http(s) URL, got 'grafana:3000'" in text
    assert text.count("defaults.timezone") == 1  # one mistake, one line (not one per receiver)


def test_a_plain_string_url_is_refused_without_quoting_it(tmp_path: Path) -> None:
    errors = load(f"""\
receivers:
  ops:
    channel: dingtalk
    url: {SECRET_VALUE}
""", tmp_path)
    assert len(errors) == 1
    assert ":4: receivers.ops.url: expected ${ENV_VAR}, {file: PATH} or {value: LITERAL}" in errors[0]
    assert "topsecret" not in errors[0]


def test_no_receivers_and_bad_yaml(tmp_path: Path) -> None:
    assert load("receivers: {}\n", tmp_path)[0].endswith(":1: receivers: expected at least one receiver")
    assert "invalid YAML" in load("receivers: [\n", tmp_path)[0]


def test_relative_storage_path_is_next_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yml"
    path.write_text("storage_path: data/outbox.db\nauth: {anonymous: true}\n"
                    "receivers:\n  a: {channel: webhook, url: {value: http://h/x}}\n")
    assert load_bridge_config(path).storage_path == str(tmp_path / "data" / "outbox.db")
