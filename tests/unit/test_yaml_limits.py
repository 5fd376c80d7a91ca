"""Hostile config files (issue 14, "inputs that must give a clear error"): alias bombs, recursive
aliases, oversized files, impossible dates and giant integers are located errors from the one YAML
loader, in ``check-config``, ``run``, the bridge config, accounts files and on reload, with memory
bounded by the file's size. Each test reproduces a failure of f014b6e (named in its docstring)."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from marketplace_exporter.bridge.config import load_bridge_config
from marketplace_exporter.cli import main
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.webserver.lifecycle import LIFECYCLE_ENABLED

RELOAD_METRIC = "marketplace_exporter_config_last_reload_successful"
#: config.yaml_limits' documented bounds, written out so these tests also run (and fail) on f014b6e
MAX_FILE_BYTES = 32 << 20
ALIAS_ALLOWANCE = 100_000


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main()`` would point the root logger at capsys's stream, closed after the test."""
    monkeypatch.setattr("marketplace_exporter.cli.setup_logging", lambda *_: None)


def bomb(levels: int) -> str:
    """"Billion laughs": each level is a list of nine aliases of the level above (9**levels values)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, levels):
        name, previous = chr(ord("a") + index), chr(ord("a") + index - 1)
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


#: 9 levels: 342 bytes that expand to 9**9 = 387 million values
BOMB = bomb(9)


def test_the_342_byte_alias_bomb_fails_at_once_with_memory_bounded(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """f014b6e walked and validated every aliased value: the issue's 342-byte file took 3.1 GB and
    32 s; this one (9 levels) was still running after 300 s at 18.6 GB RSS when it was killed, and
    the 7-level, 272-byte one took 9 s and 1.1 GB. Now one linear pass over the 28 written values
    refuses it. Time and peak memory are printed (``-s``); the assertion is on the bounded
    allocation (the process's whole RSS stays ~42 MB)."""
    path = tmp_path / "bomb.yml"
    path.write_text(BOMB)
    assert path.stat().st_size == 342
    (tmp_path / "ok.yml").write_text("{}\n")
    assert main(["check-config", str(tmp_path / "ok.yml")]) == 0  # imports and schemas built: not counted
    tracemalloc.start()
    started = time.perf_counter()
    try:
        code = main(["check-config", str(path)])
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    with capsys.disabled():
        print(f"\nalias bomb ({path.stat().st_size} bytes, 9**9 values): check-config refused it in "
              f"{seconds * 1000:.0f} ms, peak {peak / 2**20:.1f} MiB traced (f014b6e: > 300 s, 18.6 GB RSS, killed)")
    assert code == 1
    assert f"{path}:9: i: aliases expand the file to 490,329,064 values from the 28 it writes; at most " \
           f"{28 + ALIAS_ALLOWANCE:,} are accepted (a YAML alias bomb?)" in err
    assert peak < 8 * 2**20


def test_a_bomb_in_the_bridge_config_and_in_an_accounts_file_is_refused(tmp_path: Path) -> None:
    """f014b6e: the bridge config and accounts files went through the same unbounded expansion (the
    accounts files through their own ``yaml.load``); six levels keep this test fast on old code."""
    small = bomb(6)
    with pytest.raises(ConfigError, match=r"bridge\.yml:6: f: aliases expand the file to 672,612 values"):
        load_bridge_config(tmp_path / "bridge.yml", text=small + "receivers: {}\n")
    sellers = tmp_path / "sellers"
    sellers.mkdir()
    (sellers / "1001.yml").write_text(small)
    (tmp_path / "exporter.yml").write_text("accounts_files: [sellers/]\n")
    with pytest.raises(ConfigError, match=r"1001\.yml:6: f: aliases expand the file to 672,610 values"):
        load_config(tmp_path / "exporter.yml")


def test_a_recursive_alias_is_an_error_not_a_recursion_error() -> None:
    """f014b6e: ``a: &a [*a]`` crashed check-config with a RecursionError traceback."""
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text="defaults: &a {interval: [*a]}\n")
    assert caught.value.errors == ["f.yml:1: defaults.interval[0]: an alias refers to a node that contains it "
                                   "(a recursive structure); no config value is recursive"]


def test_anchors_for_shared_settings_stay_accepted() -> None:
    """What anchors are for: one credentials block merged into many accounts (1,000 here) is far
    inside the allowance."""
    accounts = "".join(f"  - {{<<: *shop, alias: s{index}}}\n" for index in range(1000))
    text = ("x-shop: &shop {marketplace: shopee, site: SG, checks: [{operation: get_shop_info}], credentials: "
            "{partner_id: 1, partner_key: {value: k}, shop_id: 1, access_token: {value: t}}}\n"
            "accounts:\n" + accounts)
    with pytest.raises(ConfigError) as caught:  # x-shop is not a config key: the only error
        load_config("f.yml", text=text)
    assert caught.value.errors == ["f.yml:1: x-shop: unknown key (see `marketplace-exporter config-schema` "
                                   "for the allowed keys)"]


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    """f014b6e read any file whole: a sparse 33 MiB file became 33 MiB of text before a YAML error
    about a NUL character, and ``/dev/zero`` was read until memory ran out."""
    big = tmp_path / "huge.yml"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ConfigError) as caught:
        load_config(big)
    assert caught.value.errors == [f"{big}: config file larger than 32 MiB; split it (accounts_files can name "
                                   "a directory of files)"]
    if os.path.exists("/dev/zero"):
        with pytest.raises(ConfigError, match="larger than 32 MiB"):
            load_bridge_config("/dev/zero")


