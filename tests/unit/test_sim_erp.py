"""The demo's ERP stand-in: it writes the token files of the platforms whose refresh tokens rotate,
refreshes them through the simulator's own rotation before they die, and points the demo config at
the files, so the exporter reads tokens the way it does in production (``token_file``)."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path

from marketplace_exporter.catalogue import Credential
from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path
from marketplace_exporter.config import load_config
from marketplace_exporter.credentials import parse_token_file
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.simulator.app import ERP, PLATFORMS
from marketplace_exporter.simulator.erp import REFRESH_AHEAD_S, DemoErp

T0 = 1_765_000_000.0
#: the demo's accounts whose production tokens rotate (or may): their expiry comes from token files
HELD = {("lazada", "th-main"), ("lazada", "vn-main"), ("tiktok_shop", "us-main"), ("tiktok_shop", "gb-main"),
        ("aliexpress", "global-main"), ("mercadolibre", "mla-main"), ("mercadolibre", "mlb-main"),
        ("wish", "us-main"), ("wish", "cn-main")}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def erp_of(tmp_path: Path, clock: Clock) -> DemoErp:
    return create_simulator_app(clock=clock, tokens_dir=tmp_path / "tokens")[ERP]


def read(path: Path) -> dict[str, str]:
    document: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return document


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_every_held_account_gets_a_private_token_file_with_its_expiry(tmp_path: Path) -> None:
    erp = erp_of(tmp_path, Clock())
    for marketplace, alias in HELD:
        path = erp.token_file(marketplace, alias)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        document = read(path)
        assert set(document) >= {"access_token", "expires_at"} and "refresh_token" not in document
        grant = erp.grant(marketplace, alias)
        assert grant is not None and grant.expires_at is not None
        assert (document["access_token"], seconds(document["expires_at"])) == (grant.access_token, grant.expires_at)
    # Lazada's identities keep the lifetimes the simulator gives them (VN: 5 days left, an alert to see)
    vn = read(erp.token_file("lazada", "vn-main"))
    assert (vn["access_token"], seconds(vn["expires_at"])) == ("sim-lazada-access-vn-main", T0 + 5 * 86400)
    # TikTok and Mercado Libre identities have no known expiry: the ERP refreshed them once
    mla = read(erp.token_file("mercadolibre", "mla-main"))
    assert mla["access_token"] != "APP_USR-5961000000000001-sim-access-mla-main-295000001"
    assert seconds(mla["expires_at"]) == T0 + 6 * 3600  # 6 h tokens [OBS H3]


def test_the_exporter_reads_the_files_as_token_files(tmp_path: Path) -> None:
    erp = erp_of(tmp_path, Clock())
    held = parse_token_file(erp.token_file("tiktok_shop", "us-main").read_text(), "tiktok")
    credentials = {o.credential for o in held.expiries}
    assert credentials == {Credential.ACCESS_TOKEN, Credential.REFRESH_TOKEN}


def test_tokens_are_refreshed_an_hour_before_they_die_and_the_old_refresh_token_is_dead(tmp_path: Path) -> None:
    clock = Clock()
    app = create_simulator_app(clock=clock, tokens_dir=tmp_path / "tokens")
    erp, meli = app[ERP], app[PLATFORMS]["mercadolibre"]
    before = erp.grant("mercadolibre", "mla-main")
    assert before is not None and before.expires_at is not None
    clock.now = before.expires_at - REFRESH_AHEAD_S - 1
    assert erp.tick() == 0  # not yet
    clock.now += 2
    refreshed = erp.tick()
    after = erp.grant("mercadolibre", "mla-main")
    assert refreshed >= 1 and after is not None and after.access_token != before.access_token
    assert read(erp.token_file("mercadolibre", "mla-main"))["access_token"] == after.access_token
    assert meli.refresh_grant("mla-main", before.refresh_token) is None  # rotated: the old one is dead
    assert after.access_token in meli.tokens  # and the simulator accepts the new access token


def test_the_demo_config_reads_the_token_files_and_loads(tmp_path: Path) -> None:
    erp = erp_of(tmp_path, Clock())
    text = erp.use_token_files(Path(demo_config_path()).read_text(encoding="utf-8"))
    used = {(m, a) for m, a in HELD if f"token_file: {erp.token_file(m, a)}" in text}
    assert used == HELD  # every held account of the demo now reads its file
    config = load_config(tmp_path / "demo.yml", text=text.replace(DEMO_SIMULATOR, "http://127.0.0.1:1"))
    by_account = {(check.marketplace, check.account): check for check in config.checks}
    for key in HELD:
        assert getattr(by_account[key].credentials, "token_file", None) == str(erp.token_file(*key))
