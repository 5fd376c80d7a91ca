"""``accounts_files:``: one file per seller, written by an ERP. All files are validated up front by
``check-config``; at run time a broken file keeps its last good version while the others apply, and
every error names the file, the line and the key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from marketplace_exporter.cli import main
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.config.accounts_files import AccountsFiles

MAIN = "accounts_files: [sellers/]\n"


def shopee(alias: str, site: str = "SG", **extra: object) -> dict[str, object]:
    return {"marketplace": "shopee", "alias": alias, "site": site,
            "credentials": {"partner_id": 1, "partner_key": {"value": "k"}, "shop_id": 1,
                            "access_token": {"value": "t"}},
            "checks": [{"operation": "get_shop_info"}], **extra}


def write(path: Path, content: object, *, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2), encoding="utf-8")
    if mtime is not None:  # a distinct mtime: the change is seen even within one clock tick
        os.utime(path, ns=(mtime, mtime))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write(tmp_path / "sellers" / "1001.json", shopee("seller-1001"))
    write(tmp_path / "sellers" / "1002.yml", "marketplace: shopee\nalias: seller-1002\nsite: MY\n"
          "credentials: {partner_id: 1, partner_key: {value: k}, shop_id: 2, access_token: {value: t}}\n"
          "checks: [{operation: get_shop_info}]\n")
    write(tmp_path / "sellers" / "1003.json", [shopee("seller-1003-sg"), shopee("seller-1003-th", "TH")])
    return write(tmp_path / "exporter.yml", MAIN)


def ids(checks: object) -> list[str]:
    return sorted(check.id for check in checks)  # type: ignore[attr-defined]


def test_every_file_of_the_directory_adds_its_accounts(config: Path) -> None:
    loaded = load_config(config)
    assert ids(loaded.checks) == ["shopee/seller-1001/get_shop_info", "shopee/seller-1002/get_shop_info",
                                  "shopee/seller-1003-sg/get_shop_info", "shopee/seller-1003-th/get_shop_info"]
    assert loaded.own_checks == ()


def test_temporary_and_hidden_files_an_erp_writes_before_renaming_are_not_read(config: Path) -> None:
    write(config.parent / "sellers" / ".1004.json", "{half written")
    write(config.parent / "sellers" / "1004.json.tmp", "{half written")
    write(config.parent / "sellers" / "notes.txt", "not an account")
    assert len(load_config(config).checks) == 4


def test_globs_are_relative_to_the_config_file(tmp_path: Path, config: Path) -> None:
    write(config, "accounts_files: ['sellers/100[12].*']\n")
    assert ids(load_config(config).checks) == ["shopee/seller-1001/get_shop_info",
                                               "shopee/seller-1002/get_shop_info"]


def test_errors_name_the_accounts_file_the_line_and_the_key(config: Path) -> None:
    bad = write(config.parent / "sellers" / "1001.json", shopee("seller-1001", site="USA"))
    broken_yaml = write(config.parent / "sellers" / "1002.yml", "marketplace: shopee\nalias: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert f"{bad}:4: site: expected 'BR', 'CL'" in str(caught.value) and "got 'USA'" in str(caught.value)
    assert f"{broken_yaml}:3: invalid YAML" in str(caught.value)


def test_an_error_in_a_list_entry_names_its_index_and_never_quotes_a_secret(config: Path) -> None:
    entry = shopee("seller-1003-th", "TH")
    entry["credentials"] = {**entry["credentials"], "partner_key": "s3cr3t-plain"}  # type: ignore[dict-item]
    bad = write(config.parent / "sellers" / "1003.json", [shopee("seller-1003-sg"), entry])
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert f"{bad}:" in str(caught.value) and "[1].credentials.partner_key" in str(caught.value)
    assert "s3cr3t-plain" not in str(caught.value)


def test_a_missing_directory_is_an_error_at_load(config: Path) -> None:
    write(config, "accounts_files: [sellerz/]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.errors == [f"{config}:1: accounts_files[0]: expected a directory, a file or a glob; "
                                   f"{config.parent / 'sellerz'}/ does not exist"]


def test_a_broken_file_keeps_its_last_good_version_and_the_others_apply(config: Path) -> None:
    files = AccountsFiles()
    assert len(load_config(config, accounts=files).checks) == 4
    write(config.parent / "sellers" / "1001.json", "{not json", mtime=1)
    write(config.parent / "sellers" / "1005.json", shopee("seller-1005"), mtime=1)
    loaded = load_config(config, accounts=files)  # at run time: no error, the file is reported instead
    assert "shopee/seller-1001/get_shop_info" in ids(loaded.checks)  # its last good version
    assert "shopee/seller-1005/get_shop_info" in ids(loaded.checks)  # another file still applies
    [(path, problems)] = files.broken().items()
    assert path.endswith("1001.json") and problems[0].startswith(f"{path}:1: invalid JSON")
    assert (files.files_ok, files.errors_total) == (3, 1)
    write(config.parent / "sellers" / "1001.json", shopee("seller-1001-renamed"), mtime=2)
    assert files.scan(loaded.accounts_files, loaded.account_context) is True
    assert "shopee/seller-1001-renamed/get_shop_info" in ids(files.file_checks)
    assert files.broken() == {} and files.errors_total == 1


def test_a_file_never_good_contributes_nothing_but_is_listed(config: Path) -> None:
    files = AccountsFiles()
    write(config.parent / "sellers" / "1009.json", {"marketplace": "shopee"})
    assert len(load_config(config, accounts=files).checks) == 3 + 1
    assert list(files.broken()) == [str(config.parent / "sellers" / "1009.json")]


def test_a_deleted_file_takes_its_accounts_away_and_an_unchanged_scan_changes_nothing(config: Path) -> None:
    files = AccountsFiles()
    loaded = load_config(config, accounts=files)
    assert files.scan(loaded.accounts_files, loaded.account_context) is False
    (config.parent / "sellers" / "1002.yml").unlink()
    assert files.scan(loaded.accounts_files, loaded.account_context) is True
    assert "shopee/seller-1002/get_shop_info" not in ids(files.file_checks)


def test_an_alias_defined_twice_is_used_once_and_the_later_file_is_listed(config: Path) -> None:
    write(config, MAIN + "accounts: [" + json.dumps(shopee("seller-1001")) + "]\n")
    later = write(config.parent / "sellers" / "2000.json", shopee("seller-1002", "MY"))
    files = AccountsFiles()
    loaded = load_config(config, accounts=files)
    assert ids(loaded.checks).count("shopee/seller-1002/get_shop_info") == 1
    assert ids(loaded.checks).count("shopee/seller-1001/get_shop_info") == 1
    broken = files.broken()
    assert set(broken) == {str(config.parent / "sellers" / "1001.json"), str(later)}
    assert f"{later}:3: alias: duplicate alias 'seller-1002' for shopee" in broken[str(later)][0]
    assert "the config file's accounts" in broken[str(config.parent / "sellers" / "1001.json")][0]


def test_check_config_validates_every_accounts_file(config: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # main() would point the root logger at this test's captured stderr, which later tests outlive
    monkeypatch.setattr("marketplace_exporter.cli.setup_logging", lambda *_: None)
    assert main(["check-config", str(config)]) == 0
    assert "accounts files: 3 valid, 4 checks" in capsys.readouterr().out
    write(config.parent / "sellers" / "1002.yml", "marketplace: shopee\nalias: seller 1002\n")
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{config.parent / 'sellers' / '1002.yml'}:2: alias: expected a string matching" in err
