"""The ``traffic:`` config section: defaults, and located errors like every other section."""

from __future__ import annotations

import pytest

from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.traffic.api import configured_accounts
from marketplace_exporter.traffic.settings import DEFAULT_TRAFFIC_TOKEN_ENV

ACCOUNT = """
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    credentials:
      partner_id: 1
      partner_key: {value: k}
      shop_id: 1
      access_token: {value: t}
    checks: [{operation: get_shop_info}]
"""


def test_defaults_without_a_traffic_section() -> None:
    config = load_config("c.yml", text=ACCOUNT)
    assert config.traffic.token_env == DEFAULT_TRAFFIC_TOKEN_ENV
    assert config.traffic.anonymous_writes == "never"
    assert configured_accounts(config) == {"shopee": {"sg-main"}}


def test_a_bad_value_is_a_located_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("c.yml", text=ACCOUNT + "traffic:\n  max_services: 0\n  token_env: lower\n")
    text = str(caught.value)
    assert "c.yml:13: traffic.max_services" in text and "traffic.token_env" in text


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="traffic.series_cap"):
        load_config("c.yml", text=ACCOUNT + "traffic: {series_cap: 5}\n")


@pytest.mark.parametrize(("written", "policy"), [
    ("true", "always"), ("false", "never"), ("loopback", "loopback"), ("never", "never"), ("always", "always")])
def test_anonymous_writes_is_the_deploy_apis_policy_and_the_old_booleans_still_mean_the_same(
        written: str, policy: str) -> None:
    config = load_config("c.yml", text=ACCOUNT + f"traffic: {{anonymous_writes: {written}}}\n")
    assert config.traffic.anonymous_writes == policy


def test_an_unknown_anonymous_policy_says_what_to_write() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("c.yml", text=ACCOUNT + "traffic: {anonymous_writes: sometimes}\n")
    assert "c.yml:12: traffic.anonymous_writes: expected 'never', 'loopback' or 'always'" in str(caught.value)
