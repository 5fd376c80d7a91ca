"""Freeze windows: wall-clock times in the window's own timezone, dates covering whole days, the
stricter policy winning when windows overlap, and config errors located in the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from marketplace_exporter.api_defaults import DEFAULT_TOKEN_ENV as SERVER_DEFAULT
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.deploys.config import DEFAULT_TOKEN_ENV, DeploysConfig
from marketplace_exporter.deploys.freeze import FreezeWindow, active_freeze, frozen_environments

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(*args: int, tz: ZoneInfo = SHANGHAI) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


def _config(**section: object) -> DeploysConfig:
    return DeploysConfig.model_validate(section)


DOUBLE_11 = {"name": "double-11", "environments": ["production"], "timezone": "Asia/Shanghai",
             "start": datetime(2026, 11, 10).date(), "end": datetime(2026, 11, 11).date(), "policy": "block"}


def test_a_date_window_covers_whole_days_in_its_timezone() -> None:
    [window] = _config(freeze_windows=[DOUBLE_11]).windows()
    assert window.start == datetime(2026, 11, 10, tzinfo=SHANGHAI)
    assert window.end == datetime(2026, 11, 12, tzinfo=SHANGHAI)  # the end date is inclusive
    assert active_freeze([window], "production", _at(2026, 11, 9, 23, 59)) is None
    assert active_freeze([window], "production", _at(2026, 11, 10, 0, 0)) is window
    assert active_freeze([window], "production", _at(2026, 11, 11, 23, 59)) is window
    assert active_freeze([window], "production", _at(2026, 11, 12, 0, 0)) is None
    # 2026-11-09 16:00 UTC is already 11-10 00:00 in Shanghai
    assert active_freeze([window], "production", datetime(2026, 11, 9, 16, 0, tzinfo=UTC).timestamp()) is window


def test_a_quoted_date_is_the_same_whole_day() -> None:
    quoted = {**DOUBLE_11, "start": "2026-11-10", "end": "2026-11-11"}
    assert _config(freeze_windows=[quoted]).windows() == _config(freeze_windows=[DOUBLE_11]).windows()


def test_other_environments_are_not_frozen() -> None:
    windows = _config(freeze_windows=[DOUBLE_11]).windows()
    assert active_freeze(windows, "staging", _at(2026, 11, 11, 12, 0)) is None
    assert frozen_environments(windows) == ("production",)


def test_wall_clock_times_and_explicit_offsets() -> None:
    black_friday = {"name": "black-friday", "environments": ["production", "eu-prod"],
                    "timezone": "America/New_York", "start": datetime(2026, 11, 27, 0, 0),
                    "end": "2026-12-01T06:00:00+00:00"}
    [window] = _config(freeze_windows=[black_friday]).windows()
    assert window.start == datetime(2026, 11, 27, tzinfo=ZoneInfo("America/New_York"))
    assert window.end.timestamp() == datetime(2026, 12, 1, 6, tzinfo=UTC).timestamp()
    assert window.policy == "warn"


def test_overlapping_windows_the_blocking_one_wins() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    warn = FreezeWindow("season", ("production",), start, start + timedelta(days=30), "warn")
    block = FreezeWindow("peak", ("production",), start + timedelta(days=9), start + timedelta(days=11), "block")
    assert active_freeze([warn, block], "production", (start + timedelta(days=10)).timestamp()) is block
    assert active_freeze([warn, block], "production", (start + timedelta(days=20)).timestamp()) is warn


def test_a_window_needs_an_aware_start_before_its_end() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="after start"):
        FreezeWindow("x", ("production",), start, start)
    with pytest.raises(ValueError, match="timezone"):
        FreezeWindow("x", ("production",), datetime(2026, 11, 1), datetime(2026, 11, 2))


def test_the_default_token_variable_is_the_servers() -> None:
    assert DEFAULT_TOKEN_ENV == SERVER_DEFAULT == DeploysConfig().token_env


BAD_FILE = """\
deploys:
  anonymous_writes: sometimes
  freeze_windows:
    - name: double-11
      environments: [production]
      start: 2026-11-12
      end: 2026-11-10
      timezone: Asia/Shanghai
    - name: black-friday
      environments: [production]
      start: 2026-11-27
      end: 2026-11-30
      timezone: Mars/Olympus
  grafana:
    url: http://grafana:3000
    api_key: glsa_plain_string_secret
"""


def test_config_errors_are_located_and_never_quote_the_api_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(BAD_FILE)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = "\n".join(caught.value.errors)
    assert f"{path}:2: deploys.anonymous_writes: expected 'never', 'loopback' or 'always'" in text
    assert f"{path}:4: deploys.freeze_windows[0]: freeze window 'double-11': end must be after start" in text
    assert f"{path}:13: deploys.freeze_windows[1].timezone: expected an IANA timezone" in text
    assert f"{path}:16: deploys.grafana.api_key: expected ${{ENV_VAR}}" in text
    assert "glsa_plain_string_secret" not in text


def test_a_file_without_a_deploys_section_gets_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yml"
    path.write_text("defaults: {interval: 30s}\n")
    assert load_config(path).deploys == DeploysConfig()
