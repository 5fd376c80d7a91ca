"""SP-API regions: getAccount exists in the EU region only [A24][A25], so config refuses it for NA and
FE sites, naming the check (an NA/FE seller probing it would get a permanent error: a standing
false alert)."""

from __future__ import annotations

import pytest

from marketplace_exporter.adapters.amazon_sp import AmazonCredentials, AmazonSP
from marketplace_exporter.config import ConfigError, load_config


def creds() -> AmazonCredentials:
    return AmazonCredentials.model_validate({"client_id": "amzn1.application-oa2-client.test",
                                             "client_secret": {"value": "s"}, "refresh_token": {"value": "r"}})


@pytest.mark.parametrize(("site", "region"), [("US", "NA"), ("BR", "NA"), ("JP", "FE"), ("AU", "FE"),
                                              ("DE", None), ("UK", None), ("IN", None), ("TR", None)])
def test_get_account_is_refused_outside_the_eu_region(site: str, region: str | None) -> None:
    """getAccount: "Regions: EU" [A24]; "only available in the EU region" [A25]."""
    problems = AmazonSP().account_problems(site, creds(), ["marketplace_participations", "account"])
    if region is None:
        assert problems == []
    else:
        assert [where for where, _ in problems] == [("checks", 1, "operation")]
        assert f"site {site} is in the {region} region" in problems[0][1] and "EU region only" in problems[0][1]


def test_config_names_the_check_that_cannot_work() -> None:
    text = """
accounts:
  - marketplace: amazon_sp
    alias: us-main
    site: US
    credentials: {client_id: a, client_secret: {value: b}, refresh_token: {value: c}}
    checks:
      - operation: marketplace_participations
      - operation: account
"""
    with pytest.raises(ConfigError) as refused:
        load_config("sp.yml", text=text)
    assert len(refused.value.errors) == 1
    assert refused.value.errors[0].startswith("sp.yml:9: accounts[0].checks[1].operation: getAccount")
