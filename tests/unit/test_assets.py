"""``marketplace-exporter assets``: what ships, and an export that never overwrites a user's edits silently.

Run from this checkout, the assets are read in place through the same globs the wheel build expands
(tests/integration/test_release_wheel.py checks the installed wheel's copy).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketplace_exporter import assets
from marketplace_exporter.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_pytest_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` points the root logger at the stderr of the moment (capsys's, closed after the test):
    left in place, a later test's log line would hit a closed file."""
    monkeypatch.setattr("marketplace_exporter.cli.setup_logging", lambda *args, **kwargs: None)


def test_every_generated_artefact_and_config_ships_and_no_generator_source_does() -> None:
    shipped = assets.shipped()
    expected = {p.relative_to(ROOT).as_posix() for pattern in
                ("dashboards/*.json", "alert-rules/*.yml", "alert-rules/tests/*.test.yml",
                 "deploy/grafana/provisioning/*/*.yml", "deploy/prometheus.yml", "deploy/bridge.yml",
                 "deploy/bridge.env.example") for p in ROOT.glob(pattern)}
    assert expected <= set(shipped), sorted(expected - set(shipped))
    assert {"alert-rules/alertmanager.yml", "alert-rules/marketplace-alerts.yml", "examples/demo.yml"} <= set(shipped)
    assert not [rel for rel in shipped if rel.endswith((".py", ".mjs", ".md")) or "/schema/" in rel
                or rel.endswith(".env")], "generator sources, docs and secrets stay out"
    for relative, source in shipped.items():
        assert source.is_file(), relative


def test_a_glob_that_matches_nothing_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "a.json").write_text("{}")
    assert list(assets.match_assets(tmp_path, ["dashboards/*.json"])) == ["dashboards/a.json"]
    with pytest.raises(assets.AssetsError, match="'alert-rules/\\*.yml' matches no file"):
        assets.match_assets(tmp_path, ["dashboards/*.json", "alert-rules/*.yml"])


def test_export_writes_identical_files_and_a_second_export_changes_nothing(tmp_path: Path) -> None:
    first = assets.export(tmp_path / "out")
    assert first.unchanged == [] and first.written == list(assets.shipped())
    for relative, source in assets.shipped().items():
        assert (tmp_path / "out" / relative).read_bytes() == source.read_bytes(), relative
    again = assets.export(tmp_path / "out")
    assert again.written == [] and again.unchanged == first.written


def test_an_edited_file_is_never_overwritten_without_force_and_nothing_is_half_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assets.export(out)
    edited = out / "dashboards" / "overview.json"
    edited.write_text("my local edit")
    removed = out / "alert-rules" / "alertmanager.yml"
    removed.unlink()
    with pytest.raises(assets.AssetsError) as raised:
        assets.export(out)
    assert str(edited) in str(raised.value) and "--force" in str(raised.value)
    assert edited.read_text() == "my local edit" and not removed.exists(), "a refused export writes nothing"
    result = assets.export(out, force=True)
    assert sorted(result.written) == ["alert-rules/alertmanager.yml", "dashboards/overview.json"]
    assert edited.read_bytes() == (ROOT / "dashboards" / "overview.json").read_bytes()


def test_the_command_line_exit_codes_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assets", "list"]) == 0
    assert "dashboards/overview.json" in capsys.readouterr().out.splitlines()
    target = tmp_path / "bundle"
    assert main(["assets", "export", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"written to {target}" in out and "promtool test rules" in out
    (target / "deploy" / "bridge.yml").write_text("changed")
    assert main(["assets", "export", str(target)]) == 1
    assert "deploy/bridge.yml" in capsys.readouterr().err
    assert main(["assets", "export", "--force", str(target)]) == 0
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    assert main(["assets", "export", str(a_file)]) == 1
    assert "is not a directory" in capsys.readouterr().err
