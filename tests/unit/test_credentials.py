"""Rotating platforms: the exporter reads the token production holds (a token file the ERP rewrites,
picked up without restart) and refuses any config that asks it to refresh."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from marketplace_exporter.adapters.shopee import ShopeeCredentials
from marketplace_exporter.catalogue import Credential
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.credentials import TokenFileCache, parse_token_file
from marketplace_exporter.secrets import REDACTOR, SecretUnavailable

SHOPEE = {"partner_id": 1, "partner_key": {"value": "pk-secret-1"}, "shop_id": 2}


def test_token_file_json_and_yaml_give_the_token_and_every_expiry() -> None:
    held = parse_token_file(json.dumps({"access_token": "tok-json-1", "expires_at": "2026-11-26T18:00:00Z",
                                        "refresh_expires_at": 1800000000, "refresh_token": "ignored"}), "f")
    assert held.access_token == "tok-json-1"
    assert {(o.credential, o.expires_at) for o in held.expiries} == {
        (Credential.ACCESS_TOKEN, 1795716000.0), (Credential.REFRESH_TOKEN, 1800000000.0)}
    held = parse_token_file("access_token: tok-yaml-1\nauthorization_expires_at: 2027-01-01\n", "f")
    assert held.expiries[0].credential is Credential.AUTHORIZATION
    assert REDACTOR.redact("tok-yaml-1") == "<redacted>"


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "token file f: expected a mapping with access_token"),
    ("{}", "token file f: access_token missing or not a string"),
    ('{"access_token": "x", "expires_at": "soon"}', "token file f: expires_at is not a date, ISO-8601 time"),
    ("a: [", "token file f is neither JSON nor YAML"),
])
def test_bad_token_files_are_explained_without_quoting_them(text: str, message: str) -> None:
    with pytest.raises(SecretUnavailable) as caught:
        parse_token_file(text, "f")
    assert str(caught.value).startswith(message)


def test_a_rewritten_token_file_is_picked_up_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "shopee-token.json"
    path.write_text(json.dumps({"access_token": "first-aaaa"}))
    creds = ShopeeCredentials.model_validate({**SHOPEE, "token_file": str(path)})
    assert creds.held_token().access_token == "first-aaaa"
    path.write_text(json.dumps({"access_token": "second-bbbbbb", "expires_at": 1800000000}))
    os.utime(path, (1, os.stat(path).st_mtime + 5))
    held = creds.held_token()
    assert held.access_token == "second-bbbbbb" and held.expiries[0].expires_at == 1800000000


def test_cache_does_not_reread_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"access_token": "cached-1"}')
    cache = TokenFileCache()
    first = cache.read(str(path))
    assert cache.read(str(path)) is first


@pytest.mark.parametrize("key", ["refresh_token", "refresh"])
def test_asking_a_rotating_platform_to_refresh_is_a_config_error(key: str) -> None:
    text = ("accounts:\n  - marketplace: shopee\n    alias: sg\n    site: SG\n"
            f"    credentials: {{partner_id: 1, partner_key: {{value: k}}, shop_id: 2, access_token: {{value: t}},"
            f" {key}: {{value: r}}}}\n    checks: [{{operation: get_shop_info}}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=text)
    (message,) = caught.value.errors
    assert message.startswith(f"f.yml:5: accounts[0].credentials: '{key}' is not accepted: this platform's "
                              "refresh tokens rotate")


def test_exactly_one_token_source_and_a_readable_token_file_are_required(tmp_path: Path) -> None:
    base = "accounts:\n  - marketplace: shopee\n    alias: sg\n    site: SG\n    checks: [{operation: get_shop_info}]\n"
    creds = "    credentials: {partner_id: 1, partner_key: {value: k}, shop_id: 2, "
    both = base + creds + "access_token: {value: t}, token_file: x}\n"
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=both)
    assert caught.value.errors == [
        "f.yml:6: accounts[0].credentials: expected exactly one of access_token or token_file"]
    missing = base + creds + f"token_file: {tmp_path}/nope.json}}\n"
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=missing)
    assert caught.value.errors == [f"f.yml:6: accounts[0].credentials.token_file: cannot read token file "
                                   f"{tmp_path}/nope.json: No such file or directory"]


def test_tiktok_absolute_expiry_names_are_read_from_a_token_file() -> None:
    held = parse_token_file(json.dumps({"access_token": "tt-token-1", "access_token_expire_in": 1795000000,
                                        "refresh_token_expire_in": 4841467787}), "f")
    assert {(o.credential, o.expires_at) for o in held.expiries} == {
        (Credential.ACCESS_TOKEN, 1795000000.0), (Credential.REFRESH_TOKEN, 4841467787.0)}
