"""Bad config files get every error at once, each with file:line, key path, expected and got —
and never the value of a secret. A table of bad files paired with their exact messages
(blackbox_exporter's TestLoadBadConfigs, in Python)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from marketplace_exporter.cli import demo_config_path
from marketplace_exporter.config import ConfigError, json_schema, load_config
from marketplace_exporter.config.schema import MARKETPLACE_ADAPTERS

#: how pydantic lists the accepted marketplaces (grows with the adapter registry)
KNOWN = ", ".join(f"'{name}'" for name in MARKETPLACE_ADAPTERS)

GOOD_AMAZON = """\
  - marketplace: amazon_sp
    alias: us-main
    site: US
    credentials: {client_id: a, client_secret: {value: s3cret-lwa}, refresh_token: {value: "Atzr|s3cret"}}
    checks: [{operation: marketplace_participations}]
"""

BAD_CONFIGS = [
    pytest.param(
        "defaults:\n  interval: 5 minutes\n  quota_budget: 2\n  colour: blue\n",
        ["f.yml:2: defaults.interval: expected a duration such as 30s or 5m, got '5 minutes'",
         "f.yml:3: defaults.quota_budget: expected less than or equal to 1, got 2",
         "f.yml:4: defaults.colour: unknown key (see `marketplace-exporter config-schema` for the allowed keys)"],
        id="defaults"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON.replace("site: US", "site: USA"),
        ["f.yml:4: accounts[0].site: expected 'AE', 'AU', 'BE', 'BR', 'CA', 'DE', 'EG', 'ES', 'FR', 'IE', "
         "'IN', 'IT', 'JP', 'MX', 'NL', 'PL', 'SA', 'SE', 'SG', 'TR', 'UK', 'US' or 'ZA', got 'USA'"],
        id="unknown-site"),
    pytest.param(
        "accounts:\n  - {marketplace: etsy, alias: x}\n",
        [f"f.yml:2: accounts[0]: expected marketplace {KNOWN}, got 'etsy'"],
        id="unknown-marketplace"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON.replace("client_secret: {value: s3cret-lwa}", "client_secret: s3cret-lwa"),
        ["f.yml:5: accounts[0].credentials.client_secret: expected ${ENV_VAR}, {file: PATH} or "
         "{value: LITERAL}, got a plain string (write secrets as a reference, or as {value: ...} to mark "
         "a literal as secret)"],
        id="plain-secret"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON.replace("{value: s3cret-lwa}", '"${SURELY_NOT_SET_VAR}"')
        .replace('{value: "Atzr|s3cret"}', "{file: /nonexistent/token}"),
        ["f.yml:5: accounts[0].credentials.client_secret: environment variable SURELY_NOT_SET_VAR is not set or empty",
         "f.yml:5: accounts[0].credentials.refresh_token: cannot read secret file /nonexistent/token: "
         "No such file or directory"],
        id="unavailable-secrets"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON.replace("{operation: marketplace_participations}",
                                            "{operation: marketplace_participations, interval: 5s, timeout: 10s}, "
                                            "{operation: marketplace_participations}, {operation: orders}"),
        ["f.yml:6: accounts[0].checks[2].operation: expected 'account' or 'marketplace_participations', got 'orders'"],
        id="unknown-operation"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON.replace("{operation: marketplace_participations}",
                                            "{operation: marketplace_participations, interval: 5s, timeout: 10s}, "
                                            "{operation: marketplace_participations}"),
        ["f.yml:6: accounts[0].checks[0].timeout: expected a timeout <= interval (5s), got 10s",
         "f.yml:6: accounts[0].checks[1]: duplicate check name 'marketplace_participations' in account 'us-main'"],
        id="semantic-check-errors"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON + GOOD_AMAZON,
        ["f.yml:8: accounts[1].alias: duplicate alias 'us-main' for amazon_sp (first at accounts[0])"],
        id="duplicate-alias"),
    pytest.param(
        "accounts:\n" + GOOD_AMAZON.replace("site: US", "site: USA") + GOOD_AMAZON.replace(
            "us-main", "us-2").replace("{value: s3cret-lwa}", '"${SURELY_NOT_SET_VAR}"'),
        ["f.yml:4: accounts[0].site: expected 'AE', 'AU', 'BE', 'BR', 'CA', 'DE', 'EG', 'ES', 'FR', 'IE', "
         "'IN', 'IT', 'JP', 'MX', 'NL', 'PL', 'SA', 'SE', 'SG', 'TR', 'UK', 'US' or 'ZA', got 'USA'",
         "f.yml:10: accounts[1].credentials.client_secret: "
         "environment variable SURELY_NOT_SET_VAR is not set or empty"],
        id="structural-and-semantic-errors-together"),
    pytest.param(
        "accounts:\n  - marketplace: amazon_sp\n    alias: a\n  - marketplace: amazon_sp\n",
        ["f.yml:2: accounts[0].site: missing required key",
         "f.yml:2: accounts[0].credentials: missing required key",
         "f.yml:2: accounts[0].checks: missing required key",
         "f.yml:4: accounts[1].alias: missing required key",
         "f.yml:4: accounts[1].site: missing required key",
         "f.yml:4: accounts[1].credentials: missing required key",
         "f.yml:4: accounts[1].checks: missing required key"],
        id="missing-keys"),
    pytest.param(
        "accounts: []\naccounts: []\n",
        ["f.yml:2: accounts: duplicate key (YAML would silently keep only the last one)"],
        id="duplicate-yaml-key"),
    pytest.param("accounts: [\n", None, id="broken-yaml"),
    pytest.param("- just\n- a list\n", ["f.yml:1: (root): expected a mapping of keys, got list"], id="not-a-mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_reports_every_error_located(text: str, expected: list[str] | None) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=text)
    if expected is None:  # YAML syntax errors: the parser's own text, located
        assert len(caught.value.errors) == 1 and caught.value.errors[0].startswith("f.yml:")
        assert "invalid YAML" in caught.value.errors[0]
    else:
        assert caught.value.errors == expected


def test_errors_never_quote_a_secret_value() -> None:
    text = "accounts:\n" + GOOD_AMAZON.replace("client_id: a", "client_id: 42, bogus: 1").replace(
        "{value: s3cret-lwa}", "{value: s3cret-lwa, extra: 1}").replace("site: US", "site: [s3cret-site]")
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=text)
    assert caught.value.errors  # several problems, located
    assert "s3cret" not in str(caught.value)


def test_the_shipped_demo_config_is_valid() -> None:
    config = load_config(demo_config_path())
    assert {check.id for check in config.checks} >= {
        "amazon_sp/us-main/marketplace_participations", "shopee/sg-main/get_shop_info", "http/self/erp-order-sync"}


def test_json_schema_describes_accounts_per_marketplace() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert "AmazonSpAccount" in text and "ShopeeAccount" in text and "HttpCheckConfig" in text


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketplace_exporter", *args],
                          capture_output=True, text=True, timeout=60)


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(textwrap.dedent("""\
        defaults: {interval: soon}
        accounts: [{marketplace: etsy}]
        """))
    result = run_cli("check-config", str(bad))
    assert result.returncode == 1
    assert f"{bad}:1: defaults.interval: expected a duration such as 30s or 5m, got 'soon'" in result.stderr
    assert f"{bad}:2: accounts[0]: expected marketplace" in result.stderr
    assert "2 error(s)" in result.stderr
    good = run_cli("check-config", demo_config_path())
    assert good.returncode == 0
    assert f"valid, {len(load_config(demo_config_path()).checks)} checks" in good.stdout


def test_config_schema_cli_prints_json() -> None:
    result = run_cli("config-schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "marketplace-exporter configuration"


def test_entries_validated_one_by_one_report_as_the_whole_file_would() -> None:
    """accounts and http_checks are validated entry by entry (memory at 50,000 checks); their
    errors still come in the whole file's order, as validating the root model reports them."""
    from pydantic import ValidationError

    from marketplace_exporter.adapters import ADAPTERS
    from marketplace_exporter.config.accounts import SECRET_KEYS
    from marketplace_exporter.config.load import UNKNOWN_KEY
    from marketplace_exporter.config.schema import config_model
    from marketplace_exporter.config.yaml_loading import LineMap, pydantic_errors

    text = ("traffic: {colour: blue}\ndefaults: {interval: soon}\nhttp_checks:\n  - {name: a}\n"
            "  - {name: b, url: 'http://x/', expect_status: [99]}\naccounts:\n"
            + GOOD_AMAZON.replace("site: US", "site: USA") + "  - {marketplace: nope}\n"
            + "deprecations: [{marketplace: x}]\n")
    with pytest.raises(ConfigError) as loaded:
        load_config("f.yml", text=text)
    import yaml

    with pytest.raises(ValidationError) as whole:
        config_model().model_validate(yaml.safe_load(text))
    root = yaml.compose(text)
    expected = pydantic_errors(whole.value, LineMap.of("f.yml", root), secret_keys=SECRET_KEYS,
                               unknown_key=UNKNOWN_KEY, strip_tag=ADAPTERS)
    assert loaded.value.errors == expected and len(expected) >= 6
