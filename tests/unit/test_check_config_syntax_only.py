"""``check-config --syntax-only`` (and ``bridge --check --syntax-only``): a CI job lints the config a
deployment will fill in, without its secrets: unset variables and missing secret, token, CA and
certificate files pass; every structural error is still found, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketplace_exporter import cli

CONFIG = """\
defaults:
  ca_file: /nonexistent/ca.pem
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    credentials:
      partner_id: 123
      partner_key: ${MPX_TEST_UNSET_PARTNER_KEY}
      shop_id: 456
      access_token: {file: /nonexistent/shopee-token}
    checks: [{operation: get_shop_info}]
"""
BRIDGE = """\
storage_path: outbox.db
auth: {bearer_token: "${MPX_TEST_UNSET_BRIDGE_TOKEN}"}
receivers:
  oncall: {channel: dingtalk, url: "${MPX_TEST_UNSET_DINGTALK_URL}", secret: {file: /nonexistent/sec}}
"""
WEB = "tls_server_config:\n  cert_file: /nonexistent/tls.crt\n  key_file: /nonexistent/tls.key\n"


@pytest.fixture(autouse=True)
def _quiet_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("marketplace_exporter.cli.setup_logging", lambda *_: None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_secrets_fail_the_full_check_and_pass_the_syntax_check(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    code, _, err = run(capsys, "check-config", str(config))
    assert code == 1
    assert "credentials.partner_key: environment variable MPX_TEST_UNSET_PARTNER_KEY is not set" in err
    assert "credentials.access_token: cannot read secret file /nonexistent/shopee-token" in err
    assert "defaults.ca_file: expected a readable PEM file" in err
    code, out, err = run(capsys, "check-config", "--syntax-only", str(config))
    assert (code, err) == (0, "")
    assert "valid, 1 checks (syntax only" in out


def test_the_syntax_check_still_finds_every_structural_error(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.replace("site: SG", "site: Singapore").replace("partner_id: 123", "partner_idd: 123"))
    code, _, err = run(capsys, "check-config", "--syntax-only", str(config))
    assert code == 1
    assert f"{config}:6: accounts[0].site: expected" in err
    assert "accounts[0].credentials.partner_idd: unknown key" in err


def test_bridge_and_web_config_syntax_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bridge.yml").write_text(BRIDGE)
    Path("web.yml").write_text(WEB)
    code, _, err = run(capsys, "bridge", "--config.file=bridge.yml", "--check")
    assert code == 1 and "MPX_TEST_UNSET_DINGTALK_URL is not set" in err
    code, out, _ = run(capsys, "bridge", "--config.file=bridge.yml", "--check", "--syntax-only",
                       "--web.config.file=web.yml")
    assert code == 0 and "valid, 1 receiver(s); webhooks need a bearer token (syntax only" in out
    code, _, err = run(capsys, "check-config", "--web.config.file=web.yml")
    assert code == 1 and "web.yml:2: tls_server_config.cert_file: cannot read /nonexistent/tls.crt" in err
    code, out, _ = run(capsys, "check-config", "--syntax-only", "--web.config.file=web.yml")
    assert code == 0 and "valid web config: TLS" in out
    Path("web.yml").write_text(WEB + "  curve_preferences: [X25519, CurveP384]\n")
    code, _, err = run(capsys, "check-config", "--syntax-only", "--web.config.file=web.yml")
    assert code == 1 and "curve_preferences: more than one curve" in err