IMPOSSIBLE = [
    pytest.param("2026-11-31", "day is out of range for month", id="november-31"),
    pytest.param("2027-13-01", "month must be in 1..12", id="month-13"),
]


@pytest.mark.parametrize(("date", "why"), IMPOSSIBLE)
def test_an_impossible_date_is_located_in_check_config(date: str, why: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """f014b6e: a PyYAML ``ValueError`` traceback from check-config (and from ``run``)."""
    path = tmp_path / "exporter.yml"
    path.write_text(f"deprecations:\n  - marketplace: ebay\n    api: trading\n    removal_date: {date}\n")
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:4: deprecations[0].removal_date: expected a real date (YYYY-MM-DD, optionally a time), "
        f"got '{date}' ({why})", f"{path}: 1 error(s)"]
    assert main(["run", f"--config.file={path}", "--web.listen-address=127.0.0.1:0"]) == 1
    assert "expected a real date" in capsys.readouterr().err


def test_giant_integers_are_located_in_yaml_and_refused_in_json_accounts_files(tmp_path: Path) -> None:
    """f014b6e: an integer over Python's 4,300-digit limit raised a bare ValueError (a traceback)
    from YAML and from a JSON accounts file."""
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=f"defaults:\n  concurrency: {'9' * 5000}\n")
    assert caught.value.errors == ["f.yml:2: defaults.concurrency: expected an integer of at most 4300 digits, "
                                   "got one of 5000 digits"]
    sellers = tmp_path / "sellers"
    sellers.mkdir()
    (sellers / "1001.json").write_text('{"marketplace": "shopee", "alias": ' + "9" * 5000 + "}")
    (tmp_path / "exporter.yml").write_text("accounts_files: [sellers/]\n")
    with pytest.raises(ConfigError) as json_caught:
        load_config(tmp_path / "exporter.yml")
    assert json_caught.value.errors == [f"{sellers / '1001.json'}: invalid JSON: Exceeds the limit (4300 digits) "
                                        "for integer string conversion"]


@pytest.mark.parametrize("bad", [pytest.param(bomb(6), id="alias-bomb"),
                                 pytest.param("deprecations:\n  - {marketplace: ebay, api: trading, "
                                              "removal_date: 2026-11-31}\n", id="impossible-date")])
async def test_a_hostile_reload_is_refused_and_reported_by_the_reload_metric(
        bad: str, tmp_path: Path, aiohttp_client: Any) -> None:
    """f014b6e: an impossible date made ``POST /-/reload`` a 500 while the reload-success metric
    stayed 1 (the reload-failed alert could never fire); an alias bomb blocked the exporter for
    seconds. Now: 400 with the located error, the metric 0, the old config kept; a good file after
    it sets the metric back to 1."""
    path = tmp_path / "exporter.yml"
    path.write_text("{}\n")
    source = ConfigSource(str(path))
    app = create_app(source, source.load())
    app[LIFECYCLE_ENABLED] = True  # as with --web.enable-lifecycle: this test reloads over HTTP
    client: TestClient[Any, Any] = await aiohttp_client(app)

    async def reload_metric() -> str:
        metrics = await (await client.get("/metrics")).text()
        return next(line.split()[-1] for line in metrics.splitlines() if line.startswith(RELOAD_METRIC))

    assert await reload_metric() == "1.0"
    path.write_text(bad)
    response = await client.post("/-/reload")
    assert response.status == 400
    text = await response.text()
    assert text.startswith(f"{path}:") and ("aliases expand the file" in text or "expected a real date" in text)
    assert await reload_metric() == "0.0"
    assert (await client.get("/-/healthy")).status == 200
    path.write_text("{}\n")
    assert (await client.post("/-/reload")).status == 200
    assert await reload_metric() == "1.0"


def test_a_token_file_goes_through_the_same_bounded_loader() -> None:
    """f014b6e parsed ERP token files with a bare ``yaml.safe_load``: an impossible date raised a
    ``ValueError`` out of the probe and a bomb expanded in full."""
    from marketplace_exporter.credentials import parse_token_file
    from marketplace_exporter.secrets import SecretUnavailable

    for text in ("access_token: t0k3n\nexpires_at: 2026-11-31\n", bomb(6)):
        with pytest.raises(SecretUnavailable, match="neither JSON nor YAML"):
            parse_token_file(text, "tokens.yml")
